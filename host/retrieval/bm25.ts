/**
 * An in-memory Okapi BM25 index over rows numbered 0..n (one tenant's chunks), the lexical half of
 * hybrid retrieval. Terms come from the shared tokenizer (tokenize.ts), so queries and chunks agree.
 *
 * score(d, q) = Σ over distinct query terms t of
 *   idf(t) · tf(t,d) · (k1 + 1) / (tf(t,d) + k1 · (1 − b + b · |d| / avgdl)),
 *   idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))   (always positive: the "+1" smoothing),
 * with k1 = 1.2, b = 0.75, N the live documents and avgdl their mean length. N, df and the total
 * length are kept up to date on every add and delete.
 *
 * Postings are two parallel typed arrays per term (rows, term frequencies) that grow by doubling.
 * Deletion is lazy: the row's live bit is cleared and its df and length leave the statistics at once,
 * while its posting entries stay as tombstones skipped at search time; a posting list is compacted
 * when more than half of it is tombstones, so the cost is amortised over the deletions. A deleted row
 * that is added again first has its tombstones purged, so a posting never holds two entries for a row.
 */
import assert from 'node:assert/strict';
import { LIMITS } from '../limits.ts';
import { TopK, type ScoredRow } from './vector-index.ts';

const K1 = 1.2;
const B = 0.75;
const INITIAL_POSTING_CAPACITY = 4;
/** Posting lists shorter than this are not worth compacting. */
const COMPACT_MIN_ENTRIES = 16;

/** The posting list of one term. */
interface Posting {
  term: string;
  rows: Int32Array;
  freqs: Float32Array;
  /** Entries in use, tombstones included. */
  count: number;
  /** Live documents holding the term. */
  df: number;
}

/**
 * Counts each token: the `termFreqs` argument of {@link Bm25Index.add}.
 */
export function termFrequencies(tokens: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const token of tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
  return counts;
}

/** An in-memory BM25 index for one tenant. Close it to release its memory. */
export class Bm25Index {
  #terms = new Map<string, Posting>();
  /** Per row: the postings it was added to (kept after delete, to purge tombstones on re-add). */
  #rowPostings: Array<Posting[] | undefined> = [];
  #lengths = new Float64Array(64);
  #live = new Uint8Array(64);
  #docCount = 0;
  #totalLength = 0;
  /** Search scratch: per-row score accumulators (zero between searches) and the rows touched. */
  #scores = new Float64Array(64);
  #touched = new Int32Array(64);
  #closed = false;

  /** The number of live rows. */
  get size(): number {
    return this.#docCount;
  }

  /** Whether `row` is indexed. */
  has(row: number): boolean {
    return row >= 0 && row < this.#live.length && this.#live[row] === 1;
  }

  /**
   * Indexes (or re-indexes) `row` with its term frequencies and its length in tokens.
   * @throws {AssertionError} when the index is closed, `row` is not an integer in
   *   [0, `LIMITS.chunksPerTenantMax`), `length` is not a finite number ≥ 0, or a frequency is not
   *   a positive finite number — the storage layer derives all three from the tokenizer.
   */
  add(row: number, termFreqs: ReadonlyMap<string, number>, length: number): void {
    this.#assertOpen();
    const rowsMax = LIMITS.chunksPerTenantMax;
    assert.ok(Number.isInteger(row) && row >= 0 && row < rowsMax, `row is ${row}; allowed: 0 to ${rowsMax - 1}`);
    assert.ok(Number.isFinite(length) && length >= 0, `length is ${length}; allowed: a finite number >= 0`);
    for (const freq of termFreqs.values()) {
      assert.ok(Number.isFinite(freq) && freq > 0, `frequency of a term is ${freq}; allowed: a positive number`);
    }
    if (this.has(row)) this.delete(row);
    this.#purge(row);
    this.#ensureRows(row + 1);
    const postings: Posting[] = [];
    for (const [term, freq] of termFreqs) {
      const posting = this.#terms.get(term) ?? this.#newPosting(term);
      appendEntry(posting, row, freq);
      posting.df++;
      postings.push(posting);
    }
    this.#rowPostings[row] = postings;
    this.#live[row] = 1;
    this.#lengths[row] = length;
    this.#docCount++;
    this.#totalLength += length;
  }

