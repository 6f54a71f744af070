/**
 * Feedback retention: a rated answer is kept in the tenant's own environment (its `feedback`
 * table) with the ask, the answer and its sources — only while the tenant's settings say
 * `feedback.retain`, and only for `feedback.retentionDays`. Expired ratings are deleted when the
 * next one is stored, by the host's hourly sweep, and are never read: every reader goes through
 * {@link retainedFeedback}, which stops at the retention cut-off.
 *
 * Keys are `<epoch ms, base 36, 9 digits>:<ask id>:<random>`, so key order is time order and
 * "older than the cut-off" is one range at the start of the table.
 */
import { randomBytes } from 'node:crypto';
import { LIMITS } from '../limits.ts';
import type { HostLogger } from '../log.ts';
import { loopTurn } from '../loop-steps.ts';
import { HostError } from '../errors.ts';
import type { TenantStore } from '../storage/tenant-store.ts';
import { mintScopeForOperator, operatorForHost, type TenantAuthority, type TenantScope } from '../tenants/scope.ts';
import { readSettings, type FeedbackSettings } from '../tenants/settings.ts';

/** A source of a rated answer, with the provenance tag its chunk had when the rating was stored. */
export interface FeedbackSource {
  docId: string;
  chunkId: string;
  title: string;
  score: number;
  /** Empty when the chunk was already gone when the rating came in. */
  tag: string;
}

/** A stored rating. */
export interface FeedbackRecord {
  askId: string;
  rating: 1 | -1;
  comment: string | null;
  question: string;
  answer: string;
  sources: FeedbackSource[];
  /** Epoch milliseconds. */
  at: number;
}

/** A rating as the session hands it over. */
export interface FeedbackInput {
  askId: string;
  rating: 1 | -1;
  comment?: string;
  question: string;
  answer: string;
  sources: { docId: string; chunkId: string; title: string; score: number }[];
}

const DAY_MS = 24 * 3600 * 1000;
const COUNT_KEY = 'feedbackCount';
/** How often the host sweeps every tenant for expired feedback: retention is in days, so hourly is prompt enough. */
export const FEEDBACK_SWEEP_INTERVAL_MS = 3_600_000;

/**
 * Stores a rating when the tenant retains feedback; first deletes what has expired and, at
 * LIMITS.feedbackEntriesPerTenantMax, the oldest. Each source is stored with its chunk's current
 * provenance tag, so an export can tell whether the chunk is still the one that was rated.
 * @returns whether it was stored (false when the tenant does not retain feedback).
 */
export function storeFeedback(scope: TenantScope, input: FeedbackInput, now: number = Date.now()): boolean {
  const settings = readSettings(scope).feedback;
  if (!settings.retain) return false;
  const store = scope.store;
  const record: FeedbackRecord = {
    askId: input.askId,
    rating: input.rating,
    comment: input.comment ?? null,
    question: input.question,
    answer: input.answer,
    sources: input.sources.map((source) => ({ ...source, tag: currentTag(store, source.chunkId, source.docId) })),
    at: now,
  };
  store.transaction(() => {
    let count = purgeExpired(store, settings, now);
    const excess = count + 1 - LIMITS.feedbackEntriesPerTenantMax;
    if (excess > 0) {
      const oldest = [...store.feedback.entries({ limit: excess })].map((entry) => entry.key);
      for (const key of oldest) store.feedback.remove(key);
      count -= oldest.length;
    }
    store.feedback.put(`${timeKey(now)}:${input.askId}:${randomBytes(4).toString('hex')}`, record);
    store.meta.put(COUNT_KEY, count + 1);
  });
  return true;
}

/** Deletes the scope's expired feedback (all of it when the tenant no longer retains any). @returns how many were deleted. */
export function purgeFeedback(scope: TenantScope, now: number = Date.now()): number {
  const store = scope.store;
  const settings = readSettings(scope).feedback;
  return store.transaction(() => {
    const before = storedCount(store);
    return before - purgeExpired(store, settings, now);
  });
}

