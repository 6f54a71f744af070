/**
 * Paraphrase quality of the local embedder on test/fixtures/data/paraphrase-pairs.json (see its
 * README): how well cosine similarity separates paraphrases from topically close non-paraphrases.
 *
 *   npx tsx bench/embedder-quality.ts [dim]
 *
 * - positives: (origin_i, similar_i), 999 pairs;
 * - hard negatives: (origin_i, similar_j) for every j ≠ i, except pairs whose two origins are the same
 *   text (the set repeats some origins; those pairs are the same question, not a negative);
 * - cache simulation (the later semantic-cache issue's question): the cache holds every distinct
 *   origin, each `similar` is looked up, and the best origin is a hit when its score reaches the
 *   threshold; the hit is correct when that origin is the query's own. Comparable with the GPTCache
 *   reference table in the data README.
 */
import { readFileSync } from 'node:fs';
import { createLocalEmbedder, LOCAL_EMBEDDER_DIM } from '../host/retrieval/embedder.ts';

const DATA = new URL('../test/fixtures/data/paraphrase-pairs.json', import.meta.url);
const THRESHOLDS = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7];
const PERCENTILES = [0, 1, 5, 25, 50, 75, 95, 99, 100];

interface Pair {
  origin: string;
  similar: string;
}

interface Lookup {
  score: number;
  correct: boolean;
  query: string;
  found: string;
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] as number) * (b[i] as number);
  return sum;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function atLeast(sorted: Float64Array, threshold: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if ((sorted[mid] as number) < threshold) low = mid + 1;
    else high = mid;
  }
  return sorted.length - low;
}

/** P(positive score > negative score) over all positive/negative pairs (ROC AUC). */
function areaUnderCurve(positives: Float64Array, negatives: Float64Array): number {
  let below = 0;
  let wins = 0;
  for (const score of positives) {
    while (below < negatives.length && (negatives[below] as number) < score) below++;
    wins += below;
  }
  return wins / (positives.length * negatives.length);
}

function scorePairs(pairs: readonly Pair[], origins: Float32Array[], similars: Float32Array[]) {
  const positives = Float64Array.from(pairs, (_, i) => dot(origins[i] as Float32Array, similars[i] as Float32Array));
  const negatives: number[] = [];
  const lookups: Lookup[] = [];
  const distinct = [...new Map(pairs.map((pair, i) => [pair.origin, i])).values()];
  pairs.forEach((pair, j) => {
    const query = similars[j] as Float32Array;
    pairs.forEach((other, i) => {
      if (other.origin !== pair.origin) negatives.push(dot(origins[i] as Float32Array, query));
    });
    let best = -2;
    let bestIndex = -1;
    for (const i of distinct) {
      const score = dot(origins[i] as Float32Array, query);
      if (score > best) [best, bestIndex] = [score, i];
    }
    const found = (pairs[bestIndex] as Pair).origin;
    lookups.push({ score: best, correct: found === pair.origin, query: pair.similar, found });
  });
  return { positives: positives.sort(), negatives: Float64Array.from(negatives).sort(), lookups, cached: distinct.length };
}

/** The lowest threshold at which wrong hits stay within `share` of all hits, and the correct hits there. */
function bestThreshold(lookups: readonly Lookup[], share: number): { threshold: number; correct: number; wrong: number } {
  const sorted = [...lookups].sort((a, b) => b.score - a.score);
  let correct = 0;
  let wrong = 0;
  let best = { threshold: 1, correct: 0, wrong: 0 };
  for (const lookup of sorted) {
    if (lookup.correct) correct++;
    else wrong++;
    if (wrong <= share * (correct + wrong) && correct > best.correct) best = { threshold: lookup.score, correct, wrong };
  }
  return best;
}

function main(): void {
  const dim = Number(process.argv[2] ?? LOCAL_EMBEDDER_DIM);
  const embedder = createLocalEmbedder({ dim });
  const pairs = JSON.parse(readFileSync(DATA, 'utf8')) as Pair[];
  const origins = pairs.map((pair) => embedder.embed(pair.origin));
  const similars = pairs.map((pair) => embedder.embed(pair.similar));
  const { positives, negatives, lookups, cached } = scorePairs(pairs, origins, similars);

  const auc = areaUnderCurve(positives, negatives).toFixed(5);
  console.log(`${embedder.id}: ${positives.length} positives, ${negatives.length} hard negatives, ROC AUC ${auc}`);
  printDistributions(positives, negatives);
  printThresholds(positives, negatives, lookups, cached);
  console.log('\nhighest-scoring wrong hits (many restate the same fact: the set has near-duplicate origins):');
  for (const lookup of [...lookups].filter((l) => !l.correct).sort((a, b) => b.score - a.score).slice(0, 5)) {
    console.log(`  ${lookup.score.toFixed(3)}  "${lookup.query}"\n         → "${lookup.found}"`);
  }
}

/** Right-aligns each value in its column. */
function row(values: ReadonlyArray<string | number>, widths: readonly number[]): string {
  return values.map((value, i) => String(value).padStart(widths[i] ?? 8)).join('  ');
}

function printDistributions(positives: Float64Array, negatives: Float64Array): void {
  const widths = [14, ...PERCENTILES.map(() => 6)];
  console.log(`\n${row(['cosine', ...PERCENTILES.map((p) => `p${p}`)], widths)}`);
  for (const [name, scores] of [['positives', positives], ['hard negatives', negatives]] as const) {
    console.log(row([name, ...PERCENTILES.map((p) => percentile(scores, p).toFixed(3))], widths));
  }
}

function printThresholds(positives: Float64Array, negatives: Float64Array, lookups: readonly Lookup[], cached: number): void {
  const correctTop1 = lookups.filter((lookup) => lookup.correct).length;
  console.log(`\ncache simulation: ${cached} distinct origins cached, ${lookups.length} lookups; best origin right for ${correctTop1}`);
  const widths = [9, 11, 11, 11, 12, 10, 6, 11];
  console.log(row(['threshold', 'positives ≥', 'negatives ≥', 'neg per 1e6', 'correct hits', 'wrong hits', 'misses', 'wrong share'], widths));
  for (const threshold of THRESHOLDS) {
    const hits = lookups.filter((lookup) => lookup.score >= threshold);
    const correct = hits.filter((lookup) => lookup.correct).length;
    const wrong = hits.length - correct;
    const negativeCount = atLeast(negatives, threshold);
    const share = hits.length === 0 ? 0 : (100 * wrong) / hits.length;
    console.log(row([
      threshold.toFixed(2), atLeast(positives, threshold), negativeCount, ((negativeCount / negatives.length) * 1e6).toFixed(0),
      correct, wrong, lookups.length - hits.length, `${share.toFixed(1)}%`,
    ], widths));
  }
  for (const share of [0.01, 0.02, 0.05]) {
    const best = bestThreshold(lookups, share);
    console.log(`wrong hits ≤ ${share * 100}% of hits: threshold ${best.threshold.toFixed(3)} → ${best.correct} correct, ${best.wrong} wrong`);
  }
}

main();
