import { AssertionError } from 'node:assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { compileDotKernel, TopK, VECTOR_DIM_MAX, VectorIndex, type ScoredRow } from '../../host/retrieval/vector-index.ts';
import { buildAllKernels } from '../../scripts/build-plugins.ts';

// The index runs on build/kernels/dot.wasm; building it here (a no-op when up to date) lets this
// file run on its own in a fresh checkout, as the sandbox tests do for their plugins.
test.before(async () => {
  await buildAllKernels();
});

/** mulberry32: reproducible random data. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomVector(next: () => number, dim: number): Float32Array {
  return Float32Array.from({ length: dim }, () => next() * 2 - 1);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] as number) * (b[i] as number);
    na += (a[i] as number) ** 2;
    nb += (b[i] as number) ** 2;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** The reference: score every row, sort everything. */
function naiveSearch(rows: Map<number, Float32Array>, query: Float32Array, k: number, accept?: (row: number) => boolean): ScoredRow[] {
  return [...rows]
    .filter(([row]) => accept === undefined || accept(row))
    .map(([row, vector]) => ({ row, score: cosine(vector, query) }))
    .sort((a, b) => b.score - a.score || a.row - b.row)
    .slice(0, k);
}

function assertSameResults(actual: ScoredRow[], expected: ScoredRow[]): void {
  assert.equal(actual.map((hit) => hit.row), expected.map((hit) => hit.row));
  actual.forEach((hit, i) => assert.ok(Math.abs(hit.score - (expected[i] as ScoredRow).score) < 1e-5, `score of row ${hit.row}`));
}

function expectAssertion(action: () => unknown, message: RegExp): void {
  assert.throws(action, (error: unknown) => error instanceof AssertionError && message.test(error.message));
}

test('top-k equals a naive full sort at dimensions padded to 4 and not, with deletes and filters', () => {
  // 1, 3, 5 and 37 are padded to whole f32x4 vectors; 4, 256 and 384 are not. 1,501 rows leave a
  // last block of fewer than four rows for the kernel's tail loop.
  for (const dim of [1, 3, 4, 5, 37, 256, 384]) {
    const next = random(dim);
    const index = new VectorIndex(dim, { initialRows: 1 });
    const rows = new Map<number, Float32Array>();
    for (let row = 0; row < 1_501; row++) {
      if (next() < 0.1) continue; // gaps in the numbering
      const vector = randomVector(next, dim);
      index.set(row, vector);
      rows.set(row, vector);
    }
    for (const row of [...rows.keys()]) {
      if (next() < 0.2) {
        assert.ok(index.delete(row));
        rows.delete(row);
      }
    }
    for (const row of [3, 700, 1_500]) {
      const vector = randomVector(next, dim); // set again after a delete, or replaced
      index.set(row, vector);
      rows.set(row, vector);
    }
    assert.is(index.size, rows.size, `size at dim ${dim}`);
    const filters = [undefined, (row: number) => row % 3 === 0, (row: number) => row > 1_400];
    for (const k of [1, 8, 100, rows.size + 5]) {
      for (const accept of filters) {
        const query = randomVector(next, dim);
        assertSameResults(index.search(query, k, accept), naiveSearch(rows, query, k, accept));
      }
    }
    index.close();
  }
});

test('rows set after the memory grows past scores of earlier searches score correctly', () => {
  // Each growth turns the old scores area into matrix rows: rows stored there must not see them.
  const dim = 5;
  const next = random(5);
  const index = new VectorIndex(dim, { initialRows: 32 });
  const rows = new Map<number, Float32Array>();
  const setRow = (row: number): void => {
    const vector = randomVector(next, dim);
    index.set(row, vector);
    rows.set(row, vector);
  };
  for (let row = 0; row < 32; row++) setRow(row);
  for (let round = 0; round < 4; round++) {
    const query = randomVector(next, dim);
    assertSameResults(index.search(query, rows.size), naiveSearch(rows, query, rows.size));
    const end = 32 << (round + 1);
    for (let row = end / 2; row < end; row += 3) setRow(row);
  }
  const query = randomVector(next, dim);
  assertSameResults(index.search(query, rows.size), naiveSearch(rows, query, rows.size));
  index.close();
});

