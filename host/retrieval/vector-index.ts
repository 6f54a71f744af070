/**
 * An exact (brute-force) cosine-similarity index over rows numbered 0..n, held in memory. One
 * tenant's index is one instance; the lead's storage layer owns row numbering and persistence.
 *
 * The vectors live in a WebAssembly memory of the index's own (so one per tenant), as one contiguous
 * matrix that grows by doubling; a bitmap of live rows stays in JS. Vectors are normalised on the way
 * in and queries at search time, so a score is exactly the cosine similarity. A search is one call of
 * a SIMD kernel (kernels/dot.ts, built to build/kernels/dot.wasm) that scores every row, then one JS
 * pass over the live rows' scores that keeps the best k in a bounded min-heap ({@link TopK}); nothing
 * is sorted but the k survivors. Measured on this machine at 10,000 rows, k = 8: 0.98 ms at dim 256
 * for the best plain-JS loop, about 0.2 ms with the kernel (bench/retrieval-micro.ts).
 *
 * Memory layout, in floats, with `stride` = dim rounded up to a multiple of 4 (padding kept at 0):
 * the query at 0 (one row), the matrix from `stride` (row r at (1 + r) * stride), then one score per
 * row of capacity. Growth appends pages, so the matrix stays put and only the scores move.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LIMITS } from '../limits.ts';

/** One search result. */
export interface ScoredRow {
  row: number;
  score: number;
}

/** Options of {@link VectorIndex}. */
export interface VectorIndexOptions {
  /** Rows to allocate up front (default 64); the store doubles as rows beyond it are set. */
  initialRows?: number;
}

const BITS_PER_WORD = 32;
/** Floats per SIMD vector (f32x4): the kernel needs rows and query padded to a multiple of it. */
const FLOATS_PER_VECTOR = 4;
const BYTES_PER_FLOAT = 4;
/** WebAssembly's page, the unit of `memory.grow`. */
const PAGE_BYTES = 65_536;
/** A 32-bit WebAssembly memory addresses at most 4 GiB. */
const MEMORY_PAGES_MAX = 65_536;
/** The query is at the start of the memory; the matrix starts one row in. */
const QUERY_OFFSET = 0;
const MATRIX_OFFSET_ROWS = 1;

/**
 * The largest `dim` whose full index (query, `LIMITS.chunksPerTenantMax` rows, their scores) fits
 * in one 32-bit WebAssembly memory: 5,364 at 200,000 rows, above the embedder's 4,096.
 */
export const VECTOR_DIM_MAX =
  Math.floor((MEMORY_PAGES_MAX * PAGE_BYTES / BYTES_PER_FLOAT - LIMITS.chunksPerTenantMax) / (LIMITS.chunksPerTenantMax + MATRIX_OFFSET_ROWS) / FLOATS_PER_VECTOR) *
  FLOATS_PER_VECTOR;

/**
 * A bounded top-k collector: a binary min-heap whose root is the worst kept result, so a candidate is
 * compared once against the root and most candidates are rejected in O(1). Ties keep the lower row,
 * which makes results deterministic and equal to a full sort by (score desc, row asc).
 * Exported for the BM25 index.
 */
export class TopK {
  readonly #k: number;
  readonly #rows: Int32Array;
  readonly #scores: Float64Array;
  #size = 0;

  /** @throws {AssertionError} when `k` is not a non-negative integer. */
  constructor(k: number) {
    assert.ok(Number.isInteger(k) && k >= 0, `k is ${k}; allowed: a non-negative integer`);
    this.#k = k;
    this.#rows = new Int32Array(k);
    this.#scores = new Float64Array(k);
  }

  /** Whether a candidate would be kept: there is room, or it ranks above the worst kept result. */
  wouldKeep(row: number, score: number): boolean {
    return this.#size < this.#k || (this.#k > 0 && this.#worse(this.#scores[0] as number, this.#rows[0] as number, score, row));
  }

