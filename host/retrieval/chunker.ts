/**
 * Splits a document into overlapping chunks for retrieval. Pure and deterministic.
 *
 * The text is first whitespace-normalised (runs without a line break become one space, runs with one
 * line break become `\n`, runs with two or more — a blank line — become `\n\n`; leading and trailing
 * whitespace dropped). Each chunk is at most `targetChars` normalised characters and ends at the
 * strongest boundary found in the second half of its window: a paragraph break, else a sentence end
 * (or a line break), else a space, else — for a run with no whitespace at all — a hard cut that never
 * splits a surrogate pair or a base character from its combining marks. The next chunk starts up to
 * `overlapChars` before the previous end, at the earliest sentence start in that span, else the
 * earliest word start, else with no overlap. Every step scans a bounded window once, and each chunk
 * advances by at least a quarter of `targetChars`, so the whole is O(n).
 */
import assert from 'node:assert/strict';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';

/** Options of {@link chunkText}. */
export interface ChunkOptions {
  /** Largest chunk, in normalised characters (UTF-16 code units). Default 800. */
  targetChars?: number;
  /** Most characters a chunk repeats from the end of the one before. Default 120; at most targetChars / 4. */
  overlapChars?: number;
}

/** One chunk of a document. */
export interface Chunk {
  /** 0-based position of the chunk in its document. */
  ordinal: number;
  /** The chunk's whitespace-normalised text; never empty. */
  text: string;
  /** Offset (UTF-16 code units) in the ORIGINAL text of the chunk's first character. */
  start: number;
  /** Offset in the original text just past the chunk's last character. */
  end: number;
}

const DEFAULT_TARGET_CHARS = 800;
const DEFAULT_OVERLAP_CHARS = 120;
const SPACE = 0x20;
const NEWLINE = 0x0a;

/**
 * Chunks `text`. Offsets refer to the original text, so `text.slice(start, end)` is the chunk before
 * whitespace normalisation; whitespace-only text gives no chunks.
 * @throws {HostError} `CONFIG_INVALID` when `targetChars` is not an integer within
 *   [`LIMITS.chunkTargetCharsMin`, `LIMITS.chunkTargetCharsMax`], or `overlapChars` is not an integer
 *   within [0, floor(targetChars / 4)].
 */
export function chunkText(text: string, options: ChunkOptions = {}): Chunk[] {
  const { targetChars, overlapChars } = resolveOptions(options);
  const { normal, origin } = normaliseWhitespace(text);
  const chunks: Chunk[] = [];
  const length = normal.length;
  let start = 0;
  while (start < length) {
    const end = length - start <= targetChars ? length : findChunkEnd(normal, start, targetChars);
    assert.ok(end > start && !isSpace(normal.charCodeAt(end - 1)), 'a chunk is never empty nor ends in whitespace');
    chunks.push({
      ordinal: chunks.length,
      text: normal.slice(start, end),
      start: origin[start] ?? 0,
      end: (origin[end - 1] ?? 0) + 1,
    });
    if (end >= length) break;
    const next = findNextStart(normal, start, end, overlapChars);
    assert.ok(next > start, 'chunking always advances');
    start = next;
  }
  return chunks;
}

function resolveOptions(options: ChunkOptions): { targetChars: number; overlapChars: number } {
  for (const key of Object.keys(options)) {
    if (key !== 'targetChars' && key !== 'overlapChars') {
      throw new HostError('CONFIG_INVALID', `chunk option "${key}" is unknown; allowed: targetChars, overlapChars`, { setting: key });
    }
  }
  const targetChars = options.targetChars ?? DEFAULT_TARGET_CHARS;
  const { chunkTargetCharsMin: min, chunkTargetCharsMax: max } = LIMITS;
  if (!Number.isInteger(targetChars) || targetChars < min || targetChars > max) {
    const message = `targetChars is ${targetChars}; allowed: an integer from ${min} to ${max}`;
    throw new HostError('CONFIG_INVALID', message, { setting: 'targetChars' });
  }
  const overlapChars = options.overlapChars ?? Math.min(DEFAULT_OVERLAP_CHARS, Math.floor(targetChars / 4));
  const overlapMax = Math.floor(targetChars / 4);
  if (!Number.isInteger(overlapChars) || overlapChars < 0 || overlapChars > overlapMax) {
    const message = `overlapChars is ${overlapChars}; allowed: an integer from 0 to ${overlapMax} (targetChars / 4)`;
    throw new HostError('CONFIG_INVALID', message, { setting: 'overlapChars' });
  }
  return { targetChars, overlapChars };
}

/** True for every character JavaScript's `\s` matches. */
function isSpace(code: number): boolean {
  if (code <= 0x20) return code === SPACE || (code >= 0x09 && code <= 0x0d);
  if (code < 0xa0) return false;
  return code === 0xa0 || code === 0x1680 || (code >= 0x2000 && code <= 0x200a) || code === 0x2028 ||
    code === 0x2029 || code === 0x202f || code === 0x205f || code === 0x3000 || code === 0xfeff;
}

/** How many line breaks a whitespace character counts for (CR LF counts once, via the LF). */
function lineBreaks(text: string, i: number, code: number): number {
  if (code === NEWLINE || code === 0x0b || code === 0x2028) return 1;
  if (code === 0x0d) return text.charCodeAt(i + 1) === NEWLINE ? 0 : 1;
  if (code === 0x0c || code === 0x2029) return 2; // form feed and paragraph separator end a paragraph
  return 0;
}

