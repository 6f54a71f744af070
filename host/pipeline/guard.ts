/**
 * The leak guard (host/DESIGN.md, invariant 4). Before anything reaches a model it checks that the
 * context holds only material the host resolved for this tenant during this ask: every chunk
 * reference must name a chunk this ask resolved from the tenant's own index, and no text anywhere in
 * the context may hold another tenant's canary token. The answer stream is scanned the same way,
 * holding back a canary's length of text so a canary split across tokens is still caught before
 * any part of it is sent.
 */
import { timingSafeEqual } from 'node:crypto';
import { HostError } from '../errors.ts';
import type { HostLogger } from '../log.ts';
import { CANARY_PATTERN } from '../storage/registry.ts';
import { appendAudit } from '../tenants/audit.ts';
import type { TenantScope } from '../tenants/scope.ts';

/** Looks up which tenant owns a canary token (the registry's map). */
export type CanaryOwner = (token: string) => string | undefined;

/** Length of every canary token: `ctxcanary-` + 24 hex characters. */
export const CANARY_CHARS = 34;

/**
 * Which layer of the guard blocked an ask (the `layer` of a LEAK_BLOCKED error's detail, of its
 * audit entry and of its log line): a chunk reference this ask did not resolve, a provenance tag
 * that is not this tenant's, another tenant's canary in the context, in the model's answer stream,
 * or in a cached answer being replayed.
 */
export type GuardLayer = 'reference' | 'provenance' | 'context-canary' | 'answer-canary' | 'cached-answer-canary';

/**
 * Whether `text` holds another tenant's canary: a token some tenant of this host other than
 * `tenantId` owns. With `tenantId` undefined, any canary-shaped token counts, for material that
 * leaves every partition (a training pool), where dropping an example costs nothing.
 *
 * A canary-shaped token nobody owns is not a leak: no existing tenant's data can have carried it
 * (a deleted tenant's data is shredded with its canary), and counting it would let any end user
 * raise a leak alarm — and a document holding such text fail every ask that retrieves it — just
 * by typing `ctxcanary-` and 24 hex digits. Cost: one regular-expression pass over the text plus
 * one lookup per canary-shaped match, independent of how many tenants exist.
 */
export function holdsForeignCanary(text: string, tenantId: string | undefined, owner: CanaryOwner): boolean {
  if (!text.includes('ctxcanary-')) return false;
  for (const match of text.matchAll(CANARY_PATTERN)) {
    if (tenantId === undefined) return true;
    const found = owner(match[0]);
    if (found !== undefined && found !== tenantId) return true;
  }
  return false;
}

/**
 * Throws when `text` holds a canary that belongs to a tenant other than `tenantId`.
 * @throws {HostError} LEAK_BLOCKED naming where the foreign canary was found (never the canary), with `detail.layer`.
 */
export function assertNoForeignCanary(text: string, tenantId: string, owner: CanaryOwner, where: string, layer: GuardLayer = 'context-canary'): void {
  if (holdsForeignCanary(text, tenantId, owner)) {
    throw new HostError('LEAK_BLOCKED', `the ${where} holds a canary that is not this tenant's; nothing was sent`, { layer });
  }
}

/** One chunk resolved for this ask, with its provenance. */
export interface ResolvedChunk {
  chunkId: string;
  docId: string;
  title: string;
  text: string;
  score: number;
  /** Provenance tag the chunk was stored with (TenantStore.provenanceTag). */
  tag: string;
}

/** A message part as the prompt plugin returns it. */
export interface MessagePart {
  kind: 'text' | 'chunk';
  value: string;
}

/** A message as the prompt plugin returns it. */
export interface AssembledMessage {
  role: 'system' | 'user' | 'assistant';
  parts: MessagePart[];
}

/** A message ready for the model: chunk references replaced by the chunk text. */
export interface ContextMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * Resolves chunk references against the chunks this ask resolved for this tenant, and scans the
 * result for foreign canaries. Every chunk's provenance tag is recomputed with the asking tenant's
 * key: a chunk from another tenant's store, or with altered text, fails even if a bug put it in
 * the resolved set.
 * @returns the messages for the model and the chunks actually used, in first-use order.
 * @throws {HostError} LEAK_BLOCKED when a reference names a chunk not resolved for this ask, or a
 *   foreign canary appears anywhere in the context.
 */
