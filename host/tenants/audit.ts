/**
 * Each tenant's append-only audit log: key created and revoked, plugin uploads, exports and imports,
 * consent changes, pools, blocked leaks. It lives in the tenant's own environment (its `audit`
 * table), so it moves with an export and dies with a deletion, and the tenant reads it with its own
 * key (`GET /v1/audit`).
 *
 * Append-only by construction and by evidence: this module offers no update or delete, and every
 * entry carries the SHA-256 of its content chained to the hash of the entry before it, so an entry
 * altered or removed behind the module's back breaks the chain at that point ({@link readAudit}
 * reports where). Entries hold ids, counts and codes — never document text, questions or answers.
 */
import { createHash } from 'node:crypto';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { TenantScope } from './scope.ts';

/** What can be audited (a list, so an imported log can be checked against it). */
export const AUDIT_KINDS = [
  'tenant.created',
  'tenant.exported',
  'tenant.imported',
  'key.created',
  'key.revoked',
  'plugin.uploaded',
  'plugin.activated',
  'training.exported',
  'training.consent',
  'training.pooled',
  'leak.blocked',
] as const;

/** What can be audited. */
export type AuditKind = (typeof AUDIT_KINDS)[number];

/** Who can cause an entry: the tenant (with its API key), the operator, or the host itself. */
export const AUDIT_ACTORS = ['tenant', 'operator', 'host'] as const;

/** Who caused an entry. */
export type AuditActor = (typeof AUDIT_ACTORS)[number];

/** Flat, wire-safe detail: ids, counts, codes. */
export type AuditDetail = Record<string, string | number | boolean | null>;

/** One stored entry. */
export interface AuditEntry {
  seq: number;
  /** Epoch milliseconds. */
  at: number;
  kind: AuditKind;
  actor: AuditActor;
  detail: AuditDetail;
  /** Hash of the entry before (64 zeros for the first). */
  prev: string;
  /** SHA-256 over `prev` and this entry's content. */
  hash: string;
}

/** An event to append. */
export interface AuditEvent {
  kind: AuditKind;
  actor: AuditActor;
  detail?: AuditDetail;
}

const GENESIS = '0'.repeat(64);
const HEAD_KEY = 'auditHead';

/** Where the chain stands: the last sequence number and its hash (kept in the tenant's meta table). */
interface AuditHead {
  seq: number;
  hash: string;
}

/** The blocked-leak entries written in the current minute, and how many were held back. */
interface LeakWindow {
  startedAt: number;
  written: number;
  suppressed: number;
}

/**
 * Appends an entry in one transaction with the head it chains to. A burst of `leak.blocked` entries
 * beyond LIMITS.auditLeakEntriesPerMinuteMax in a minute is counted, not written, and the count goes
 * into the next `leak.blocked` entry as `suppressed`: an end user replaying a blocked ask cannot
 * grow the log at the ask rate, and no block goes unrecorded.
 * @returns the entry written, or undefined when it was counted into a later one.
 */
export function appendAudit(scope: TenantScope, event: AuditEvent, now: number = Date.now()): AuditEntry | undefined {
  const store = scope.store;
  const detail: AuditDetail = { ...event.detail };
  if (event.kind === 'leak.blocked') {
    const window = store.derived<LeakWindow>('auditLeakWindow', () => ({ startedAt: now, written: 0, suppressed: 0 }));
    if (now - window.startedAt >= 60_000) Object.assign(window, { startedAt: now, written: 0 });
    if (window.written >= LIMITS.auditLeakEntriesPerMinuteMax) {
      window.suppressed += 1;
      return undefined;
    }
    window.written += 1;
    if (window.suppressed > 0) detail['suppressed'] = window.suppressed;
    window.suppressed = 0;
  }
  return store.transaction(() => {
    const head = (store.meta.get(HEAD_KEY) as AuditHead | undefined) ?? { seq: 0, hash: GENESIS };
    const content = { seq: head.seq + 1, at: now, kind: event.kind, actor: event.actor, detail };
    const entry: AuditEntry = { ...content, prev: head.hash, hash: entryHash(head.hash, content) };
    store.audit.put(entry.seq, entry);
    store.meta.put(HEAD_KEY, { seq: entry.seq, hash: entry.hash } satisfies AuditHead);
    return entry;
  });
}

/** One page of the log and whether its chain verifies. */
export interface AuditPage {
  entries: AuditEntry[];
  /** Pass as `after` for the next page; null at the end. */
  next: number | null;
  /** Every entry on the page hashes to its `hash` and chains to the entry before it. */
  verified: boolean;
  /** The first sequence number on the page that does not verify, when one does not. */
  brokenAt?: number;
}

/**
 * Reads entries after sequence number `after`, oldest first, verifying each entry's hash and its
 * link to the entry before it (including the one before the page).
 * @throws {HostError} HTTP_QUERY_INVALID when `limit` is not 1..LIMITS.auditEntriesPerPageMax or `after` is negative.
 */
export function readAudit(scope: TenantScope, options: { after?: number; limit?: number } = {}): AuditPage {
  const after = options.after ?? 0;
  const limit = options.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > LIMITS.auditEntriesPerPageMax) {
    throw new HostError('HTTP_QUERY_INVALID', `limit must be an integer in 1..${LIMITS.auditEntriesPerPageMax}, got ${options.limit}`);
  }
  if (!Number.isInteger(after) || after < 0) throw new HostError('HTTP_QUERY_INVALID', `after must be a non-negative integer, got ${options.after}`);
  const store = scope.store;
  const before = after === 0 ? undefined : (store.audit.get(after) as AuditEntry | undefined);
  let expectedPrev = after === 0 ? GENESIS : before?.hash;
  let expectedSeq = after + 1;
  const entries: AuditEntry[] = [];
  let brokenAt: number | undefined;
  for (const { value } of store.audit.entries({ start: after + 1, limit: limit + 1 })) {
    // One entry past the page only tells whether there is a next page.
    if (entries.length === limit) return finish(entries, brokenAt, true);
    const entry = value as AuditEntry;
    const intact = entry.seq === expectedSeq && entry.prev === expectedPrev && entry.hash === entryHash(entry.prev, contentOf(entry));
    if (!intact && brokenAt === undefined) brokenAt = expectedSeq;
    entries.push(entry);
    expectedPrev = entry.hash;
    expectedSeq = entry.seq + 1;
  }
  return finish(entries, brokenAt, false);
}

function finish(entries: AuditEntry[], brokenAt: number | undefined, more: boolean): AuditPage {
  const page: AuditPage = { entries, next: more ? (entries.at(-1)?.seq ?? null) : null, verified: brokenAt === undefined };
  if (brokenAt !== undefined) page.brokenAt = brokenAt;
  return page;
}

function contentOf(entry: AuditEntry): Pick<AuditEntry, 'seq' | 'at' | 'kind' | 'actor' | 'detail'> {
  return { seq: entry.seq, at: entry.at, kind: entry.kind, actor: entry.actor, detail: entry.detail };
}

/** SHA-256 over the previous hash and the entry's content, with detail keys sorted (stored maps need not keep their order). */
function entryHash(prev: string, content: Pick<AuditEntry, 'seq' | 'at' | 'kind' | 'actor' | 'detail'>): string {
  const detail = Object.keys(content.detail ?? {})
    .sort()
    .map((key) => [key, content.detail[key] ?? null]);
  const canonical = JSON.stringify([content.seq, content.at, content.kind, content.actor, detail]);
  return createHash('sha256').update(prev).update('\u0000').update(canonical).digest('hex');
}
