/**
 * Quality of the semantic cache's similarity path, before and after the verifier (host/cache/verify.ts),
 * on test/fixtures/data/paraphrase-pairs.json (999 pairs of a sentence and a machine paraphrase of it)
 * and test/fixtures/data/hard-negatives.json (questions that differ from a cached one by one fact;
 * see its README), beside GPTCache's published figures on the same pairs.
 *
 *   node --disable-wasm-trap-handler --import tsx bench/cache-quality.ts
 *       (local embedder; also the remote one when EMBED_URL is set; part of `npm run bench`)
 *
 * Three question sets, each against its own fresh tenant cache:
 * - positives (GPTCache's protocol): every distinct origin is cached; each paraphrase is asked. A hit
 *   is correct when it returns the paraphrase's own origin; "other origin" when it returns another
 *   (the set restates some facts in several origins, so many of those are the right answer too).
 * - hard negatives: every distinct origin and every qualified origin ("Part III: …") is cached;
 *   each item's `asked` is asked. For the 1,282 items that expect a miss every hit is wrong; the 241
 *   same-value rewrites ("Part 3: …" for "Part III: …") are right when they return their `cached`.
 * - unrelated: half of the distinct origins are cached; the paraphrases of the other half are asked,
 *   so every hit is wrong (pairs whose origin text is also in the cached half are left out).
 *
 * "Before" is the similarity path without the verifier: the most similar cached question, served
 * when it reaches the threshold (computed here by cosine over the same vectors the cache holds).
 * "After" is the real SemanticCache.lookupSimilar, verifier included, run at each threshold. The
 * wrong share is wrong hits on hard negatives over those plus correct hits on positives: the share of
 * a mixed stream's hits that answer a different question. Figures are printed, never asserted.
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

const PAIRS = new URL('../test/fixtures/data/paraphrase-pairs.json', import.meta.url);
const HARD = new URL('../test/fixtures/data/hard-negatives.json', import.meta.url);
const THRESHOLDS = [0.98, 0.95, 0.92, 0.9, 0.88, 0.85, 0.82, 0.8, 0.75, 0.7];
/** GPTCache (SQLite + FAISS + ONNX embedder) on the same 999 pairs, correct/wrong/misses, from its published benchmark (test/fixtures/data/README.md). */
const GPTCACHE: Readonly<Record<string, string>> = { '0.95': '425/25/549', '0.90': '804/77/118', '0.80': '904/92/3' };
const WRONG_SHARE_MAX = 0.01;

interface Pair {
  origin: string;
  similar: string;
}

interface HardItem {
  kind: string;
  cached: string;
  asked: string;
  expect: 'miss' | 'hit';
}

/** What one lookup returned: the cached question it served (or none) and the similarity. */
interface Served {
  question: string | undefined;
  score: number;
}

/** Counts at one threshold. */
export interface QualityRow {
  threshold: number;
  correct: number;
  otherOrigin: number;
  hardWrong: number;
  hardWrongByKind: Record<string, number>;
  sameValueHits: number;
  unrelatedHits: number;
}

/** What one run measures, for one embedder. */
export interface CacheQuality {
  embedderId: string;
  positives: number;
  origins: number;
  hardMisses: number;
  sameValue: number;
  unrelated: number;
  before: QualityRow[];
  after: QualityRow[];
}