/**
 * Collapses whitespace runs (see the module comment) and records, for each normalised character, its
 * offset in the original text. Offsets of the collapsed whitespace point at the run's first character;
 * they are never used as chunk bounds because chunks start and end on non-whitespace.
 */
function normaliseWhitespace(text: string): { normal: string; origin: Int32Array } {
  const parts: string[] = [];
  // A lone form feed or paragraph separator becomes two characters ("\n\n"); size for that.
  const origin = new Int32Array(text.length + (text.match(/[\f\u2029]/g)?.length ?? 0));
  let out = 0;
  let i = 0;
  while (i < text.length) {
    const runStart = i;
    let breaks = 0;
    while (i < text.length && isSpace(text.charCodeAt(i))) breaks += lineBreaks(text, i, text.charCodeAt(i++));
    if (i > runStart && out > 0 && i < text.length) {
      const gap = breaks >= 2 ? '\n\n' : breaks === 1 ? '\n' : ' ';
      parts.push(gap);
      for (let g = 0; g < gap.length; g++) origin[out++] = runStart;
    }
    const wordStart = i;
    while (i < text.length && !isSpace(text.charCodeAt(i))) origin[out++] = i++;
    if (i > wordStart) parts.push(text.slice(wordStart, i));
  }
  return { normal: parts.join(''), origin };
}

/** Sentence-final punctuation, Latin and CJK. */
function isTerminator(code: number): boolean {
  return code === 0x2e || code === 0x21 || code === 0x3f || code === 0x2026 || code === 0x3002 || code === 0xff01 || code === 0xff1f;
}

/** Quotes and brackets that may follow a sentence's final punctuation. */
function isCloser(code: number): boolean {
  return code === 0x22 || code === 0x27 || code === 0x29 || code === 0x5d || code === 0x2019 || code === 0x201d || code === 0xbb;
}

/**
 * Whether a break before position `p` of the normalised text ends a sentence: a line break does, and
 * so does `.`, `!`, `?` (optionally followed by up to three closing quotes or brackets) before a space
 * when the next word does not start in lower case (`e.g. the` is not a sentence end). CJK full stops
 * end a sentence with no space after them.
 */
function isSentenceBreak(normal: string, p: number): boolean {
  const code = normal.charCodeAt(p);
  if (code === NEWLINE) return true;
  const before = normal.charCodeAt(p - 1);
  if (code !== SPACE) return before === 0x3002 || before === 0xff01 || before === 0xff1f;
  let q = p - 1;
  while (q > p - 4 && q > 0 && isCloser(normal.charCodeAt(q))) q--;
  if (!isTerminator(normal.charCodeAt(q))) return false;
  return !/\p{Ll}/u.test(normal[p + 1] ?? '');
}

/** Where a chunk starting at `start` (with more than `targetChars` left) ends, exclusive. */
function findChunkEnd(normal: string, start: number, targetChars: number): number {
  const low = start + Math.floor(targetChars / 2);
  const high = start + targetChars;
  let sentence = -1;
  let space = -1;
  for (let p = high; p > low; p--) {
    const code = normal.charCodeAt(p);
    const atGap = isSpace(code) && !isSpace(normal.charCodeAt(p - 1));
    if (atGap && code === NEWLINE && normal.charCodeAt(p + 1) === NEWLINE) return p;
    if (sentence < 0 && (atGap || !isSpace(code)) && isSentenceBreak(normal, p)) sentence = p;
    if (space < 0 && atGap) space = p;
  }
  if (sentence >= 0) return sentence;
  if (space >= 0) return space;
  return hardCut(normal, high); // targetChars >= 100 keeps the cut 32+ characters above `low`
}

/**
 * Cuts a run without whitespace at `at`, moved back by up to 32 characters so that it does not split a
 * surrogate pair or separate combining marks from their base; a longer run of marks (an attack, not
 * text) is cut at `at`, still never inside a surrogate pair.
 */
function hardCut(normal: string, at: number): number {
  for (let p = at; p > at - 32; p--) {
    const code = normal.charCodeAt(p);
    const splitsPair = code >= 0xdc00 && code <= 0xdfff;
    if (!splitsPair && !(code >= 0x300 && /\p{M}/u.test(normal[p] ?? ''))) return p;
  }
  const code = normal.charCodeAt(at);
  return code >= 0xdc00 && code <= 0xdfff ? at - 1 : at;
}

/** Where the chunk after [start, end) begins: inside the overlap span if a boundary allows. */
function findNextStart(normal: string, start: number, end: number, overlapChars: number): number {
  let afterEnd = end;
  while (isSpace(normal.charCodeAt(afterEnd))) afterEnd++;
  if (overlapChars === 0) return afterEnd;
  let wordStart = -1;
  for (let q = Math.max(start + 1, end - overlapChars); q < end; q++) {
    if (isSpace(normal.charCodeAt(q))) continue;
    const previous = normal.charCodeAt(q - 1);
    if (!isSpace(previous)) {
      if (isSentenceBreak(normal, q)) return q; // right after a CJK full stop
      continue;
    }
    const gap = previous === NEWLINE && normal.charCodeAt(q - 2) === NEWLINE ? q - 2 : q - 1;
    if (isSentenceBreak(normal, gap)) return q;
    if (wordStart < 0) wordStart = q;
  }
  return wordStart >= 0 ? wordStart : afterEnd;
}
