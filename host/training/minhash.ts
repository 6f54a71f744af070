/**
 * Near-duplicate fingerprints for the leak audit: MinHash signatures over word shingles, found by
 * locality-sensitive hashing (LSH) bands.
 *
 * A text becomes word 3-shingles; the shingles are cut into overlapping windows of
 * {@link WINDOW_SHINGLES} with a stride of half a window, and each window gets a signature of
 * {@link SIGNATURE_HASHES} minimum hashes. Windows rather than whole texts, because the question is
 * "does this example hold a passage of that chunk", not "are these two texts alike": a passage of
 * about WINDOW_SHINGLES + stride words copied into a longer text fills one of the text's windows
 * entirely, and some window of the source lies within a quarter window of it, so the two windows
 * share at least 3/4 of their shingles (Jaccard ≥ 0.6, above {@link NEAR_DUPLICATE_JACCARD}).
 * Texts shorter than a window are one window; fewer than {@link MIN_SHINGLES} shingles are too short
 * to call anything a duplicate of (canaries cover short secrets).
 *
 * Bands of {@link BAND_ROWS} rows: two windows become candidates when any band matches, which for
 * Jaccard 0.6 happens with probability 1 − (1 − 0.6⁴)^32 ≈ 0.99; candidates are then confirmed by
 * the signature estimate.
 */

/** Words per shingle. */
export const SHINGLE_WORDS = 3;
/** Shingles per window. */
export const WINDOW_SHINGLES = 16;
/** Shingles between window starts. */
const WINDOW_STRIDE = WINDOW_SHINGLES / 2;
/** Minimum hashes per signature. */
export const SIGNATURE_HASHES = 128;
/** Signature rows per LSH band. */
const BAND_ROWS = 4;
const BANDS = SIGNATURE_HASHES / BAND_ROWS;
/** Shingles a text needs before it is fingerprinted at all. */
export const MIN_SHINGLES = 4;
/** Estimated Jaccard similarity of two windows at or above which they are near-duplicates. */
export const NEAR_DUPLICATE_JACCARD = 0.5;

/** One seed per hash function, from a fixed generator so every run and host fingerprints alike. */
const SEEDS = (() => {
  const seeds = new Uint32Array(SIGNATURE_HASHES);
  let state = 0x9e3779b9;
  for (let i = 0; i < seeds.length; i += 1) {
    state = (state + 0x6d2b79f5) >>> 0;
    seeds[i] = mix32(state);
  }
  return seeds;
})();

/** MurmurHash3's 32-bit finaliser: every input bit affects every output bit. */
function mix32(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units of a string. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The word shingles of a text as 32-bit hashes: lower case, letters and digits, any script. */
export function shingleHashes(text: string): Uint32Array {
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  if (words.length < SHINGLE_WORDS) return new Uint32Array(0);
  const hashes = new Uint32Array(words.length - SHINGLE_WORDS + 1);
  for (let i = 0; i < hashes.length; i += 1) hashes[i] = fnv1a(words.slice(i, i + SHINGLE_WORDS).join(' '));
  return hashes;
}

/** The MinHash signature of a set of shingle hashes. */
export function signature(shingles: Uint32Array): Uint32Array {
  const mins = new Uint32Array(SIGNATURE_HASHES).fill(0xffffffff);
  for (const shingle of shingles) {
    for (let i = 0; i < SIGNATURE_HASHES; i += 1) {
      const h = mix32(shingle ^ (SEEDS[i] as number));
      if (h < (mins[i] as number)) mins[i] = h;
    }
  }
  return mins;
}

/**
 * The signatures of a text's windows (none for a text under MIN_SHINGLES shingles). The last window
 * ends at the text's end, so a passage at the end is covered like one in the middle.
 */
export function windowSignatures(text: string): Uint32Array[] {
  const shingles = shingleHashes(text);
  if (shingles.length < MIN_SHINGLES) return [];
  if (shingles.length <= WINDOW_SHINGLES) return [signature(shingles)];
  const starts: number[] = [];
  for (let start = 0; start + WINDOW_SHINGLES <= shingles.length; start += WINDOW_STRIDE) starts.push(start);
  const last = shingles.length - WINDOW_SHINGLES;
  if (starts.at(-1) !== last) starts.push(last);
  return starts.map((start) => signature(shingles.subarray(start, start + WINDOW_SHINGLES)));
}

/** The share of positions where two signatures agree: an unbiased estimate of the Jaccard similarity of their sets. */
export function estimateJaccard(a: Uint32Array, b: Uint32Array): number {
  let same = 0;
  for (let i = 0; i < SIGNATURE_HASHES; i += 1) if (a[i] === b[i]) same += 1;
  return same / SIGNATURE_HASHES;
}

/** An LSH index over window signatures, each carrying a value of the caller's (an example id, say). */
export class LshIndex<T> {
  readonly #buckets = new Map<number, number[]>();
  readonly #signatures: Uint32Array[] = [];
  readonly #values: T[] = [];

  /** Number of signatures added. */
  get size(): number {
    return this.#signatures.length;
  }

  /** Adds a signature. */
  add(sig: Uint32Array, value: T): void {
    const index = this.#signatures.length;
    this.#signatures.push(sig);
    this.#values.push(value);
    for (let band = 0; band < BANDS; band += 1) {
      const key = bandKey(sig, band);
      const bucket = this.#buckets.get(key);
      if (bucket === undefined) this.#buckets.set(key, [index]);
      else bucket.push(index);
    }
  }

  /** The values of indexed signatures that are near-duplicates of `sig`, with their estimated similarity. */
  nearDuplicates(sig: Uint32Array): { value: T; similarity: number }[] {
    const seen = new Set<number>();
    const found: { value: T; similarity: number }[] = [];
    for (let band = 0; band < BANDS; band += 1) {
      for (const index of this.#buckets.get(bandKey(sig, band)) ?? []) {
        if (seen.has(index)) continue;
        seen.add(index);
        const similarity = estimateJaccard(sig, this.#signatures[index] as Uint32Array);
        if (similarity >= NEAR_DUPLICATE_JACCARD) found.push({ value: this.#values[index] as T, similarity });
      }
    }
    return found;
  }
}

/** One 32-bit key per band: its rows hashed together with the band number (a collision only adds a candidate). */
function bandKey(sig: Uint32Array, band: number): number {
  let h = mix32(band + 1);
  for (let row = 0; row < BAND_ROWS; row += 1) h = mix32(h ^ (sig[band * BAND_ROWS + row] as number));
  return h;
}
