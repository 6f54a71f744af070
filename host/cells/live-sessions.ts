/**
 * The chat sessions a cell holds, by tenant: what the session limit counts (sessions still starting
 * hold a slot, so the limit cannot be overrun across a start's awaits), what health and metrics
 * report, and how the host ends them — every session of a tenant that was deleted or moved away,
 * or every session a revoked key opened — by closing their connections with a code that tells the
 * client whether reconnecting can help.
 */
import { HostError } from '../errors.ts';

/** One live connection as the registry knows it. */
export interface LiveSession {
  readonly tenantId: string;
  /** The key the connection was opened with (directly or through a ticket). */
  readonly keyId: string | undefined;
  /** Closes the connection; resolves once its session has ended (its plugins closed, its scope released). */
  close(code: number, reason: string): Promise<void>;
}

/** A reserved session slot: release it exactly once, whatever happens to the start. */
export interface SessionSlot {
  /** The session started: it now counts as live until {@link SessionSlot.release}. */
  started(session: LiveSession): void;
  release(): void;
}

/** The live sessions of one cell. */
export class LiveSessions {
  readonly #byTenant = new Map<string, Set<LiveSession>>();
  readonly #starting = new Map<string, number>();

  /**
   * Reserves a slot for a session of `tenantId` about to start.
   * @throws {HostError} TENANT_SESSION_LIMIT when the tenant has `max` sessions live or starting.
   */
  reserve(tenantId: string, max: number): SessionSlot {
    const live = this.#byTenant.get(tenantId)?.size ?? 0;
    const starting = this.#starting.get(tenantId) ?? 0;
    if (live + starting >= max) throw new HostError('TENANT_SESSION_LIMIT', `the tenant has ${live + starting} live sessions, limit ${max}`);
    this.#starting.set(tenantId, starting + 1);
    let state: 'starting' | 'live' | 'released' = 'starting';
    let mine: LiveSession | undefined;
    return {
      started: (session) => {
        if (state !== 'starting') return;
        this.#unstart(tenantId);
        state = 'live';
        mine = session;
        const set = this.#byTenant.get(tenantId) ?? new Set<LiveSession>();
        set.add(session);
        this.#byTenant.set(tenantId, set);
      },
      release: () => {
        if (state === 'starting') this.#unstart(tenantId);
        if (state === 'live' && mine !== undefined) {
          const set = this.#byTenant.get(tenantId);
          set?.delete(mine);
          if (set?.size === 0) this.#byTenant.delete(tenantId);
        }
        state = 'released';
      },
    };
  }

  #unstart(tenantId: string): void {
    const left = (this.#starting.get(tenantId) ?? 1) - 1;
    if (left > 0) this.#starting.set(tenantId, left);
    else this.#starting.delete(tenantId);
  }

  /** Live sessions per tenant (tenants without any are absent). */
  counts(): Map<string, number> {
    return new Map([...this.#byTenant].map(([tenantId, set]) => [tenantId, set.size]));
  }

  /** Live sessions in all. */
  get total(): number {
    let total = 0;
    for (const set of this.#byTenant.values()) total += set.size;
    return total;
  }

  /** Live sessions plus starting ones of a tenant. */
  heldBy(tenantId: string): number {
    return (this.#byTenant.get(tenantId)?.size ?? 0) + (this.#starting.get(tenantId) ?? 0);
  }

  /**
   * Closes the tenant's sessions (only those opened with `keyId`, when given) and waits until they
   * have ended. Returns how many.
   */
  async close(tenantId: string, code: number, reason: string, keyId?: string): Promise<number> {
    const closing = [...(this.#byTenant.get(tenantId) ?? [])]
      .filter((session) => keyId === undefined || session.keyId === keyId)
      .map((session) => session.close(code, reason));
    await Promise.all(closing);
    return closing.length;
  }

  /** Closes every session (the cell is stopping) and waits until they have ended. */
  async closeAll(code: number, reason: string): Promise<void> {
    await Promise.all([...this.#byTenant.keys()].map((tenantId) => this.close(tenantId, code, reason)));
  }
}