/** Runs every set for `embedder`, before and after the verifier, on temporary tenant environments. */
export async function measureCacheQuality(embedder: Embedder): Promise<CacheQuality> {
  const pairs = JSON.parse(readFileSync(PAIRS, 'utf8')) as Pair[];
  const hard = JSON.parse(readFileSync(HARD, 'utf8')) as HardItem[];
  const origins = [...new Set(pairs.map((pair) => pair.origin))];
  const hardCached = [...new Set([...origins, ...hard.map((item) => item.cached)])];
  const half = origins.filter((_, i) => i % 2 === 0);
  const halfSet = new Set(half);
  const unrelated = pairs.filter((pair) => !halfSet.has(pair.origin));
  const texts = [...new Set([...origins, ...pairs.map((pair) => pair.similar), ...hardCached, ...hard.map((item) => item.asked)])];
  const embedded = await embedder.embedBatch(texts);
  const vectors = new Map(texts.map((text, i) => [text, embedded[i] as Float32Array]));
  const vectorOf = (text: string): Float32Array => vectors.get(text) as Float32Array;

  const sets = {
    positives: { cached: origins, asked: pairs.map((pair) => pair.similar) },
    hard: { cached: hardCached, asked: hard.map((item) => item.asked) },
    unrelated: { cached: half, asked: unrelated.map((pair) => pair.similar) },
  };
  const before = new Map<string, Served[]>();
  const after = new Map<string, Served[][]>();
  for (const [name, set] of Object.entries(sets)) {
    before.set(name, set.asked.map((question) => nearest(set.cached, vectorOf, vectorOf(question))));
    after.set(name, await withCache(embedder, (cache, namespace, now) => {
      for (const question of set.cached) {
        cache.store({ namespace, question, vector: vectorOf(question), answer: question, sources: [] }, policyAt(-1, now));
      }
      return THRESHOLDS.map((threshold) =>
        set.asked.map((question) => {
          const hit = cache.lookupSimilar(namespace, { question, vector: vectorOf(question) }, policyAt(threshold, now));
          return { question: hit?.answer, score: hit?.similarity ?? -1 };
        }),
      );
    }));
  }
  const rowAt = (threshold: number, served: (set: string) => Served[]): QualityRow => {
    const hit = (outcome: Served): boolean => outcome.question !== undefined && outcome.score >= threshold - 1e-6;
    const positives = served('positives');
    const hardServed = served('hard');
    const row: QualityRow = { threshold, correct: 0, otherOrigin: 0, hardWrong: 0, hardWrongByKind: {}, sameValueHits: 0, unrelatedHits: served('unrelated').filter(hit).length };
    positives.forEach((outcome, i) => {
      if (!hit(outcome)) return;
      if (outcome.question === pairs[i]?.origin) row.correct++;
      else row.otherOrigin++;
    });
    hard.forEach((item, i) => {
      const outcome = hardServed[i] as Served;
      if (!hit(outcome)) return;
      if (item.expect === 'hit') {
        if (outcome.question === item.cached) row.sameValueHits++;
        return;
      }
      row.hardWrong++;
      row.hardWrongByKind[item.kind] = (row.hardWrongByKind[item.kind] ?? 0) + 1;
    });
    return row;
  };
  return {
    embedderId: embedder.id,
    positives: pairs.length,
    origins: origins.length,
    hardMisses: hard.filter((item) => item.expect === 'miss').length,
    sameValue: hard.filter((item) => item.expect === 'hit').length,
    unrelated: unrelated.length,
    before: THRESHOLDS.map((threshold) => rowAt(threshold, (set) => before.get(set) as Served[])),
    after: THRESHOLDS.map((threshold, t) => rowAt(threshold, (set) => (after.get(set) as Served[][])[t] as Served[])),
  };
}

const policyAt = (threshold: number, now: number): CachePolicy => ({ threshold, ttlMs: 86_400_000, quotaBytes: 256 * 1024 * 1024, now });

/** The most similar of `cached` to `vector`: what the similarity path served before the verifier. */
function nearest(cached: readonly string[], vectorOf: (text: string) => Float32Array, vector: Float32Array): Served {
  let best: Served = { question: undefined, score: -2 };
  for (const question of cached) {
    const other = vectorOf(question);
    let score = 0;
    for (let i = 0; i < vector.length; i++) score += (vector[i] as number) * (other[i] as number);
    if (score > best.score) best = { question, score };
  }
  return best;
}

