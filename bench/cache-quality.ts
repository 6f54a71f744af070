/**
 * Quality of the semantic cache's similarity path on test/fixtures/data/paraphrase-pairs.json (999
 * pairs of a question and a machine paraphrase of it; see its README), through the real
 * SemanticCache on a real tenant environment, beside GPTCache's published figures on the same set.
 *
 *   npx tsx bench/cache-quality.ts            (local embedder; also the remote one when EMBED_URL is set)
 *
 * - positives (GPTCache's protocol): every distinct origin is cached; each paraphrase is asked. A
 *   hit is correct when it returns the paraphrase's own origin, wrong when it returns another.
 * - negatives: half of the distinct origins are cached; the paraphrases of the other half are asked,
 *   so every hit is wrong (pairs whose origin text is also in the cached half are left out).
 * The set repeats some facts in different words (near-duplicate origins), so part of what counts as
 * "wrong" here is a right answer to the same question; the figures do not correct for that.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cacheNamespace, type CacheNamespace } from '../host/cache/namespace.ts';
import { SemanticCache, type CachePolicy } from '../host/cache/semantic-cache.ts';
import { loadConfig } from '../host/config.ts';
import { createLocalEmbedder, type Embedder } from '../host/retrieval/embedder.ts';
import { createOpenAIEmbedder } from '../host/retrieval/openai-embedder.ts';
import { TenantEnvironments } from '../host/storage/environments.ts';
import { parseMasterKey } from '../host/storage/keys.ts';
import { Registry } from '../host/storage/registry.ts';
import { createTenant } from '../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess, type TenantScope } from '../host/tenants/scope.ts';
import { TENANT_SETTINGS_DEFAULTS } from '../host/tenants/settings.ts';
import { heading } from './stats.ts';

const DATA = new URL('../test/fixtures/data/paraphrase-pairs.json', import.meta.url);
const THRESHOLDS = [0.98, 0.95, 0.92, 0.9, 0.85, 0.8, 0.75, 0.7];
/** GPTCache (SQLite + FAISS + ONNX embedder) on the same 999 pairs: its published figures (test/fixtures/data/README.md). */
const GPTCACHE: Readonly<Record<string, [number, number, number]>> = { '0.95': [425, 25, 549], '0.90': [804, 77, 118], '0.80': [904, 92, 3] };
const WRONG_SHARE_MAX = 0.01;

interface Pair {
  origin: string;
  similar: string;
}

/** The best cached origin for one asked paraphrase, and whether it is the paraphrase's own. */
interface Outcome {
  score: number;
  correct: boolean;
}

/** What one run measures. */
export interface CacheQuality {
  embedderId: string;
  positives: Outcome[];
  /** Best score of each negative lookup (every hit is wrong). */
  negatives: number[];
  cached: number;
}

/** Runs both simulations for `embedder` on a temporary tenant environment. */
export async function measureCacheQuality(embedder: Embedder): Promise<CacheQuality> {
  const pairs = JSON.parse(readFileSync(DATA, 'utf8')) as Pair[];
  const texts = [...new Set(pairs.flatMap((pair) => [pair.origin, pair.similar]))];
  const vectors = new Map(texts.map((text, i) => [text, i]));
  const embedded = await embedder.embedBatch(texts);
  const vectorOf = (text: string): Float32Array => embedded[vectors.get(text) as number] as Float32Array;
  const origins = [...new Set(pairs.map((pair) => pair.origin))];
  return withCache(embedder, (cache, namespace, policy) => {
    for (const origin of origins) cache.store({ namespace, question: origin, vector: vectorOf(origin), answer: origin, sources: [] }, policy);
    const positives = pairs.map((pair) => {
      const hit = cache.lookupSimilar(namespace, vectorOf(pair.similar), policy);
      return { score: hit?.similarity ?? -1, correct: hit?.answer === pair.origin };
    });
    return { positives, origins };
  }).then(async ({ positives }) => {
    const half = new Set(origins.filter((_, i) => i % 2 === 0));
    const negatives = await withCache(embedder, (cache, namespace, policy) => {
      for (const origin of half) cache.store({ namespace, question: origin, vector: vectorOf(origin), answer: origin, sources: [] }, policy);
      return pairs.filter((pair) => !half.has(pair.origin)).map((pair) => cache.lookupSimilar(namespace, vectorOf(pair.similar), policy)?.similarity ?? -1);
    });
    return { embedderId: embedder.id, positives, negatives, cached: origins.length };
  });
}

