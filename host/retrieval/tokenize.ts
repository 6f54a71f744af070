/**
 * The lexical tokenizer shared by the BM25 index and the local embedder, so that a query and a chunk
 * always agree on what a "term" is. Pure and deterministic: the same text gives the same tokens on
 * every machine (no locale-dependent case mapping, no dictionaries).
 *
 * Pipeline: NFKC (full-width and compatibility forms fold to their plain letters) → lower-case →
 * split into runs of letters, digits and combining marks (`\p{L}\p{N}\p{M}`, apostrophes inside a
 * word kept) → contractions (`'s` dropped, `n't` becomes the base word plus `not`) → stop words
 * dropped (unless kept on request) → light stemming (see {@link stemWord}) → length cap
 * ({@link LIMITS.tokenCharsMax}).
 * Han, Hiragana and Katakana are written without spaces, so each of their characters is a token of
 * its own; the embedder's word bigrams then recover character pairs.
 */
import { LIMITS } from '../limits.ts';

/**
 * A small English stop-word list: function words that carry no topic. Negations (`no`, `not`, `nor`)
 * and question words (`how`, `why`, `what`, ...) are deliberately absent: "how do I X" and "why
 * does X" are different questions to a semantic cache, and "X is supported" vs "X is not supported"
 * must not look identical.
 */
const STOP_WORDS: ReadonlySet<string> = new Set([
  'a', 'an', 'the', 'and', 'or', 'but', 'if', 'then', 'so', 'than', 'as', 'of', 'to', 'in', 'on', 'at',
  'by', 'for', 'with', 'from', 'into', 'onto', 'about', 'over', 'under', 'up', 'out', 'off',
  'is', 'are', 'was', 'were', 'be', 'been', 'being', 'am', 'do', 'does', 'did', 'done', 'doing',
  'has', 'have', 'had', 'having', 'will', 'would', 'shall', 'should', 'can', 'could', 'may', 'might',
  'must', 'it', 'its', 'this', 'that', 'these', 'those', 'there', 'here', 'i', 'me', 'my', 'mine',
  'you', 'your', 'yours', 'he', 'him', 'his', 'she', 'her', 'hers', 'we', 'us', 'our', 'ours',
  'they', 'them', 'their', 'theirs', 'itself', 'also', 'just', 'very', 'too', 'such', 'some', 'any',
  'each', 'other', 'own', 'same', 'both', 'all', 'only', 'more', 'most', 'again', 'further',
  'once', 's', 't', 'd', 'll', 're', 've', 'm',
]);

const NO_STOP_WORDS: ReadonlySet<string> = new Set();

/** Contractions whose base is not the word before `n't`. */
const NEGATION_BASES: ReadonlyMap<string, string> = new Map([['ca', 'can'], ['wo', 'will'], ['sha', 'shall']]);

