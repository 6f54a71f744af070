/**
 * The plugin memory budget of one cell: every session's plugin instances are counted at their
 * actual size (each instance's linear memory, as its module grew it, plus a fixed overhead), and
 * the sum stays within the cell's share of the host-wide budget (PLUGIN_MEMORY_MB split over the
 * cells). Past it, new sessions of the heaviest tenant are refused with TENANT_MEMORY_LIMIT, and a
 * session that grew its instances past it loses them (its next ask must be admitted again); other
 * tenants still start sessions in the part of the budget kept in reserve for them. No tenant may
 * hold more than half of the cell's budget whatever the others do. The host's memory is never what
 * gives way.
 */
import { HostError } from '../errors.ts';

/** Options of {@link createMemoryBudget}. */
export interface MemoryBudgetOptions {
  /** The cell's budget for plugin instances, in bytes. */
  bytesMax: number;
  /** Part of the budget only tenants other than the heaviest may use (0..1). */
  reserveShare: number;
  /** Most of the budget one tenant may hold (0..1). */
  tenantShareMax: number;
}

/** One session's plugin memory, as the budget counts it. */
export interface MemoryClaim {
  /** Sets the session's current bytes (after a start or an ask). Returns whether it fits. */
  update(bytes: number): boolean;
  /** The session ended: its bytes are free. Idempotent. */
  release(): void;
}

/** A cell's plugin memory budget. */
export interface MemoryBudget {
  /**
   * Admits a new session of `tenantId` expected to need `bytes`.
   * @throws {HostError} TENANT_MEMORY_LIMIT when it does not fit (see the module comment).
   */
  admit(tenantId: string, bytes: number): MemoryClaim;
  /** Bytes counted now, all tenants together. */
  readonly usedBytes: number;
  /** Bytes counted per tenant. */
  byTenant(): Map<string, number>;
}

/** Creates a cell's budget. */
export function createMemoryBudget(options: MemoryBudgetOptions): MemoryBudget {
  const tenants = new Map<string, number>();
  let used = 0;
  const heaviest = (): string | undefined => {
    let top: [string, number] | undefined;
    for (const entry of tenants) if (top === undefined || entry[1] > top[1]) top = entry;
    return top?.[0];
  };
  const add = (tenantId: string, delta: number): void => {
    used += delta;
    const next = (tenants.get(tenantId) ?? 0) + delta;
    if (next > 0) tenants.set(tenantId, next);
    else tenants.delete(tenantId);
  };
  /** Whether `tenantId` may hold `extra` more bytes now. */
  const fits = (tenantId: string, extra: number): { ok: true } | { ok: false; why: string } => {
    const mine = (tenants.get(tenantId) ?? 0) + extra;
    const tenantMax = Math.floor(options.bytesMax * options.tenantShareMax);
    if (mine > tenantMax) return { ok: false, why: `the tenant's plugins would hold ${mine} bytes, over its share of ${tenantMax}` };
    const total = used + extra;
    if (total <= options.bytesMax * (1 - options.reserveShare)) return { ok: true };
    const top = heaviest();
    if (top === tenantId || top === undefined) return { ok: false, why: `the host's plugin memory budget (${options.bytesMax} bytes) is nearly spent and this tenant holds the most of it` };
    if (total <= options.bytesMax) return { ok: true };
    return { ok: false, why: `the host's plugin memory budget (${options.bytesMax} bytes) is spent` };
  };
  return {
    admit(tenantId, bytes) {
      const verdict = fits(tenantId, bytes);
      if (!verdict.ok) throw new HostError('TENANT_MEMORY_LIMIT', verdict.why);
      let held = bytes;
      let released = false;
      add(tenantId, held);
      return {
        update(next) {
          if (released) return true;
          add(tenantId, next - held);
          held = next;
          if (next <= 0) return true;
          // The session fits if it would have been admitted at this size.
          add(tenantId, -held);
          const verdictNow = fits(tenantId, held);
          add(tenantId, held);
          return verdictNow.ok;
        },
        release() {
          if (released) return;
          released = true;
          add(tenantId, -held);
        },
      };
    },
    get usedBytes() {
      return used;
    },
    byTenant: () => new Map(tenants),
  };
}