export function guardContext(
  messages: AssembledMessage[],
  resolved: ReadonlyMap<string, ResolvedChunk>,
  tenant: { id: string; owner: CanaryOwner; tagOf: (chunkId: string, text: string) => string },
): { messages: ContextMessage[]; used: ResolvedChunk[] } {
  const used = new Map<string, ResolvedChunk>();
  const out = messages.map((message, index) => {
    let content = '';
    for (const part of message.parts) {
      if (part.kind === 'text') {
        content += part.value;
        continue;
      }
      const chunk = resolved.get(part.value);
      if (chunk === undefined) {
        throw new HostError('LEAK_BLOCKED', `message ${index} references a chunk that was not resolved for this ask; nothing was sent`, { layer: 'reference' });
      }
      if (!used.has(chunk.chunkId) && !timingSafeEqualText(chunk.tag, tenant.tagOf(chunk.chunkId, chunk.text))) {
        throw new HostError('LEAK_BLOCKED', `message ${index} holds a chunk whose provenance tag is not this tenant's; nothing was sent`, { layer: 'provenance' });
      }
      used.set(chunk.chunkId, chunk);
      content += chunk.text;
    }
    assertNoForeignCanary(content, tenant.id, tenant.owner, `context (message ${index})`);
    return { role: message.role, content };
  });
  return { messages: out, used: [...used.values()] };
}

/** Compares two strings (tags) in time independent of where they differ. */
export function timingSafeEqualText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Scans a token stream for foreign canaries before it is sent. Feed tokens in; it returns the
 * text that is safe to send now and holds back the last CANARY_CHARS - 1 characters, which could be
 * the start of a canary that the next token completes.
 */
export class StreamGuard {
  #pending = '';
  readonly #tenantId: string;
  readonly #owner: CanaryOwner;
  readonly #where: string;
  readonly #layer: GuardLayer;

  /** @param source where the stream comes from: a model's answer, or a cached answer being replayed. */
  constructor(tenantId: string, owner: CanaryOwner, source: 'model' | 'cache' = 'model') {
    this.#tenantId = tenantId;
    this.#owner = owner;
    this.#where = source === 'model' ? 'answer' : 'cached answer';
    this.#layer = source === 'model' ? 'answer-canary' : 'cached-answer-canary';
  }

  /**
   * Adds a token; returns the text now safe to send (possibly empty).
   * @throws {HostError} LEAK_BLOCKED when the stream so far holds a foreign canary.
   */
  push(token: string): string {
    this.#pending += token;
    assertNoForeignCanary(this.#pending, this.#tenantId, this.#owner, this.#where, this.#layer);
    const keep = CANARY_CHARS - 1;
    if (this.#pending.length <= keep) return '';
    const safe = this.#pending.slice(0, this.#pending.length - keep);
    this.#pending = this.#pending.slice(this.#pending.length - keep);
    return safe;
  }

  /** Ends the stream; returns the held-back text (already scanned). */
  flush(): string {
    const rest = this.#pending;
    this.#pending = '';
    return rest;
  }
}

/**
 * Records an ask the guard blocked: an entry in the tenant's audit log and an error-level log line,
 * each with the layer and the ids only, never the blocked text. (The metric is counted from the
 * ask's outcome by the observability side, like every other error code.) A failure to write the
 * audit entry is logged and swallowed: the block itself already happened and must still reach the client.
 */
export function reportLeakBlock(scope: TenantScope, logger: HostLogger, askId: string, error: HostError): void {
  const layer = typeof error.detail?.['layer'] === 'string' ? error.detail['layer'] : 'unknown';
  logger.error({ tenant: scope.tenantId, askId, layer, code: error.code }, 'leak guard blocked an ask');
  try {
    appendAudit(scope, { kind: 'leak.blocked', actor: 'host', detail: { layer, askId } });
  } catch (auditError) {
    logger.error({ tenant: scope.tenantId, err: auditError }, 'could not write the audit entry of a blocked leak');
  }
}
