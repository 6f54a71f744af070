/**
 * Text embedders. An {@link Embedder} turns text into a unit vector; its `id` names the algorithm,
 * version and dimension, and goes into every semantic-cache namespace, so vectors from two different
 * embedders are never compared.
 *
 * The local embedder needs no model download: it is a feature-hashing ("hashing trick") embedder over
 * the shared tokenizer's terms, stop words kept (see TokenizeOptions). Three feature groups, each
 * hashed with its own seed into the same `dim` buckets:
 * - word unigrams (exact term overlap),
 * - word bigrams (word order and phrases: "model card" vs "card model"),
 * - character 3- to 5-grams of each term with `<`/`>` boundary markers (morphology and spelling
 *   variants the stemmer misses: "tokenizer" vs "tokenization").
 * Each group is L2-normalised on its own and mixed with fixed weights (tuned on the paraphrase set,
 * see bench/embedder-quality.ts), so a group's share of the similarity does not depend on text
 * length. Signed hashing (one hash bit picks +1 or -1) makes collisions cancel in expectation instead
 * of piling up as a positive bias; repeated terms count sublinearly (1 + ln tf) so a repeated word
 * cannot dominate.
 */
import assert from 'node:assert/strict';
import { tokenize } from './tokenize.ts';

/**
 * Turns text into an L2-normalised vector. Implementations are deterministic. The local embedder
 * embeds synchronously; a remote one (retrieval/openai-embedder.ts) only through `embedBatch`, and
 * callers reach both through cache/embedding-cache.ts, which knows which is which.
 */
export interface Embedder {
  /** Algorithm, version and dimension, e.g. `local:hashgram-v1@256`; part of every cache namespace. */
  readonly id: string;
  /** Length of every vector this embedder returns. */
  readonly dim: number;
  /**
   * Whether one embed costs more than a write to the tenant's embedding cache (a network round trip
   * does; the local embedder's ~13 µs does not). Only costly embedders go through that cache.
   */
  readonly costly: boolean;
  /**
   * Embeds `text` now; the result has length `dim` and norm 1 (all zeros only for text with no terms).
   * @throws {HostError} EMBED_FAILED from an embedder that cannot answer synchronously (a remote one).
   */
  embed(text: string): Float32Array;
  /**
   * Embeds several texts, in order (a remote embedder sends them in as few requests as its limits allow).
   * @throws {HostError} EMBED_FAILED when the provider fails, or `signal.reason` when it aborts.
   */
  embedBatch(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]>;
}

/** Options of {@link createLocalEmbedder}. */
export interface LocalEmbedderOptions {
  /** Vector dimension, an integer from 16 to 4096. Default {@link LOCAL_EMBEDDER_DIM}. */
  dim?: number;
}

/** Default dimension of the local embedder, chosen by measurement (see bench/embedder-quality.ts). */
export const LOCAL_EMBEDDER_DIM = 256;

/** Bump when anything below changes the vectors: the id (and with it every cache key) changes too. */
const ALGORITHM = 'local:hashgram-v1';

/** Group weights, tuned on test/fixtures/data/paraphrase-pairs.json (bench/embedder-quality.ts). */
const UNIGRAM_WEIGHT = 1;
const BIGRAM_WEIGHT = 0.25;
const CHARGRAM_WEIGHT = 1.4;

/** Distinct seeds keep a unigram, a bigram and a character n-gram with equal text in separate buckets. */
const UNIGRAM_SEED = 0x811c9dc5;
const BIGRAM_SEED = 0x9e3779b9;
const CHARGRAM_SEED = 0x85ebca6b;
const FNV_PRIME = 0x01000193;
const MARK_START = 0x3c; // '<': terms never contain it (they are letters, digits and marks)
const MARK_END = 0x3e; // '>'

/**
 * Creates the deterministic, download-free local embedder.
 * @throws {AssertionError} when `dim` is not an integer from 16 to 4096 (a programming error: the
 *   dimension is a build-time choice, not user input).
 */