test('scores are cosines: vectors and queries are normalised', () => {
  const index = new VectorIndex(4);
  index.set(0, Float32Array.of(3, 0, 0, 4));
  index.set(1, Float32Array.of(0, 10, 0, 0));
  const [best, second] = index.search(Float32Array.of(0.6, 0, 0, 0.8).map((v) => v * 7), 2);
  assert.is(best?.row, 0);
  assert.ok(Math.abs((best?.score ?? 0) - 1) < 1e-6);
  assert.is(second?.row, 1);
  assert.ok(Math.abs(second?.score ?? 1) < 1e-6);
});

test('delete really removes a row; set again brings it back', () => {
  const next = random(7);
  const index = new VectorIndex(16);
  const rows = new Map<number, Float32Array>();
  for (let row = 0; row < 200; row++) {
    const vector = randomVector(next, 16);
    index.set(row, vector);
    rows.set(row, vector);
  }
  const query = rows.get(42) as Float32Array;
  assert.is(index.search(query, 1)[0]?.row, 42);
  assert.ok(index.delete(42));
  rows.delete(42);
  assert.not.ok(index.delete(42), 'a second delete finds nothing');
  assert.not.ok(index.has(42));
  assert.is(index.size, 199);
  const hits = index.search(query, 199);
  assert.is(hits.length, 199);
  assert.not.ok(hits.some((hit) => hit.row === 42));
  assertSameResults(hits, naiveSearch(rows, query, 199));
  index.set(42, query);
  assert.is(index.search(query, 1)[0]?.row, 42);
  assert.is(index.size, 200);
});

test('set on a live row replaces its vector without changing the size', () => {
  const index = new VectorIndex(2);
  index.set(3, Float32Array.of(1, 0));
  index.set(3, Float32Array.of(0, 1));
  assert.is(index.size, 1);
  assert.ok(Math.abs((index.search(Float32Array.of(0, 1), 1)[0]?.score ?? 0) - 1) < 1e-6);
});

test('the accept filter is respected and the top k come from accepted rows only', () => {
  const next = random(11);
  const index = new VectorIndex(24);
  const rows = new Map<number, Float32Array>();
  for (let row = 0; row < 500; row++) {
    const vector = randomVector(next, 24);
    index.set(row, vector);
    rows.set(row, vector);
  }
  const accept = (row: number): boolean => row % 5 === 0;
  const query = randomVector(next, 24);
  const hits = index.search(query, 10, accept);
  assert.is(hits.length, 10);
  assert.ok(hits.every((hit) => accept(hit.row)));
  assertSameResults(hits, naiveSearch(rows, query, 10, accept));
  assert.equal(index.search(query, 10, () => false), []);
});

test('ties go to the lower row; k = 0 and an empty index give nothing', () => {
  const index = new VectorIndex(3);
  assert.equal(index.search(Float32Array.of(1, 0, 0), 5), []);
  for (const row of [9, 2, 5]) index.set(row, Float32Array.of(1, 1, 0));
  assert.equal(index.search(Float32Array.of(1, 1, 0), 2).map((hit) => hit.row), [2, 5]);
  assert.equal(index.search(Float32Array.of(1, 1, 0), 0), []);
});

test('a zero query scores 0 everywhere and returns the lowest accepted rows', () => {
  const index = new VectorIndex(3);
  for (const row of [4, 1, 7, 3]) index.set(row, Float32Array.of(row, 1, 0));
  assert.equal(index.search(new Float32Array(3), 2, (row) => row !== 1), [{ row: 3, score: 0 }, { row: 4, score: 0 }]);
});

test('the store grows past its initial capacity', () => {
  const index = new VectorIndex(8, { initialRows: 1 });
  const vector = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  index.set(0, vector);
  index.set(5_000, vector.map((v) => -v));
  assert.is(index.size, 2);
  assert.is(index.search(vector, 1)[0]?.row, 0);
  assert.is(index.search(vector.map((v) => -v), 1)[0]?.row, 5_000);
});

test('row limit: the last allowed row is accepted, the next is a programming error', () => {
  const index = new VectorIndex(1);
  const last = LIMITS.chunksPerTenantMax - 1;
  index.set(last, Float32Array.of(1));
  assert.is(index.search(Float32Array.of(1), 1)[0]?.row, last);
  expectAssertion(() => index.set(last + 1, Float32Array.of(1)), new RegExp(`^row is ${last + 1}; allowed: 0 to ${last}$`));
  expectAssertion(() => index.set(-1, Float32Array.of(1)), /^row is -1/);
  expectAssertion(() => index.set(1.5, Float32Array.of(1)), /^row is 1.5/);
  index.close();
});