/** Runs inside a transaction: removes expired entries, keeps the count in step. @returns the count left. */
function purgeExpired(store: TenantStore, settings: FeedbackSettings, now: number): number {
  let count = storedCount(store);
  const end = settings.retain ? timeKey(now - settings.retentionDays * DAY_MS) : undefined;
  const expired = [...store.feedback.entries(end === undefined ? {} : { end })].map((entry) => entry.key);
  for (const key of expired) store.feedback.remove(key);
  count = Math.max(0, count - expired.length);
  if (expired.length > 0 || !settings.retain) store.meta.put(COUNT_KEY, count);
  return count;
}

/** How many ratings the tenant keeps now (kept in meta, so a store never needs a full count). */
export function storedCount(store: TenantStore): number {
  return (store.meta.get(COUNT_KEY) as number | undefined) ?? 0;
}

/**
 * The scope's retained ratings with their ids (unique, unlike ask ids, which are per connection),
 * oldest first, read a page at a time so a long export never holds
 * one read transaction (or the whole table) across its awaits. Ratings past the retention cut-off
 * are not returned even before a sweep deletes them.
 */
export function* retainedFeedback(scope: TenantScope, now: number = Date.now(), pageSize = 256): Generator<{ id: string; record: FeedbackRecord }> {
  const settings = readSettings(scope).feedback;
  if (!settings.retain) return;
  let start = timeKey(now - settings.retentionDays * DAY_MS);
  for (;;) {
    const page = [...scope.store.feedback.entries({ start, limit: pageSize })];
    for (const { key, value } of page) yield { id: String(key), record: value as FeedbackRecord };
    const last = page.at(-1);
    if (page.length < pageSize || last === undefined) return;
    start = `${String(last.key)}\u0000`;
  }
}

/**
 * Sweeps every tenant's expired feedback (every tenant `owns` accepts: a cell sweeps the tenants it
 * serves), one tenant per turn of the event loop so chats go on between them. A tenant whose
 * environment cannot be opened now (every slot in use) waits for the next sweep; readers never see
 * its expired ratings meanwhile.
 * @returns how many ratings were deleted.
 */
export async function sweepFeedbackRetention(
  authority: TenantAuthority,
  logger: HostLogger,
  now: number = Date.now(),
  owns: (tenantId: string) => boolean = () => true,
): Promise<number> {
  let deleted = 0;
  for (const tenant of authority.registry.listTenants()) {
    if (!owns(tenant.id)) continue;
    // A tenant in the middle of a move (frozen, arriving, or retired here) takes no writes; the
    // host that serves it next sweeps it.
    if (authority.registry.fleetState(tenant.id) !== undefined) continue;
    await loopTurn();
    let scope: TenantScope;
    try {
      scope = mintScopeForOperator(authority, operatorForHost(), tenant.id);
    } catch (error) {
      if (error instanceof HostError && (error.code === 'STORAGE_ENV_LIMIT' || error.code === 'TENANT_NOT_FOUND')) continue;
      throw error;
    }
    try {
      deleted += purgeFeedback(scope, now);
    } finally {
      scope.release();
    }
  }
  if (deleted > 0) logger.info({ deleted }, 'expired feedback deleted');
  return deleted;
}

/**
 * Starts the hourly sweep. @returns a function that stops it (and waits for a sweep in progress).
 */
export function startFeedbackSweep(
  authority: TenantAuthority,
  logger: HostLogger,
  owns: (tenantId: string) => boolean = () => true,
  intervalMs = FEEDBACK_SWEEP_INTERVAL_MS,
): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() => sweepFeedbackRetention(authority, logger, Date.now(), owns)).catch((error: unknown) => logger.error({ err: error }, 'feedback sweep failed'));
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

function timeKey(ms: number): string {
  return Math.max(0, ms).toString(36).padStart(9, '0');
}

function currentTag(store: TenantStore, chunkId: string, docId: string): string {
  const row = store.chunkRows.get(chunkId);
  const chunk = row === undefined ? undefined : store.chunks.get(row);
  return chunk === undefined || chunk.docId !== docId ? '' : chunk.tag;
}