/** Runs `use` against a fresh tenant's SemanticCache, with a threshold low enough to return every best match. */
async function withCache<T>(embedder: Embedder, use: (cache: SemanticCache, namespace: CacheNamespace, policy: CachePolicy) => T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-bench-quality-'));
  const registry = Registry.open(dir, parseMasterKey('66'.repeat(32), 'bench'));
  const environments = new TenantEnvironments({ dataDir: dir, registry, openMax: 2 });
  const authority = { registry, environments };
  const { apiKey } = createTenant(authority, operatorFromLocalAccess(), 'quality');
  const scope: TenantScope = mintScopeFromApiKey(authority, apiKey);
  try {
    const namespace = cacheNamespace({
      tenantId: scope.tenantId,
      modelId: 'bench',
      embedderId: embedder.id,
      plugins: { retrieval: '0'.repeat(64), prompt: '1'.repeat(64) },
      prompt: { systemPrompt: '', topK: 8, tokenBudget: 1500 },
      generation: scope.store.counters().generation,
      scope: 'tenant',
      endUser: undefined,
    }) as CacheNamespace;
    const policy: CachePolicy = { threshold: -1, ttlMs: 86_400_000, quotaBytes: 256 * 1024 * 1024, now: Date.now() };
    return use(SemanticCache.of(scope.store, embedder), namespace, policy);
  } finally {
    scope.release();
    await environments.close();
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The lowest threshold (to 0.001) at which wrong hits stay within WRONG_SHARE_MAX of all hits. */
export function thresholdFor(quality: CacheQuality): number {
  for (let milli = 500; milli <= 1000; milli++) {
    const { correct, wrong } = countAt(quality, milli / 1000);
    if (correct + wrong > 0 && wrong <= WRONG_SHARE_MAX * (correct + wrong)) return milli / 1000;
  }
  return 1;
}

function countAt(quality: CacheQuality, threshold: number): { correct: number; wrong: number; misses: number; negativeHits: number } {
  const hits = quality.positives.filter((outcome) => outcome.score >= threshold);
  const correct = hits.filter((outcome) => outcome.correct).length;
  return {
    correct,
    wrong: hits.length - correct,
    misses: quality.positives.length - hits.length,
    negativeHits: quality.negatives.filter((score) => score >= threshold).length,
  };
}

/** Prints the table, GPTCache's figures beside it, and what the tenant default gives. */
export function printCacheQuality(quality: CacheQuality): void {
  const pad = (values: ReadonlyArray<string | number>): string => values.map((value, i) => String(value).padStart(i === 0 ? 11 : i === 7 ? 17 : 12)).join('');
  process.stdout.write(`  ${quality.embedderId}: ${quality.cached} distinct origins cached, ${quality.positives.length} paraphrases asked; negatives: ${quality.negatives.length} paraphrases of uncached origins\n`);
  process.stdout.write(`  ${pad(['threshold', 'correct', 'wrong', 'misses', 'wrong share', 'recall', 'neg. hits', 'GPTCache c/w/m'])}\n`);
  for (const threshold of THRESHOLDS) {
    const { correct, wrong, misses, negativeHits } = countAt(quality, threshold);
    const share = correct + wrong === 0 ? 0 : wrong / (correct + wrong);
    const reference = GPTCACHE[threshold.toFixed(2)]?.join('/') ?? '';
    const row = [threshold.toFixed(2), correct, wrong, misses, `${(100 * share).toFixed(1)}%`, `${((100 * correct) / quality.positives.length).toFixed(1)}%`, negativeHits, reference];
    process.stdout.write(`  ${pad(row)}\n`);
  }
  const chosen = TENANT_SETTINGS_DEFAULTS.cache.threshold;
  const atDefault = countAt(quality, chosen);
  const lowest = thresholdFor(quality);
  process.stdout.write(
    `  lowest threshold with wrong hits <= ${WRONG_SHARE_MAX * 100}% of hits: ${lowest.toFixed(3)}; ` +
      `default ${chosen}: ${atDefault.correct} correct, ${atDefault.wrong} wrong, recall ${((100 * atDefault.correct) / quality.positives.length).toFixed(1)}%, ` +
      `${atDefault.negativeHits} of ${quality.negatives.length} negatives hit\n`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const run = async (): Promise<void> => {
    heading('semantic cache quality on the paraphrase set (similarity path, real SemanticCache)');
    printCacheQuality(await measureCacheQuality(createLocalEmbedder()));
    const config = loadConfig();
    if (config.embedUrl !== undefined) {
      const remote = await createOpenAIEmbedder({ url: config.embedUrl, model: config.embedModel, timeoutMs: config.embedTimeoutMs, ...(config.embedApiKey === undefined ? {} : { apiKey: config.embedApiKey }) });
      printCacheQuality(await measureCacheQuality(remote));
    }
  };
  run().catch((error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
