/**
 * The per-tenant ask quota: at most `asksPerMinuteMax` asks per tenant in any fixed one-minute
 * window, across all of its sessions, so one tenant cannot take the host's CPU from the others by
 * opening many sessions. Fixed windows are one counter per tenant; a burst at a window's edge can
 * reach twice the rate for a moment, which the per-session limits bound further.
 */
import assert from 'node:assert/strict';
import { HostError } from '../errors.ts';

const WINDOW_MS = 60_000;

/** Counts asks per tenant. Holds counters only, no tenant data. */
export class AskQuota {
  readonly #max: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, { start: number; count: number }>();
  #prunedAt = 0;

  /** @param asksPerMinuteMax asks per tenant per window; `now` is injectable for tests. */
  constructor(asksPerMinuteMax: number, now: () => number = Date.now) {
    assert.ok(Number.isInteger(asksPerMinuteMax) && asksPerMinuteMax >= 1, `asksPerMinuteMax ${asksPerMinuteMax} must be a positive integer`);
    this.#max = asksPerMinuteMax;
    this.#now = now;
  }

  /**
   * Counts one ask of `tenantId`.
   * @throws {HostError} TENANT_ASK_RATE_LIMIT when the tenant is over its quota in this window.
   */
  admit(tenantId: string): void {
    const now = this.#now();
    let window = this.#windows.get(tenantId);
    if (window === undefined || now - window.start >= WINDOW_MS) {
      this.#prune(now);
      window = { start: now, count: 0 };
      this.#windows.set(tenantId, window);
    }
    if (window.count >= this.#max) {
      const waitS = Math.ceil((window.start + WINDOW_MS - now) / 1000);
      throw new HostError('TENANT_ASK_RATE_LIMIT', `the tenant asked ${window.count} questions in this minute, its quota is ${this.#max}; try again in ${waitS} s`);
    }
    window.count += 1;
  }

  /** Drops expired windows (at most once a window) so the map holds only recently active tenants. */
  #prune(now: number): void {
    if (now - this.#prunedAt < WINDOW_MS) return;
    this.#prunedAt = now;
    for (const [tenantId, window] of this.#windows) {
      if (now - window.start >= WINDOW_MS) this.#windows.delete(tenantId);
    }
  }
}
