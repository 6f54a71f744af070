/**
 * The leak guard's cost per ask with 10,000 tenants on the host (issue 6: ≤ 50 µs p50), and what
 * the other isolation machinery of that issue costs at the same scale:
 *
 * - guard per ask: the provenance tag of each of 8 context chunks recomputed with the tenant's key,
 *   the canary scan of the assembled context, and the stream guard over a 60-token answer, against
 *   a real registry holding 10,000 tenants' canaries; clean, with the tenant's own canary in the
 *   context (one registry lookup), and blocked by a foreign one;
 * - master key rotation: how long re-encrypting that registry holds the event loop;
 * - leak audit: chunks per second streamed past a pool's near-duplicate index.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HostError } from '../host/errors.ts';
import { guardContext, StreamGuard, type AssembledMessage, type ResolvedChunk } from '../host/pipeline/guard.ts';
import { createLocalEmbedder } from '../host/retrieval/embedder.ts';
import { ingestDocuments } from '../host/retrieval/ingest.ts';
import { TenantEnvironments } from '../host/storage/environments.ts';
import { parseMasterKey } from '../host/storage/keys.ts';
import { Registry } from '../host/storage/registry.ts';
import { createTenant } from '../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess, type TenantScope } from '../host/tenants/scope.ts';
import { NearDuplicateAudit, type PooledExample } from '../host/training/leak-audit.ts';
import { heading, line, ms, summarise, verdict } from './stats.ts';
import { syntheticDocuments } from './synthetic.ts';

/** Runs the guard benchmarks and prints their figures. */
export async function runGuardBenchmarks(quick: boolean): Promise<void> {
  const tenants = quick ? 2_000 : 10_000;
  const dataDir = mkdtempSync(join(tmpdir(), 'ctx-bench-guard-'));
  const registry = Registry.open(dataDir, parseMasterKey('5a'.repeat(32), 'bench'));
  const environments = new TenantEnvironments({ dataDir, registry, openMax: 8 });
  try {
    heading(`leak guard per ask, ${tenants.toLocaleString('en')} tenants' canaries in the registry (8 chunks, 60-token answer)`);
    const started = performance.now();
    const { apiKey } = createTenant({ registry, environments }, operatorFromLocalAccess(), 'asker');
    for (let i = 1; i < tenants; i += 1) registry.createTenant(`tenant ${i}`);
    line('registry filled in', ms(performance.now() - started));
    const scope = mintScopeFromApiKey({ registry, environments }, apiKey);
    const foreign = registry.listTenants().find((tenant) => tenant.id !== scope.tenantId)?.canary ?? '';
    const ask = await askFixture(scope);
    const rounds = quick ? 2_000 : 20_000;
    for (const [name, extra, bound] of [
      ['clean context', '', true],
      ["with the tenant's own canary (one lookup)", ` ${scope.canary}`, true],
      ['blocked: a foreign canary in the context', ` ${foreign}`, false],
    ] as const) {
      const summary = summarise(measureGuard(scope, registry, ask, extra, rounds));
      line(`  ${name}`, `p50 ${ms(summary.p50)}  p99 ${ms(summary.p99)}`, bound ? verdict(summary.p50, 0.05) : '');
    }
    scope.release();

    heading(`master key rotation with ${tenants.toLocaleString('en')} tenants (registry re-encrypted, every data key re-wrapped)`);
    const rotation = performance.now();
    const { tenants: rewrapped } = registry.rotateMasterKey(parseMasterKey('5b'.repeat(32), 'bench'));
    line(`event loop held, ${rewrapped.toLocaleString('en')} keys`, ms(performance.now() - rotation));

    heading('leak audit: chunks compared with a pool of 1,000 examples (MinHash windows, LSH)');
    line('chunks per second', measureAudit(quick ? 2_000 : 10_000).toFixed(0));
  } finally {
    await environments.close();
    await registry.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** One ask's material: 8 chunks of the tenant's own index, the messages referencing them, an answer in tokens. */
async function askFixture(scope: TenantScope): Promise<{ resolved: Map<string, ResolvedChunk>; messages: AssembledMessage[]; tokens: string[] }> {
  const documents = syntheticDocuments(8).map((document) => ({ ...document, text: `${document.text} ${document.text}` }));
  await ingestDocuments(scope, createLocalEmbedder(), documents);
  const resolved = new Map<string, ResolvedChunk>();
  const parts: AssembledMessage['parts'] = [{ kind: 'text', value: 'You are a helpful assistant. Answer only from the context.\n' }];
  for (const { value: chunk } of scope.store.chunks.entries({ limit: 8 })) {
    resolved.set(chunk.chunkId, { chunkId: chunk.chunkId, docId: chunk.docId, title: chunk.title, text: chunk.text, score: 1, tag: chunk.tag });
    parts.push({ kind: 'text', value: `[${chunk.chunkId}] ${chunk.title}: ` }, { kind: 'chunk', value: chunk.chunkId });
  }
  const answer = (documents[0]?.text ?? '').split(' ').slice(0, 60);
  return { resolved, messages: [{ role: 'system', parts }, { role: 'user', parts: [{ kind: 'text', value: 'What about the first record?' }] }], tokens: answer.map((word) => `${word} `) };
}

function measureGuard(scope: TenantScope, registry: Registry, ask: Awaited<ReturnType<typeof askFixture>>, extra: string, rounds: number): number[] {
  const owner = (token: string) => registry.canaryOwner(token);
  const tenant = { id: scope.tenantId, owner, tagOf: (chunkId: string, text: string) => scope.store.provenanceTag(chunkId, text) };
  const messages: AssembledMessage[] = [...ask.messages.slice(0, 1), { role: 'user', parts: [{ kind: 'text', value: `What about the first record?${extra}` }] }];
  const samples: number[] = [];
  for (let i = 0; i < rounds; i += 1) {
    const started = performance.now();
    try {
      guardContext(messages, ask.resolved, tenant);
      const stream = new StreamGuard(scope.tenantId, owner);
      for (const token of ask.tokens) stream.push(token);
      stream.flush();
    } catch (error) {
      if (!(error instanceof HostError && error.code === 'LEAK_BLOCKED')) throw error;
    }
    samples.push(performance.now() - started);
  }
  return samples;
}

function measureAudit(chunks: number): number {
  const documents = syntheticDocuments(chunks + 1_000);
  const pooled: PooledExample[] = documents.slice(0, 1_000).map((document, id) => ({
    id,
    tenant: 'pool',
    example: { messages: [{ role: 'assistant', content: document.text }], provenance: { tenant: 'pool', feedbackId: `${id}`, askId: `${id}`, ratedAt: '', sources: [] } },
    chunks: [],
  }));
  const audit = new NearDuplicateAudit(pooled);
  const started = performance.now();
  for (const document of documents.slice(1_000)) audit.compareChunk('other', { chunkId: document.id, text: document.text });
  return chunks / ((performance.now() - started) / 1000);
}

// Standalone: `node --disable-wasm-trap-handler --import tsx bench/guard.ts [--quick]`.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runGuardBenchmarks(process.argv.includes('--quick')).catch((error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