/** Runs `use` against a fresh tenant's SemanticCache. */
async function withCache<T>(embedder: Embedder, use: (cache: SemanticCache, namespace: CacheNamespace, now: number) => T): Promise<T> {
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
    return use(SemanticCache.of(scope.store, embedder), namespace, Date.now());
  } finally {
    scope.release();
    await environments.close();
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Wrong hits on hard negatives over those plus correct hits on positives. */
function wrongShare(row: QualityRow): number {
  return row.correct + row.hardWrong === 0 ? 0 : row.hardWrong / (row.correct + row.hardWrong);
}

/** The lowest listed threshold from which up every threshold keeps the wrong share within WRONG_SHARE_MAX (1 when none). */
export function thresholdFor(rows: readonly QualityRow[]): number {
  let lowest = 1;
  for (const row of [...rows].sort((a, b) => b.threshold - a.threshold)) {
    if (wrongShare(row) > WRONG_SHARE_MAX) break;
    lowest = row.threshold;
  }
  return lowest;
}

/** Prints both tables, the hard negatives by kind at the default threshold, and what the default gives. */
export function printCacheQuality(quality: CacheQuality): void {
  const out = (text: string): boolean => process.stdout.write(`${text}\n`);
  const percent = (part: number, whole: number): string => `${((100 * part) / Math.max(1, whole)).toFixed(1)}%`;
  const widths = [10, 8, 7, 7, 9, 9, 7, 10, 11, 12];
  const pad = (values: ReadonlyArray<string | number>): string => values.map((value, i) => String(value).padStart(widths[i] ?? 10)).join(' ');
  out(`  ${quality.embedderId}: positives ${quality.positives} paraphrases of ${quality.origins} cached origins; hard negatives ${quality.hardMisses} (every hit wrong) + ${quality.sameValue} same-value rewrites (should hit); unrelated ${quality.unrelated} (every hit wrong)`);
  for (const [label, rows] of [['before verification (most similar cached question at the threshold)', quality.before], ['after verification (SemanticCache.lookupSimilar)', quality.after]] as const) {
    out(`  ${label}`);
    out(`  ${pad(['threshold', 'correct', 'recall', 'other', 'hard neg', 'wrong', 'unrel.', 'same-value', label.startsWith('before') ? 'GPTCache' : '', ''])}`);
    out(`  ${pad(['', 'hits', '', 'origin', 'wrong', 'share', 'hits', 'hits', label.startsWith('before') ? 'c/w/m' : '', ''])}`);
    for (const row of rows) {
      out(`  ${pad([
        row.threshold.toFixed(2), row.correct, percent(row.correct, quality.positives), row.otherOrigin, row.hardWrong,
        percent(row.hardWrong, row.correct + row.hardWrong), row.unrelatedHits, `${row.sameValueHits}/${quality.sameValue}`,
        label.startsWith('before') ? GPTCACHE[row.threshold.toFixed(2)] ?? '' : '', '',
      ])}`);
    }
  }
  const chosen = TENANT_SETTINGS_DEFAULTS.cache.threshold;
  const at = (rows: readonly QualityRow[]): QualityRow | undefined => rows.find((row) => Math.abs(row.threshold - chosen) < 1e-9);
  const before = at(quality.before);
  const after = at(quality.after);
  if (before !== undefined && after !== undefined) {
    const kinds = [...new Set([...Object.keys(before.hardWrongByKind), ...Object.keys(after.hardWrongByKind)])].sort();
    out(`  hard negatives served at the default ${chosen}, by kind, before -> after: ${kinds.map((kind) => `${kind} ${before.hardWrongByKind[kind] ?? 0} -> ${after.hardWrongByKind[kind] ?? 0}`).join(', ')}`);
  }
  out(
    `  lowest listed threshold keeping the wrong share <= ${WRONG_SHARE_MAX * 100}% (and every one above it): before ${thresholdFor(quality.before).toFixed(2)}, after ${thresholdFor(quality.after).toFixed(2)}; ` +
      `default ${chosen}: ${after?.correct ?? 0} correct (recall ${percent(after?.correct ?? 0, quality.positives)}), ${after?.hardWrong ?? 0} hard negatives served (${percent(after?.hardWrong ?? 0, (after?.correct ?? 0) + (after?.hardWrong ?? 0))}), ${after?.unrelatedHits ?? 0} unrelated`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const run = async (): Promise<void> => {
    heading('semantic cache quality: similarity path before and after the verifier (real SemanticCache)');
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