  /** Removes `row`; returns whether it was indexed. */
  delete(row: number): boolean {
    this.#assertOpen();
    if (!this.has(row)) return false;
    this.#live[row] = 0;
    this.#docCount--;
    this.#totalLength -= this.#lengths[row] as number;
    if (this.#docCount === 0) this.#totalLength = 0; // no float drift survives an empty index
    for (const posting of this.#rowPostings[row] ?? []) {
      posting.df--;
      if (posting.df === 0) this.#dropPosting(posting);
      else if (posting.count >= COMPACT_MIN_ENTRIES && posting.count - posting.df > posting.count / 2) this.#compact(posting);
    }
    return true;
  }

  /**
   * The `k` best rows for `queryTerms` (tokenized like the documents; duplicates count once), best
   * first; ties go to the lower row. Rows without any query term are never returned. `accept` is
   * called only for rows that would enter the top k, so it should be cheap and pure.
   * @throws {AssertionError} when the index is closed or `k` is not a non-negative integer.
   */
  search(queryTerms: readonly string[], k: number, accept?: (row: number) => boolean): ScoredRow[] {
    this.#assertOpen();
    assert.ok(Number.isInteger(k) && k >= 0, `k is ${k}; allowed: a non-negative integer`);
    if (k === 0 || this.#docCount === 0) return [];
    const touched = this.#accumulate(new Set(queryTerms));
    const scores = this.#scores;
    const top = new TopK(Math.min(k, touched));
    try {
      for (let i = 0; i < touched; i++) {
        const row = this.#touched[i] as number;
        const score = scores[row] as number;
        if (top.wouldKeep(row, score) && (accept === undefined || accept(row))) top.push(row, score);
      }
    } finally {
      // The accumulators must be zero for the next search even if `accept` threw.
      for (let i = 0; i < touched; i++) scores[this.#touched[i] as number] = 0;
    }
    return top.results();
  }

  /** Releases the postings; any later call is a programming error. */
  close(): void {
    this.#closed = true;
    this.#terms = new Map();
    this.#rowPostings = [];
    this.#lengths = new Float64Array(0);
    this.#live = new Uint8Array(0);
    this.#scores = new Float64Array(0);
    this.#touched = new Int32Array(0);
    this.#docCount = 0;
    this.#totalLength = 0;
  }

  /** Adds every query term's contribution into #scores; returns how many rows were touched. */
  #accumulate(terms: ReadonlySet<string>): number {
    const n = this.#docCount;
    const averageLength = this.#totalLength / n || 1; // all-empty documents: any positive value works
    const live = this.#live;
    const lengths = this.#lengths;
    const scores = this.#scores;
    const touched = this.#touched;
    let touchedCount = 0;
    for (const term of terms) {
      const posting = this.#terms.get(term);
      if (posting === undefined) continue;
      const idf = Math.log(1 + (n - posting.df + 0.5) / (posting.df + 0.5));
      const { rows, freqs, count } = posting;
      for (let e = 0; e < count; e++) {
        const row = rows[e] as number;
        if (live[row] !== 1) continue;
        const tf = freqs[e] as number;
        const norm = K1 * (1 - B + (B * (lengths[row] as number)) / averageLength);
        const previous = scores[row] as number;
        // Every contribution is positive (idf > 0, tf > 0), so 0 means "not touched yet".
        if (previous === 0) touched[touchedCount++] = row;
        scores[row] = previous + (idf * tf * (K1 + 1)) / (tf + norm);
      }
    }
    return touchedCount;
  }

  #newPosting(term: string): Posting {
    const posting: Posting = {
      term,
      rows: new Int32Array(INITIAL_POSTING_CAPACITY),
      freqs: new Float32Array(INITIAL_POSTING_CAPACITY),
      count: 0,
      df: 0,
    };
    this.#terms.set(term, posting);
    return posting;
  }

  /** A term no live row holds any more leaves the dictionary (its tombstones go with it). */
  #dropPosting(posting: Posting): void {
    if (this.#terms.get(posting.term) === posting) this.#terms.delete(posting.term);
    posting.count = 0;
    posting.rows = new Int32Array(0);
    posting.freqs = new Float32Array(0);
  }

  /** Removes the tombstones of every deleted row from a posting list. */
  #compact(posting: Posting): void {
    const { rows, freqs } = posting;
    let kept = 0;
    for (let e = 0; e < posting.count; e++) {
      const row = rows[e] as number;
      if (this.#live[row] !== 1) continue;
      rows[kept] = row;
      freqs[kept++] = freqs[e] as number;
    }
    posting.count = kept;
  }

  /** Before a deleted row is added again, its tombstones go, so they cannot come back to life. */
  #purge(row: number): void {
    const postings = this.#rowPostings[row];
    if (postings === undefined) return;
    for (const posting of postings) {
      const { rows, freqs } = posting;
      let kept = 0;
      for (let e = 0; e < posting.count; e++) {
        if (rows[e] === row) continue;
        rows[kept] = rows[e] as number;
        freqs[kept++] = freqs[e] as number;
      }
      posting.count = kept;
    }
    this.#rowPostings[row] = undefined;
  }

  /** Grows the per-row arrays (doubling) to hold `rows` rows. */
  #ensureRows(rows: number): void {
    if (rows <= this.#live.length) return;
    const capacity = Math.min(Math.max(rows, this.#live.length * 2), LIMITS.chunksPerTenantMax);
    this.#live = grow(this.#live, new Uint8Array(capacity));
    this.#lengths = grow(this.#lengths, new Float64Array(capacity));
    this.#scores = new Float64Array(capacity); // all zero between searches, so nothing to copy
    this.#touched = new Int32Array(capacity);
  }

  #assertOpen(): void {
    assert.ok(!this.#closed, 'the BM25 index is closed');
  }
}

function grow<T extends Uint8Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Appends one entry, doubling the posting's arrays when full. */
function appendEntry(posting: Posting, row: number, freq: number): void {
  if (posting.count === posting.rows.length) {
    const capacity = Math.max(INITIAL_POSTING_CAPACITY, posting.rows.length * 2);
    const rows = new Int32Array(capacity);
    rows.set(posting.rows);
    const freqs = new Float32Array(capacity);
    freqs.set(posting.freqs);
    posting.rows = rows;
    posting.freqs = freqs;
  }
  posting.rows[posting.count] = row;
  posting.freqs[posting.count++] = freq;
}
