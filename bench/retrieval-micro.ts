/**
 * Micro-benchmark of the retrieval building blocks at 10,000 rows: embedding, exact vector search
 * and BM25 search. Prints p50/p99 per operation.
 *
 *   npx tsx bench/retrieval-micro.ts [dim]
 *
 * Vector search runs on the SIMD kernel, so run `npm run build` first (the index says so if not).
 *
 * The corpus is synthetic but real English: each of the 10,000 chunks is ~800 characters of
 * sentences drawn (with a fixed seed) from the paraphrase set, chunked and tokenized like documents.
 * Its vocabulary is small (~3,000 terms) so posting lists are long: a pessimistic case for BM25.
 */
import { readFileSync } from 'node:fs';
import { Bm25Index, termFrequencies } from '../host/retrieval/bm25.ts';
import { chunkText } from '../host/retrieval/chunker.ts';
import { createLocalEmbedder, LOCAL_EMBEDDER_DIM } from '../host/retrieval/embedder.ts';
import { tokenize } from '../host/retrieval/tokenize.ts';
import { VectorIndex } from '../host/retrieval/vector-index.ts';

const ROWS = 10_000;
const K = 8;
const DATA = new URL('../test/fixtures/data/paraphrase-pairs.json', import.meta.url);

/** A small deterministic PRNG (mulberry32) so every run benchmarks the same corpus and queries. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `operation` `iterations` times after a warm-up and returns p50 and p99 in microseconds. */
function measure(iterations: number, operation: (i: number) => void): { p50: number; p99: number } {
  for (let i = 0; i < Math.min(iterations, 200); i++) operation(i);
  const times = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    operation(i);
    times[i] = Number(process.hrtime.bigint() - start) / 1_000;
  }
  times.sort();
  return { p50: times[Math.floor(iterations * 0.5)] as number, p99: times[Math.floor(iterations * 0.99)] as number };
}

function buildChunks(sentences: readonly string[], next: () => number): string[] {
  const chunks: string[] = [];
  while (chunks.length < ROWS) {
    const parts: string[] = [];
    for (let length = 0; length < 2_000;) {
      const sentence = sentences[Math.floor(next() * sentences.length)] as string;
      parts.push(sentence);
      length += sentence.length + 1;
    }
    for (const chunk of chunkText(parts.join(' '))) if (chunks.length < ROWS) chunks.push(chunk.text);
  }
  return chunks;
}

function main(): void {
  const dim = Number(process.argv[2] ?? LOCAL_EMBEDDER_DIM);
  const pairs = JSON.parse(readFileSync(DATA, 'utf8')) as Array<{ origin: string; similar: string }>;
  const sentences = pairs.flatMap((pair) => [pair.origin, pair.similar]);
  const next = random(42);
  const chunks = buildChunks(sentences, next);
  const embedder = createLocalEmbedder({ dim });
  const vectors = new VectorIndex(dim);
  const lexical = new Bm25Index();
  const buildStart = performance.now();
  chunks.forEach((text, row) => {
    vectors.set(row, embedder.embed(text));
    const tokens = tokenize(text);
    lexical.add(row, termFrequencies(tokens), tokens.length);
  });
  const buildMs = performance.now() - buildStart;

  const questions = sentences.filter((s) => s.split(/\s+/).length >= 18 && s.split(/\s+/).length <= 22).slice(0, 200);
  const queryVectors = questions.map((q) => embedder.embed(q));
  const queryTerms = questions.map((q) => [...new Set(tokenize(q))].slice(0, 6)).filter((terms) => terms.length === 6);
  const everyThird = (row: number): boolean => row % 3 === 0;
  const queryVector = (i: number): Float32Array => queryVectors[i % queryVectors.length] as Float32Array;

  const rows: Array<[string, { p50: number; p99: number }]> = [
    ['embed a 18-22 word question', measure(20_000, (i) => embedder.embed(questions[i % questions.length] as string))],
    ['embed an ~800-char chunk', measure(5_000, (i) => embedder.embed(chunks[i % chunks.length] as string))],
    [`vector search k=${K}`, measure(500, (i) => vectors.search(queryVector(i), K))],
    [`vector search k=${K}, accept 1/3`, measure(500, (i) => vectors.search(queryVector(i), K, everyThird))],
    [`BM25 search 6 terms k=${K}`, measure(2_000, (i) => lexical.search(queryTerms[i % queryTerms.length] as string[], K))],
  ];
  console.log(`${embedder.id}; ${ROWS} rows indexed in ${buildMs.toFixed(0)} ms (embed + both indexes)`);
  console.log(`${'operation'.padEnd(34)} ${'p50 µs'.padStart(9)} ${'p99 µs'.padStart(9)}`);
  for (const [name, { p50, p99 }] of rows) console.log(`${name.padEnd(34)} ${p50.toFixed(1).padStart(9)} ${p99.toFixed(1).padStart(9)}`);
  vectors.close();
  lexical.close();
}

main();
