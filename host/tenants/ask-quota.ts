/**
 * Per-tenant quotas over fixed one-minute windows: the ask quota (at most `asksPerMinuteMax` asks
 * per tenant in any window, across all of its sessions, so one tenant cannot take the host's CPU
 * from the others by opening many sessions) and the ingest quota (characters of document text per
 * tenant per window: re-posting megabytes in a loop cannot keep a cell's ingest worker for itself).
 * Fixed windows are one counter per tenant; a burst at a window's edge can reach twice the rate for
 * a moment, which the per-session and per-request limits bound further.
 */
import assert from 'node:assert/strict';
import { HostError, type ErrorCode } from '../errors.ts';

const WINDOW_MS = 60_000;

/** How a quota names what it counts, in its refusal. */
interface QuotaWording {
  code: ErrorCode;
  /** e.g. `(used, max) => \`the tenant asked ${used} questions in this minute, its quota is ${max}\`` */
  refusal(used: number, max: number): string;
}

/** Counts one kind of use per tenant per minute. Holds counters only, no tenant data. */
export class MinuteQuota {
  readonly #max: number;
  readonly #now: () => number;
  readonly #wording: QuotaWording;
  readonly #windows = new Map<string, { start: number; count: number }>();
  #prunedAt = 0;

  /** @param max use per tenant per window; `now` is injectable for tests. */
  constructor(max: number, wording: QuotaWording, now: () => number = Date.now) {
    assert.ok(Number.isInteger(max) && max >= 1, `quota ${max} must be a positive integer`);
    this.#max = max;
    this.#now = now;
    this.#wording = wording;
  }

  /**
   * Counts `amount` of `tenantId`'s use.
   * @throws {HostError} the quota's code when the tenant would go over its quota in this window.
   */
  admit(tenantId: string, amount = 1): void {
    const now = this.#now();
    let window = this.#windows.get(tenantId);
    if (window === undefined || now - window.start >= WINDOW_MS) {
      this.#prune(now);
      window = { start: now, count: 0 };
      this.#windows.set(tenantId, window);
    }
    if (window.count + amount > this.#max) {
      const waitS = Math.ceil((window.start + WINDOW_MS - now) / 1000);
      throw new HostError(this.#wording.code, `${this.#wording.refusal(window.count, this.#max)}; try again in ${waitS} s`);
    }
    window.count += amount;
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

/** The ask quota: asks per tenant per minute. */
export class AskQuota extends MinuteQuota {
  constructor(asksPerMinuteMax: number, now: () => number = Date.now) {
    super(asksPerMinuteMax, { code: 'TENANT_ASK_RATE_LIMIT', refusal: (used, max) => `the tenant asked ${used} questions in this minute, its quota is ${max}` }, now);
  }
}

/** The ingest quota: characters of changed document text per tenant per minute. */
export class IngestQuota extends MinuteQuota {
  constructor(charsPerMinuteMax: number, now: () => number = Date.now) {
    super(charsPerMinuteMax, { code: 'TENANT_INGEST_RATE_LIMIT', refusal: (used, max) => `the tenant sent ${used} characters of documents in this minute, its ingest quota is ${max}` }, now);
  }
}