test('dim limit: the largest dim that fits a full index in one memory works, one more is a programming error', () => {
  const index = new VectorIndex(VECTOR_DIM_MAX);
  const vector = new Float32Array(VECTOR_DIM_MAX).fill(1);
  index.set(0, vector);
  assert.ok(Math.abs((index.search(vector, 1)[0]?.score ?? 0) - 1) < 1e-5);
  index.close();
  expectAssertion(() => new VectorIndex(VECTOR_DIM_MAX + 1), new RegExp(`^dim is ${VECTOR_DIM_MAX + 1}; allowed: at most ${VECTOR_DIM_MAX}$`));
  expectAssertion(() => new VectorIndex(0), /^dim is 0; allowed: a positive integer$/);
});

test('the accept callback may not use the index it is filtering; the index works again afterwards', () => {
  const index = new VectorIndex(2);
  index.set(0, Float32Array.of(1, 0));
  index.set(1, Float32Array.of(0, 1));
  const message = /^the vector index cannot be used from its own accept callback$/;
  for (const use of [() => index.set(2, Float32Array.of(1, 1)), () => index.delete(1), () => index.search(Float32Array.of(1, 0), 1), () => index.close()]) {
    expectAssertion(() => index.search(Float32Array.of(1, 0), 1, () => { use(); return true; }), message);
  }
  assert.equal(index.search(Float32Array.of(1, 0), 2).map((hit) => hit.row), [0, 1]);
  index.close();
});

test('a missing or broken kernel fails with the path and tells to run npm run build', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vector-kernel-'));
  try {
    const missing = join(dir, 'dot.wasm');
    assert.throws(
      () => compileDotKernel(missing),
      (error: unknown) => error instanceof Error && error.message === `the vector search kernel is missing at ${missing}; run \`npm run build\``,
    );
    const broken = join(dir, 'broken.wasm');
    await writeFile(broken, 'not wasm');
    assert.throws(
      () => compileDotKernel(broken),
      (error: unknown) => error instanceof Error && error.message === `the vector search kernel at ${broken} is not a valid module; run \`npm run build\``,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('wrong vector length, non-finite values, bad k and use after close are programming errors', () => {
  const index = new VectorIndex(3);
  expectAssertion(() => index.set(0, Float32Array.of(1, 2)), /^vector length is 2; expected 3$/);
  expectAssertion(() => index.set(0, Float32Array.of(1, Number.NaN, 2)), /^vector has a non-finite entry$/);
  expectAssertion(() => index.search(Float32Array.of(1, 2, 3, 4), 1), /^vector length is 4; expected 3$/);
  expectAssertion(() => index.search(Float32Array.of(1, 2, 3), -1), /^k is -1/);
  expectAssertion(() => index.search(Float32Array.of(1, 2, 3), 2.5), /^k is 2.5/);
  index.close();
  expectAssertion(() => index.search(Float32Array.of(1, 2, 3), 1), /^the vector index is closed$/);
  expectAssertion(() => index.set(0, Float32Array.of(1, 2, 3)), /^the vector index is closed$/);
});

test('TopK keeps the k best in any arrival order, ties to the lower row', () => {
  const next = random(3);
  const candidates = Array.from({ length: 2_000 }, (_, row) => ({ row, score: Math.round(next() * 50) / 50 }));
  const shuffled = [...candidates].sort(() => next() - 0.5);
  const top = new TopK(25);
  for (const { row, score } of shuffled) if (top.wouldKeep(row, score)) top.push(row, score);
  const expected = [...candidates].sort((a, b) => b.score - a.score || a.row - b.row).slice(0, 25);
  assert.equal(top.results(), expected);
  assert.equal(new TopK(0).results(), []);
});

test('TopK floor: -Infinity until k are kept, then the worst kept score; Infinity for k = 0', () => {
  const top = new TopK(2);
  assert.is(top.floor, -Infinity);
  top.push(0, 0.5);
  assert.is(top.floor, -Infinity);
  top.push(1, 0.25);
  assert.is(top.floor, 0.25);
  top.push(2, 0.75);
  assert.is(top.floor, 0.5);
  assert.is(new TopK(0).floor, Infinity);
});

test.run();
