/**
 * Browser chat tickets: short-lived and single-use, because a browser cannot set an Authorization
 * header on a WebSocket. The supervisor keeps the book (it authenticates every upgrade); a ticket
 * is issued for a scope its tenant's cell minted from an API key, and carries that key's id, so
 * revoking the key voids its tickets and ends the sessions they opened.
 *
 * Every tenant has its own share of the book (one key cannot fill it for everyone), expiry costs
 * O(1) per ticket (tickets expire in the order they were issued: one lifetime for all), and
 * nothing survives a restart, by design. A ticket names its tenant (`tkt_<tenant hex>_<random>`),
 * not a secret: routing may read it; only the book can redeem it.
 */
import { HostError } from '../errors.ts';
import { randomToken } from '../storage/keys.ts';

/** What a redeemed ticket grants: a connection for this tenant, through this key, for this end user. */
export interface TicketGrant {
  tenantId: string;
  keyId: string;
  endUser: string | undefined;
}

interface Outstanding {
  keyId: string;
  endUser: string | undefined;
  expiresAt: number;
}

/** Options of {@link TicketBook}. */
export interface TicketBookOptions {
  /** A ticket's lifetime (LIMITS.ticketTtlMsMax). */
  ttlMs: number;
  /** Tickets outstanding per tenant (LIMITS.ticketsOutstandingPerTenantMax). */
  perTenantMax: number;
  /** Tickets outstanding host-wide (LIMITS.ticketsOutstandingMax). */
  totalMax: number;
  /** Epoch milliseconds (tests move it). */
  clock?: () => number;
}

const TICKET_PATTERN = /^tkt_([0-9a-f]{16})_[A-Za-z0-9_-]{32}$/;

/** The tenant id a ticket names (not a proof of anything), or undefined when it is not ticket-shaped. */
export function ticketTenant(ticket: string): string | undefined {
  const hex = TICKET_PATTERN.exec(ticket)?.[1];
  return hex === undefined ? undefined : `t_${hex}`;
}

/** Issues and redeems chat tickets. Holds no tenant data: ids and expiry times only. */
export class TicketBook {
  readonly #options: Required<TicketBookOptions>;
  /** Per tenant, its outstanding tickets in issue (= expiry) order. */
  readonly #byTenant = new Map<string, Map<string, Outstanding>>();
  #total = 0;

  constructor(options: TicketBookOptions) {
    this.#options = { clock: Date.now, ...options };
  }

  /** Tickets outstanding host-wide (expired ones may be counted until their tenant's next sweep). */
  get size(): number {
    return this.#total;
  }

  /**
   * Issues a ticket for `tenantId` through `keyId`, optionally naming an end user.
   * @throws {HostError} PROTOCOL_RATE_LIMIT when the tenant's share, or the whole book, is full.
   */
  issue(grant: TicketGrant): { ticket: string; expiresAt: number } {
    const now = this.#options.clock();
    const tickets = this.#byTenant.get(grant.tenantId) ?? new Map<string, Outstanding>();
    this.#sweep(grant.tenantId, tickets, now);
    if (tickets.size >= this.#options.perTenantMax) {
      throw new HostError('PROTOCOL_RATE_LIMIT', `this tenant has ${tickets.size} tickets outstanding, limit ${this.#options.perTenantMax}; redeem or let some expire`);
    }
    if (this.#total >= this.#options.totalMax) this.#sweepAll(now);
    if (this.#total >= this.#options.totalMax) {
      throw new HostError('PROTOCOL_RATE_LIMIT', `${this.#options.totalMax} tickets are outstanding on this host; try again shortly`);
    }
    const ticket = `tkt_${grant.tenantId.slice(2)}_${randomToken(24)}`;
    const expiresAt = now + this.#options.ttlMs;
    tickets.set(ticket, { keyId: grant.keyId, endUser: grant.endUser, expiresAt });
    this.#byTenant.set(grant.tenantId, tickets);
    this.#total += 1;
    return { ticket, expiresAt };
  }

  /** Removes and returns a live ticket's grant; undefined when unknown, used or expired. */
  take(ticket: string): TicketGrant | undefined {
    const tenantId = ticketTenant(ticket);
    const tickets = tenantId === undefined ? undefined : this.#byTenant.get(tenantId);
    const found = tickets?.get(ticket);
    if (tenantId === undefined || tickets === undefined || found === undefined) return undefined;
    this.#remove(tenantId, tickets, ticket);
    if (found.expiresAt < this.#options.clock()) return undefined;
    return { tenantId, keyId: found.keyId, endUser: found.endUser };
  }

  /** Voids every outstanding ticket a key minted (the key was revoked). Returns how many. */
  revokeKey(tenantId: string, keyId: string): number {
    const tickets = this.#byTenant.get(tenantId);
    if (tickets === undefined) return 0;
    let voided = 0;
    for (const [ticket, outstanding] of tickets) {
      if (outstanding.keyId !== keyId) continue;
      this.#remove(tenantId, tickets, ticket);
      voided += 1;
    }
    return voided;
  }

  /** Voids every ticket of a tenant (it was deleted or moved away). */
  forgetTenant(tenantId: string): void {
    const tickets = this.#byTenant.get(tenantId);
    if (tickets === undefined) return;
    this.#total -= tickets.size;
    this.#byTenant.delete(tenantId);
  }

  #remove(tenantId: string, tickets: Map<string, Outstanding>, ticket: string): void {
    if (!tickets.delete(ticket)) return;
    this.#total -= 1;
    if (tickets.size === 0) this.#byTenant.delete(tenantId);
  }

  /** Drops the tenant's expired tickets: they sit at the front, so this stops at the first live one. */
  #sweep(tenantId: string, tickets: Map<string, Outstanding>, now: number): void {
    for (const [ticket, outstanding] of tickets) {
      if (outstanding.expiresAt >= now) return;
      this.#remove(tenantId, tickets, ticket);
    }
  }

  #sweepAll(now: number): void {
    for (const [tenantId, tickets] of [...this.#byTenant]) this.#sweep(tenantId, tickets, now);
  }
}
