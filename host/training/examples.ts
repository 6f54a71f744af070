/**
 * Training examples from ONE tenant's positively rated answers (host/DESIGN.md, invariant 6): every
 * function here takes exactly one TenantScope, so an example can only be built from that tenant's
 * own feedback and chunks.
 *
 * An example is a line of the OpenAI chat fine-tuning format — `messages` with the tenant's system
 * prompt and the context the answer rested on, the question, the answer — plus `provenance`: tenant,
 * ask, rating time and the document and chunk ids of every source. The context is rebuilt from the
 * tenant's current index, and each source must still be the chunk that was rated: same document,
 * same provenance tag, and the tag must verify under this tenant's key. An example whose source
 * changed or never was this tenant's is dropped, as is one holding another tenant's canary.
 */
import { holdsForeignCanary, timingSafeEqualText, type CanaryOwner } from '../pipeline/guard.ts';
import type { ChunkRecord, TenantStore } from '../storage/tenant-store.ts';
import type { TenantScope } from '../tenants/scope.ts';
import { readSettings } from '../tenants/settings.ts';
import { retainedFeedback, type FeedbackRecord, type FeedbackSource } from './feedback.ts';

/** One chat message of an example. */
export interface ExampleMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Where an example came from. */
export interface ExampleProvenance {
  tenant: string;
  /** The rating's id: unique within the tenant (ask ids are only unique within a connection). */
  feedbackId: string;
  askId: string;
  /** ISO 8601 time of the rating. */
  ratedAt: string;
  sources: { docId: string; chunkId: string }[];
}

/** One line of the export: OpenAI chat fine-tuning format plus provenance. */
export interface TrainingExample {
  messages: ExampleMessage[];
  provenance: ExampleProvenance;
}

/** Why an example was left out. */
export type DropReason = 'source-changed' | 'foreign-canary' | 'canary' | 'near-duplicate';

/** An example left out, for the report (ids and reasons only). */
export interface DroppedExample {
  tenant: string;
  feedbackId: string;
  askId: string;
  reason: DropReason;
  /** For near-duplicates: the other tenant and its chunk (operator reports only). */
  detail?: Record<string, string | number>;
}

/** What building one rating's example gave. */
export type ExampleOutcome = { kind: 'kept'; example: TrainingExample; chunks: ChunkRecord[] } | { kind: 'dropped'; dropped: DroppedExample };

/**
 * The examples of the scope's retained, positively rated answers, oldest first, each checked within
 * the tenant's own partition (sources, foreign canaries). Read lazily, a page of feedback at a time.
 */
export function* tenantExamples(scope: TenantScope, owner: CanaryOwner, now: number = Date.now()): Generator<ExampleOutcome> {
  const systemPrompt = readSettings(scope).systemPrompt;
  for (const { id, record } of retainedFeedback(scope, now)) {
    if (record.rating !== 1) continue;
    yield buildExample(scope, id, record, systemPrompt, owner);
  }
}

function buildExample(scope: TenantScope, feedbackId: string, record: FeedbackRecord, systemPrompt: string, owner: CanaryOwner): ExampleOutcome {
  const drop = (reason: DropReason): ExampleOutcome => ({ kind: 'dropped', dropped: { tenant: scope.tenantId, feedbackId, askId: record.askId, reason } });
  const chunks: ChunkRecord[] = [];
  for (const source of record.sources) {
    const chunk = verifiedChunk(scope.store, source);
    if (chunk === undefined) return drop('source-changed');
    chunks.push(chunk);
  }
  const context = chunks.map((chunk) => `[${chunk.chunkId}] ${chunk.title}:\n${chunk.text}`).join('\n\n');
  const messages: ExampleMessage[] = [
    { role: 'system', content: context === '' ? systemPrompt : `${systemPrompt}\n\nContext:\n${context}` },
    { role: 'user', content: record.question },
    { role: 'assistant', content: record.answer },
  ];
  if (messages.some((message) => holdsForeignCanary(message.content, scope.tenantId, owner))) return drop('foreign-canary');
  const provenance: ExampleProvenance = {
    tenant: scope.tenantId,
    feedbackId,
    askId: record.askId,
    ratedAt: new Date(record.at).toISOString(),
    sources: record.sources.map(({ docId, chunkId }) => ({ docId, chunkId })),
  };
  return { kind: 'kept', example: { messages, provenance }, chunks };
}

/**
 * The source's chunk when it is still the one that was rated: in this tenant's index under the same
 * document, with the stored tag, and that tag verifies under this tenant's key.
 */
function verifiedChunk(store: TenantStore, source: FeedbackSource): ChunkRecord | undefined {
  const row = store.chunkRows.get(source.chunkId);
  const chunk = row === undefined ? undefined : store.chunks.get(row);
  if (chunk === undefined || chunk.docId !== source.docId || source.tag === '' || !timingSafeEqualText(chunk.tag, source.tag)) return undefined;
  return timingSafeEqualText(chunk.tag, store.provenanceTag(chunk.chunkId, chunk.text)) ? chunk : undefined;
}