  /**
   * A cheap pre-check for scans: a candidate scoring below this is never kept. It is the worst kept
   * score once k results are kept, -Infinity before, and Infinity when k is 0.
   */
  get floor(): number {
    if (this.#k === 0) return Infinity;
    return this.#size < this.#k ? -Infinity : (this.#scores[0] as number);
  }

  /** Keeps the candidate if it ranks above the worst kept one; candidates may come in any order. */
  push(row: number, score: number): void {
    if (this.#size < this.#k) {
      this.#siftUp(this.#size++, row, score);
    } else if (this.#k > 0 && this.#worse(this.#scores[0] as number, this.#rows[0] as number, score, row)) {
      this.#siftDown(row, score);
    }
  }

  /** The kept results, best first (score desc, then row asc). */
  results(): ScoredRow[] {
    const out: ScoredRow[] = [];
    for (let i = 0; i < this.#size; i++) out.push({ row: this.#rows[i] as number, score: this.#scores[i] as number });
    return out.sort((a, b) => b.score - a.score || a.row - b.row);
  }

  /** True when (scoreA, rowA) ranks below (scoreB, rowB). */
  #worse(scoreA: number, rowA: number, scoreB: number, rowB: number): boolean {
    return scoreA < scoreB || (scoreA === scoreB && rowA > rowB);
  }

  /** True when the entry at heap index `a` ranks below the one at `b`. */
  #worseAt(a: number, b: number): boolean {
    return this.#worse(this.#scores[a] as number, this.#rows[a] as number, this.#scores[b] as number, this.#rows[b] as number);
  }

  #siftUp(index: number, row: number, score: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#worse(score, row, this.#scores[parent] as number, this.#rows[parent] as number)) break;
      this.#scores[i] = this.#scores[parent] as number;
      this.#rows[i] = this.#rows[parent] as number;
      i = parent;
    }
    this.#scores[i] = score;
    this.#rows[i] = row;
  }

  /** Replaces the root with (row, score) and restores the heap. */
  #siftDown(row: number, score: number): void {
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= this.#size) break;
      const right = child + 1;
      if (right < this.#size && this.#worseAt(right, child)) child = right;
      if (!this.#worse(this.#scores[child] as number, this.#rows[child] as number, score, row)) break;
      this.#scores[i] = this.#scores[child] as number;
      this.#rows[i] = this.#rows[child] as number;
      i = child;
    }
    this.#scores[i] = score;
    this.#rows[i] = row;
  }
}

/** Where `npm run build` writes the dot-product kernel (kernels/dot.ts; see scripts/build-plugins.ts). */
export const DOT_KERNEL_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'kernels', 'dot.wasm');

/** The kernel's one export; pointers are byte addresses in the index's memory (see kernels/dot.ts). */
type ScoresKernel = (queryPtr: number, matrixPtr: number, rows: number, dim: number, outPtr: number) => void;

/**
 * The compiled kernel, shared by every index in the process. A Module is code only (each index
 * instantiates it with a memory of its own), so sharing it shares no tenant data; it is compiled at
 * first use rather than at import so tools that never search need no build.
 */
let dotKernel: WebAssembly.Module | undefined;

/**
 * Reads and compiles the dot-product kernel. Synchronous on purpose: the module is under 1 KiB, and
 * it lets VectorIndex stay constructible without an await.
 *
 * @example
 * ```ts
 * compileDotKernel(); // at startup: fail fast when `npm run build` has not been run
 * ```
 * @throws {Error} when the file is missing or unreadable, or is not a valid module; the message
 *   names the path and says to run `npm run build`. There is deliberately no slower JS fallback.
 */
export function compileDotKernel(path: string = DOT_KERNEL_PATH): WebAssembly.Module {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error: unknown) {
    throw new Error(`the vector search kernel is missing at ${path}; run \`npm run build\``, { cause: error });
  }
  try {
    return new WebAssembly.Module(bytes);
  } catch (error: unknown) {
    throw new Error(`the vector search kernel at ${path} is not a valid module; run \`npm run build\``, { cause: error });
  }
}