/** A word: letters/digits/marks, optionally joined by apostrophes (`don't`, `model's`). */
const WORD_PATTERN = /[\p{L}\p{N}][\p{L}\p{N}\p{M}]*(?:['’][\p{L}\p{N}\p{M}]+)*/gu;

/** Scripts written without spaces between words: one token per character. */
const UNSPACED_SCRIPT = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;
const UNSPACED_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]\p{M}*|[^\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]+/gu;

/** Words ending in -ed that are not past tenses (shorter ones are caught by the vowel rule). */
const NOT_PAST_TENSE: ReadonlySet<string> = new Set(['embed', 'imbed', 'hundred', 'sacred', 'naked', 'wicked', 'infrared', 'kindred']);

/** Adverb endings where removing `-ly` leaves the adjective (`quickly` → `quick`); see stemWord. */
const LY_STEM_ENDINGS = ['al', 'nt', 'ct', 'ous', 'ive', 'ful', 'less', 'ar', 'ick', 'ight', 'e', 'st'];

/** Options of {@link tokenize}. */
export interface TokenizeOptions {
  /**
   * Keep stop words (default false). BM25 drops them: they only lengthen postings. The embedder keeps
   * them: in short questions they carry structure ("it is not in" vs "is it in"); measured on the
   * paraphrase set while tuning, keeping them raised top-1 paraphrase retrieval from 88% to 92%.
   */
  keepStopWords?: boolean;
}

/**
 * Splits text into normalised, stemmed terms.
 * Linear in the length of `text`; callers bound that length (e.g. `LIMITS.embedTextCharsMax`).
 */
export function tokenize(text: string, options: TokenizeOptions = {}): string[] {
  const tokens: string[] = [];
  const stopWords = options.keepStopWords === true ? NO_STOP_WORDS : STOP_WORDS;
  const folded = text.normalize('NFKC').toLowerCase();
  for (const match of folded.matchAll(WORD_PATTERN)) {
    const word = match[0];
    if (UNSPACED_SCRIPT.test(word)) pushUnspaced(word, tokens, stopWords);
    else pushWord(word, tokens, stopWords);
  }
  return tokens;
}

/** Handles contractions and apostrophes of one word, then stems and caps it. */
function pushWord(word: string, tokens: string[], stopWords: ReadonlySet<string>): void {
  let base = word;
  let negated = false;
  if (base.includes("'") || base.includes('’')) {
    base = base.replaceAll('’', "'");
    if (base.endsWith("'s")) base = base.slice(0, -2);
    else if (base.endsWith("n't")) {
      base = base.slice(0, -3);
      base = NEGATION_BASES.get(base) ?? base;
      negated = true;
    }
    base = base.replaceAll("'", '');
  }
  if (base.length > 0 && !stopWords.has(base)) tokens.push(capToken(stemWord(base)));
  if (negated) tokens.push('not');
}

/** Emits one token per character of a Han/Kana run, and ordinary tokens for anything mixed in. */
function pushUnspaced(word: string, tokens: string[], stopWords: ReadonlySet<string>): void {
  for (const match of word.matchAll(UNSPACED_CHAR)) {
    const piece = match[0];
    if (UNSPACED_SCRIPT.test(piece)) tokens.push(piece);
    else pushWord(piece, tokens, stopWords);
  }
}

/** Cuts a token to `LIMITS.tokenCharsMax` code points: a base64 blob must not become a huge term. */
function capToken(token: string): string {
  if (token.length <= LIMITS.tokenCharsMax) return token;
  const points = Array.from(token);
  return points.length <= LIMITS.tokenCharsMax ? token : points.slice(0, LIMITS.tokenCharsMax).join('');
}

/**
 * Light, conservative English stemming of one lower-case word. Only plain ASCII words of four or
 * more letters are touched; anything else is returned as is. In order:
 * 1. plurals: `-sses` → `-ss`, `-ies` → `-y`, otherwise a final `-s` is dropped unless the word
 *    ends in `-ss`, `-us` or `-is` (`models` → `model`, `status`, `analysis` unchanged);
 * 2. one of: `-ing` or `-ed` dropped when two letters with a vowel remain (see undouble:
 *    `embedding` → `embed`, `used` → `use`; `-eed` and a few words like `embed` are kept whole),
 *    or `-ly` dropped only after typical adjective endings (`quickly` → `quick`, `apply` unchanged);
 * 3. a final `-e` is dropped when three letters remain, so that `cache`, `caches`, `cached` and
 *    `caching` all become `cach`.
 * It over-merges rarely (`hugging`/`hug`, `bias`/`bia`) and under-merges irregular forms (`ran`);
 * both are acceptable for ranking, where a missed merge costs recall and never correctness.
 */
export function stemWord(word: string): string {
  if (word.length < 4 || !/^[a-z]+$/.test(word)) return word;
  let stem = stemPlural(word);
  stem = stemSuffix(stem);
  if (stem.length > 3 && stem.endsWith('e')) stem = stem.slice(0, -1);
  return stem;
}

function stemPlural(word: string): string {
  if (word.endsWith('sses')) return word.slice(0, -2);
  if (word.endsWith('ies') && word.length > 4) return `${word.slice(0, -3)}y`;
  if (word.endsWith('ss') || word.endsWith('us') || word.endsWith('is')) return word;
  if (word.endsWith('s')) return word.slice(0, -1);
  return word;
}

function stemSuffix(word: string): string {
  if (word.endsWith('ing')) return undouble(word, word.slice(0, -3));
  if (word.endsWith('ed') && !word.endsWith('eed') && !NOT_PAST_TENSE.has(word)) return undouble(word, word.slice(0, -2));
  if (word.endsWith('ly') && word.length >= 6) {
    const stem = word.slice(0, -2);
    if (LY_STEM_ENDINGS.some((ending) => stem.endsWith(ending))) return stem;
  }
  return word;
}

/**
 * Accepts a suffix-stripped stem only if it is still a plausible word (two letters or more, one a
 * vowel: `string` and `sing` stay whole). A two-letter stem gets its `e` back (`used` → `use`, like
 * `uses` and `use`); a doubled final consonant is undoubled (`running` → `run`) except l, s and z,
 * which English doubles in the base word too (`install`, `pass`, `buzz`).
 */
function undouble(word: string, stem: string): string {
  if (stem.length < 2 || !/[aeiouy]/.test(stem)) return word;
  if (stem.length === 2) return `${stem}e`;
  return /([b-df-hj-kmnp-rtv-y])\1$/.test(stem) ? stem.slice(0, -1) : stem;
}