export function createLocalEmbedder(options: LocalEmbedderOptions = {}): Embedder {
  const dim = options.dim ?? LOCAL_EMBEDDER_DIM;
  assert.ok(Number.isInteger(dim) && dim >= 16 && dim <= 4096, `dim is ${dim}; allowed: an integer from 16 to 4096`);
  // Scratch accumulators reused across calls (an embed is synchronous and zeroes them before it
  // returns, so nothing of one text survives into the next call).
  const unigrams = new Float64Array(dim);
  const bigrams = new Float64Array(dim);
  const chargrams = new Float64Array(dim);
  const embed = (text: string): Float32Array => {
    try {
      accumulate(tokenize(text, { keepStopWords: true }), unigrams, bigrams, chargrams);
      return mix(dim, [unigrams, UNIGRAM_WEIGHT], [bigrams, BIGRAM_WEIGHT], [chargrams, CHARGRAM_WEIGHT]);
    } finally {
      unigrams.fill(0);
      bigrams.fill(0);
      chargrams.fill(0);
    }
  };
  return {
    id: `${ALGORITHM}@${dim}`,
    dim,
    // ~13 µs for a question here (bench/retrieval-micro.ts): cheaper than any cache write.
    costly: false,
    embed,
    embedBatch: async (texts) => texts.map(embed),
  };
}

/** Adds every feature of `terms` into the three group accumulators. */
function accumulate(terms: readonly string[], unigrams: Float64Array, bigrams: Float64Array, chargrams: Float64Array): void {
  const termCounts = new Map<string, number>();
  const bigramCounts = new Map<number, number>();
  let previous = 0;
  for (let i = 0; i < terms.length; i++) {
    const term = terms[i] as string;
    termCounts.set(term, (termCounts.get(term) ?? 0) + 1);
    const hash = hashString(term, UNIGRAM_SEED);
    if (i > 0) {
      const pair = finalMix(Math.imul(previous, 0x9e3779b1) ^ hash ^ BIGRAM_SEED);
      bigramCounts.set(pair, (bigramCounts.get(pair) ?? 0) + 1);
    }
    previous = hash;
  }
  for (const [term, count] of termCounts) {
    const weight = 1 + Math.log(count);
    addFeature(unigrams, hashString(term, UNIGRAM_SEED), weight);
    addCharGrams(chargrams, term, weight);
  }
  for (const [pair, count] of bigramCounts) addFeature(bigrams, pair, 1 + Math.log(count));
}

/** Adds the 3-, 4- and 5-grams of `<term>`: one FNV pass per start position extends 3 → 4 → 5. */
function addCharGrams(target: Float64Array, term: string, weight: number): void {
  const length = term.length + 2;
  for (let start = 0; start + 3 <= length; start++) {
    let hash = CHARGRAM_SEED;
    for (let n = 1; n <= 5 && start + n <= length; n++) {
      const position = start + n - 1;
      const code = position === 0 ? MARK_START : position === length - 1 ? MARK_END : term.charCodeAt(position - 1);
      hash = Math.imul(hash ^ code, FNV_PRIME);
      if (n >= 3) addFeature(target, finalMix(hash), weight);
    }
  }
}

/** Signed hashing: the top bit chooses the sign, the rest the bucket. */
function addFeature(target: Float64Array, hash: number, weight: number): void {
  const bucket = (hash & 0x7fffffff) % target.length;
  target[bucket] = (target[bucket] as number) + (hash < 0 ? -weight : weight);
}

/** FNV-1a over UTF-16 code units, then a murmur3 finaliser so short strings spread over all bits. */
function hashString(text: string, seed: number): number {
  let hash = seed;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), FNV_PRIME);
  return finalMix(hash);
}

/** murmur3's fmix32: full avalanche, so every output bit depends on every input bit. Signed int32. */
function finalMix(value: number): number {
  let h = value ^ (value >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Normalises each group, sums them with their weights and normalises the result to unit length. */
function mix(dim: number, ...groups: Array<[Float64Array, number]>): Float32Array {
  const sum = new Float64Array(dim);
  for (const [vector, weight] of groups) {
    const norm = euclideanNorm(vector);
    if (norm === 0) continue;
    const scale = weight / norm;
    for (let i = 0; i < dim; i++) sum[i] = (sum[i] as number) + (vector[i] as number) * scale;
  }
  const norm = euclideanNorm(sum);
  const out = new Float32Array(dim);
  if (norm === 0) return out;
  for (let i = 0; i < dim; i++) out[i] = (sum[i] as number) / norm;
  return out;
}

function euclideanNorm(vector: Float64Array): number {
  let squares = 0;
  for (let i = 0; i < vector.length; i++) squares += (vector[i] as number) * (vector[i] as number);
  return Math.sqrt(squares);
}