/** Instantiates the (shared, compiled once) kernel over `memory`; returns its `scores` function. */
function instantiateDotKernel(memory: WebAssembly.Memory): ScoresKernel {
  dotKernel ??= compileDotKernel();
  const { scores } = new WebAssembly.Instance(dotKernel, { env: { memory } }).exports;
  assert.ok(typeof scores === 'function', `${DOT_KERNEL_PATH} has no scores function; run \`npm run build\``);
  return scores as ScoresKernel;
}

/** An in-memory exact cosine index for one tenant. Close it to release its memory. */
export class VectorIndex {
  readonly #dim: number;
  /** Floats per stored row: `dim` rounded up to whole SIMD vectors, the padding kept at zero. */
  readonly #stride: number;
  /** The index's own memory and the kernel instance over it; both null once closed. */
  #memory: WebAssembly.Memory | null;
  #kernel: ScoresKernel | null;
  /** A view of all of `#memory`; `memory.grow` detaches it, so `#grow` derives it again. */
  #heap: Float32Array;
  #live: Uint32Array;
  #capacity: number;
  #size = 0;
  /** One past the highest row ever set: the scan bound. */
  #rowEnd = 0;
  #closed = false;
  /**
   * True during a search, whose only way back into the index is `accept`: the scores being ranked
   * live in `#memory`, so the index must hold still until the search returns.
   */
  #searching = false;

  /**
   * @param dim the length of every vector (the embedder's `dim`).
   * @throws {AssertionError} when `dim` is not an integer from 1 to {@link VECTOR_DIM_MAX}, or
   *   `initialRows` is not an integer from 1 to `LIMITS.chunksPerTenantMax`.
   * @throws {Error} when build/kernels/dot.wasm is missing or invalid (run `npm run build`).
   */
  constructor(dim: number, options: VectorIndexOptions = {}) {
    const initialRows = options.initialRows ?? 64;
    assert.ok(Number.isInteger(dim) && dim > 0, `dim is ${dim}; allowed: a positive integer`);
    assert.ok(dim <= VECTOR_DIM_MAX, `dim is ${dim}; allowed: at most ${VECTOR_DIM_MAX}`);
    const rowsMax = LIMITS.chunksPerTenantMax;
    assert.ok(Number.isInteger(initialRows) && initialRows > 0 && initialRows <= rowsMax, `initialRows is ${initialRows}`);
    this.#dim = dim;
    this.#stride = Math.ceil(dim / FLOATS_PER_VECTOR) * FLOATS_PER_VECTOR;
    this.#capacity = roundToWord(initialRows);
    this.#memory = new WebAssembly.Memory({
      initial: pagesFor(this.#stride, this.#capacity),
      maximum: pagesFor(this.#stride, roundToWord(rowsMax)),
    });
    this.#kernel = instantiateDotKernel(this.#memory);
    this.#heap = new Float32Array(this.#memory.buffer);
    this.#live = new Uint32Array(this.#capacity / BITS_PER_WORD);
  }

  /** The vector length. */
  get dim(): number {
    return this.#dim;
  }

  /** The number of live rows. */
  get size(): number {
    return this.#size;
  }

  /** Whether `row` holds a vector. */
  has(row: number): boolean {
    return row >= 0 && row < this.#rowEnd && ((this.#live[row >>> 5] as number) & (1 << (row & 31))) !== 0;
  }

