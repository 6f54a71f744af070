/**
 * The near-duplicate half of the leak audit a training pool passes before anything leaves the host:
 * an example must not hold a passage of ANOTHER tenant's chunk. (The canary half is
 * pipeline/guard.ts's {@link holdsForeignCanary}; provenance is checked as each example is built.)
 *
 * The pooled examples are indexed (training/minhash.ts windows of every question, answer and source
 * chunk; a chunk cited by many examples is fingerprinted once), then every chunk of every tenant on
 * the host is streamed past the index — each tenant read through its own scope, one at a time, and
 * released before the next — and a window that matches an example of a different tenant flags that
 * example. The index holds the pool only, so memory is bounded by LIMITS.poolExamplesMax however
 * much data the host holds; the time is one pass over the host's chunks.
 */
import { HostError } from '../errors.ts';
import { loopTurn } from '../loop-steps.ts';
import { mintScopeForOperator, type OperatorCredential, type TenantAuthority } from '../tenants/scope.ts';
import type { ChunkRecord } from '../storage/tenant-store.ts';
import type { TrainingExample } from './examples.ts';
import { LshIndex, windowSignatures } from './minhash.ts';

/** An example to audit, with the chunks its context was built from. */
export interface PooledExample {
  id: number;
  tenant: string;
  example: TrainingExample;
  chunks: ChunkRecord[];
}

/** Why an example was flagged: the other tenant's chunk it resembles. */
export interface NearDuplicateFinding {
  ofTenant: string;
  chunkId: string;
  similarity: number;
}

/** Chunks read per turn of the event loop while streaming a tenant's chunks past the index. */
const CHUNKS_PER_TURN = 256;

/** The index over a pool's examples. */
export class NearDuplicateAudit {
  readonly #index = new LshIndex<number>();
  /** Unit id → ids of the examples holding it (a shared source chunk is one unit). */
  readonly #holders: number[][] = [];
  readonly #tenantOf = new Map<number, string>();
  readonly #findings = new Map<number, NearDuplicateFinding>();
  #chunksCompared = 0;

  constructor(examples: readonly PooledExample[]) {
    const chunkUnits = new Map<string, number>();
    for (const pooled of examples) {
      this.#tenantOf.set(pooled.id, pooled.tenant);
      for (const chunk of pooled.chunks) {
        const key = `${pooled.tenant}\u0000${chunk.chunkId}`;
        const known = chunkUnits.get(key);
        if (known !== undefined) (this.#holders[known] as number[]).push(pooled.id);
        else chunkUnits.set(key, this.#addUnit(chunk.text, pooled.id));
      }
      for (const message of pooled.example.messages) if (message.role !== 'system') this.#addUnit(message.content, pooled.id);
    }
  }

  #addUnit(text: string, exampleId: number): number {
    const unit = this.#holders.length;
    this.#holders.push([exampleId]);
    for (const sig of windowSignatures(text)) this.#index.add(sig, unit);
    return unit;
  }

  /** Compares one chunk of `tenantId` with every example of the other tenants. */
  compareChunk(tenantId: string, chunk: { chunkId: string; text: string }): void {
    this.#chunksCompared += 1;
    for (const sig of windowSignatures(chunk.text)) {
      for (const { value: unit, similarity } of this.#index.nearDuplicates(sig)) {
        for (const exampleId of this.#holders[unit] ?? []) {
          if (this.#tenantOf.get(exampleId) === tenantId) continue;
          const previous = this.#findings.get(exampleId);
          if (previous === undefined || previous.similarity < similarity) this.#findings.set(exampleId, { ofTenant: tenantId, chunkId: chunk.chunkId, similarity });
        }
      }
    }
  }

  /** Examples flagged so far, by example id. */
  get findings(): ReadonlyMap<number, NearDuplicateFinding> {
    return this.#findings;
  }

  /** Chunks compared so far. */
  get chunksCompared(): number {
    return this.#chunksCompared;
  }
}

/**
 * Streams every chunk of every tenant on the host past the audit, each tenant through its own
 * operator scope, released before the next, yielding to the event loop between pages.
 * @returns how many tenants were compared.
 * @throws {HostError} STORAGE_ENV_LIMIT when a tenant's environment cannot be opened: an audit that
 *   skipped a tenant would prove nothing about it.
 */
export async function compareWithHost(audit: NearDuplicateAudit, authority: TenantAuthority, operator: OperatorCredential): Promise<number> {
  let compared = 0;
  for (const tenant of authority.registry.listTenants()) {
    let scope;
    try {
      scope = mintScopeForOperator(authority, operator, tenant.id);
    } catch (error) {
      // Deleted while the audit ran: nothing of it can be in the pool any more.
      if (error instanceof HostError && error.code === 'TENANT_NOT_FOUND') continue;
      throw error;
    }
    try {
      let start: number | undefined;
      for (;;) {
        const page = [...scope.store.chunks.entries({ ...(start === undefined ? {} : { start }), limit: CHUNKS_PER_TURN })];
        for (const { value } of page) audit.compareChunk(tenant.id, value);
        if (page.length < CHUNKS_PER_TURN) break;
        start = (page.at(-1)?.key as number) + 1;
        await loopTurn();
      }
    } finally {
      scope.release();
    }
    compared += 1;
    await loopTurn();
  }
  return compared;
}