  /**
   * Stores (or replaces) the vector of `row`, normalised to unit length; a zero vector is stored as
   * is and scores 0 against everything.
   * @throws {AssertionError} when the index is closed or inside its own `accept` callback, `row` is
   *   not an integer in [0, `LIMITS.chunksPerTenantMax`), or `vector` has the wrong length or a
   *   non-finite entry — the storage layer assigns rows and validates vectors before they get here.
   */
  set(row: number, vector: Float32Array): void {
    this.#assertUsable();
    const rowsMax = LIMITS.chunksPerTenantMax;
    assert.ok(Number.isInteger(row) && row >= 0 && row < rowsMax, `row is ${row}; allowed: 0 to ${rowsMax - 1}`);
    const scale = inverseNorm(vector, this.#dim);
    if (row >= this.#capacity) this.#grow(row + 1);
    const heap = this.#heap;
    const base = this.#rowOffset(row);
    for (let i = 0; i < this.#dim; i++) heap[base + i] = (vector[i] as number) * scale;
    if (!this.has(row)) {
      this.#live[row >>> 5] = (this.#live[row >>> 5] as number) | (1 << (row & 31));
      this.#size++;
    }
    if (row >= this.#rowEnd) this.#rowEnd = row + 1;
  }

  /**
   * Removes `row`; returns whether it held a vector. Its memory is reused when the row is set again.
   * @throws {AssertionError} when the index is closed or inside its own `accept` callback.
   */
  delete(row: number): boolean {
    this.#assertUsable();
    if (!this.has(row)) return false;
    this.#live[row >>> 5] = (this.#live[row >>> 5] as number) & ~(1 << (row & 31));
    // Zeroed so a deleted chunk's vector does not linger in memory, and scores 0 in every scan.
    const base = this.#rowOffset(row);
    this.#heap.fill(0, base, base + this.#stride);
    this.#size--;
    return true;
  }

  /**
   * The `k` live rows most similar to `query` (cosine), best first; ties go to the lower row.
   * `accept` (e.g. a metadata filter) is called only for rows that would enter the top k, in
   * ascending row order, so it should be cheap and pure; rejected rows are skipped. It must not use
   * this index: the scores it is ranking live in the index's memory.
   * @throws {AssertionError} when the index is closed or inside its own `accept` callback, `k` is not
   *   a non-negative integer, or `query` has the wrong length or a non-finite entry (callers validate
   *   plugin-supplied vectors first).
   */
  search(query: Float32Array, k: number, accept?: (row: number) => boolean): ScoredRow[] {
    this.#assertUsable();
    assert.ok(Number.isInteger(k) && k >= 0, `k is ${k}; allowed: a non-negative integer`);
    const dim = this.#dim;
    const scale = inverseNorm(query, dim);
    const top = new TopK(Math.min(k, this.#size));
    this.#searching = true;
    try {
      if (this.#size === 0 || k === 0 || scale === 0) return this.#zeroScores(top, accept);
      const heap = this.#heap;
      for (let i = 0; i < dim; i++) heap[QUERY_OFFSET + i] = (query[i] as number) * scale;
      const scoresOffset = this.#scoresOffset();
      // Not null: #assertUsable has checked that the index is open.
      (this.#kernel as ScoresKernel)(QUERY_OFFSET * BYTES_PER_FLOAT, this.#rowOffset(0) * BYTES_PER_FLOAT, this.#rowEnd, this.#stride, scoresOffset * BYTES_PER_FLOAT);
      // Cleared at once: no query outlives its call.
      heap.fill(0, QUERY_OFFSET, QUERY_OFFSET + dim);
      collectTop(heap.subarray(scoresOffset, scoresOffset + this.#rowEnd), this.#live, top, accept);
      return top.results();
    } finally {
      this.#searching = false;
    }
  }

  /**
   * Releases the vectors (the memory goes with the garbage collector); any later call is a
   * programming error.
   * @throws {AssertionError} when called from inside the index's own `accept` callback.
   */
  close(): void {
    assert.ok(!this.#searching, 'the vector index cannot be used from its own accept callback');
    this.#closed = true;
    // Dropped, not just flagged: a closed index that is still referenced must not pin its memory.
    this.#memory = null;
    this.#kernel = null;
    this.#heap = new Float32Array(0);
    this.#live = new Uint32Array(0);
    this.#size = 0;
    this.#rowEnd = 0;
    this.#capacity = 0;
  }

  /** A zero query (or an empty index) scores 0 everywhere: the lowest accepted rows win. */
  #zeroScores(top: TopK, accept: ((row: number) => boolean) | undefined): ScoredRow[] {
    for (let row = 0; row < this.#rowEnd; row++) {
      if (!top.wouldKeep(row, 0)) break;
      if (this.has(row) && (accept === undefined || accept(row))) top.push(row, 0);
    }
    return top.results();
  }

  /** Where row `row` starts in the memory, in floats. */
  #rowOffset(row: number): number {
    return (MATRIX_OFFSET_ROWS + row) * this.#stride;
  }

  /** Where the scores go, in floats: just past the matrix, so they move when it grows. */
  #scoresOffset(): number {
    return this.#rowOffset(this.#capacity);
  }

  /**
   * Amortised doubling: at least `rows` rows and twice the old capacity, rounded up to whole bitmap
   * words, never past the row limit. The matrix grows in place at the end of the memory; the old
   * scores area becomes matrix rows and is zeroed, so the padding of rows set later is zero.
   */
  #grow(rows: number): void {
    const capacity = roundToWord(Math.min(Math.max(rows, this.#capacity * 2), LIMITS.chunksPerTenantMax));
    const oldScoresOffset = this.#scoresOffset();
    const memory = this.#memory as WebAssembly.Memory; // set only while open, and set asserts that
    memory.grow(pagesFor(this.#stride, capacity) - memory.buffer.byteLength / PAGE_BYTES);
    this.#heap = new Float32Array(memory.buffer);
    this.#heap.fill(0, oldScoresOffset, oldScoresOffset + this.#capacity);
    const live = new Uint32Array(capacity / BITS_PER_WORD);
    live.set(this.#live);
    this.#live = live;
    this.#capacity = capacity;
  }

  #assertUsable(): void {
    assert.ok(!this.#closed, 'the vector index is closed');
    assert.ok(!this.#searching, 'the vector index cannot be used from its own accept callback');
  }
}

/**
 * Offers every live row's score to `top`, in ascending row order, calling `accept` only for rows
 * that would be kept. `scores[r]` is row r's score; rows not in the `live` bitmap are skipped.
 *
 * Once the heap is full almost every row fails the first comparison against a local floor, so the
 * pass costs little more than reading the scores: measured at 10,000 rows, about 12 µs against
 * 30 µs calling `wouldKeep` for every row and 60 µs walking the bitmap's set bits instead.
 */
function collectTop(scores: Float32Array, live: Uint32Array, top: TopK, accept: ((row: number) => boolean) | undefined): void {
  let floor = top.floor;
  for (let row = 0; row < scores.length; row++) {
    const score = scores[row] as number;
    if (score < floor || (((live[row >>> 5] as number) >>> (row & 31)) & 1) === 0) continue;
    if (top.wouldKeep(row, score) && (accept === undefined || accept(row))) {
      top.push(row, score);
      floor = top.floor;
    }
  }
}

/** Bytes needed for the query, `capacity` rows of `stride` floats and their scores, in whole pages. */
function pagesFor(stride: number, capacity: number): number {
  return Math.ceil(((MATRIX_OFFSET_ROWS + capacity) * stride + capacity) * BYTES_PER_FLOAT / PAGE_BYTES);
}

/** 1 / |v|, or 0 for a zero vector; asserts the length and that every entry is finite. */
function inverseNorm(vector: Float32Array, dim: number): number {
  assert.ok(vector.length === dim, `vector length is ${vector.length}; expected ${dim}`);
  let squares = 0;
  for (let i = 0; i < dim; i++) squares += (vector[i] as number) * (vector[i] as number);
  assert.ok(Number.isFinite(squares), 'vector has a non-finite entry');
  return squares === 0 ? 0 : 1 / Math.sqrt(squares);
}

function roundToWord(rows: number): number {
  return Math.ceil(rows / BITS_PER_WORD) * BITS_PER_WORD;
}

