/**
 * The semantic cache's verifier: before a similarity-path hit is served, the cached question and the
 * asked one must agree on every detail a cosine over their embeddings glosses over. A lexical (or
 * even a neural) embedding scores "first day at CMS Energy" and "first day at Peabody Energy", or
 * "CFA level I" and "CFA level 3", as near-identical, though their answers differ. The verifier
 * vetoes the hit when the two questions differ in
 * - numbers: digits ("3", "1,000", "50k", "2.10.0", "3rd"), written numbers ("three", "twenty-one",
 *   "third") and roman numerals ("III"; a single "I", "V", "X" only after a word like "level" or
 *   "part"), compared by value and occurrence, so "level 3", "level III" and "third level" agree;
 * - negation: how many negations each holds ("not", "n't", "never", "no", "without", ...);
 * - direction: two words of one opposed pair ("faster"/"slower", "upload"/"download",
 *   "before"/"after", "how"/"why"), one in each question;
 * - names and rare terms: a word that is capitalised where a sentence does not start (or starts a
 *   sentence and is not a common word), written in capitals or mixed case ("CMS", "PyTorch"), mixes
 *   letters and digits ("T5", "s3fs"), is an identifier ("with_format"), or is not a common English
 *   word ("peabody", "airbnb": host/cache/common-words.txt) — each such word of either question must
 *   appear in the other, as often;
 * - a swap: the same content words in the same order but one, swapped for another in place.
 * It fails closed: a difference it cannot classify as harmless is a veto, and an entry whose
 * question text is unknown (written before questions were stored) is never served by similarity.
 * Everyday rewording (common words reworded, word order, stop words, punctuation, case) passes,
 * which is what a paraphrase that the embedding scores highly mostly consists of; a lone synonym
 * swapped in place does not (it has the shape of a swap).
 *
 * Nothing here reads anything but the two questions and a fixed word list: no statistics of this or
 * any other tenant, so the verdict cannot depend on another tenant's data.
 */
import { readFileSync } from 'node:fs';
import { stemWord } from '../retrieval/tokenize.ts';

/** What the verifier needs of one question; computed once per question (~µs) and kept with the entry. */
export interface QuestionSignature {
  /** Canonical numeric values, sorted, joined by spaces (a value mentioned twice counts twice). */
  readonly numbers: string;
  /** How many negations the question contains. */
  readonly negations: number;
  /** Per opposed pair present, which of its sides occur (bit 1: first side, bit 2: second). */
  readonly poles: ReadonlyMap<number, number>;
  /** The content words' stems in order. */
  readonly sequence: readonly string[];
  /** How often each content word's stem occurs. */
  readonly counts: ReadonlyMap<string, number>;
  /** Every content word as stem and lower-case form, and names joined with a neighbour: what "appears in" matches. */
  readonly present: ReadonlySet<string>;
  /**
   * The names and rare terms, once per stem, with the forms that count as its appearing in the
   * other question: stem, lower-case form, joined with a neighbouring word ("Hugging Face" and
   * "HuggingFace").
   */
  readonly critical: readonly CriticalTerm[];
}

/** A name or rare term of a question. */
export interface CriticalTerm {
  readonly stem: string;
  readonly forms: readonly string[];
}

/** Why a hit was vetoed. */
export type VetoReason = 'number' | 'negation' | 'direction' | 'name' | 'swap';

/**
 * The reason the answer cached for `cached` must not answer `asked`, or undefined when they agree on
 * every checked detail. Symmetric.
 */
export function vetoReason(cached: QuestionSignature, asked: QuestionSignature): VetoReason | undefined {
  if (cached.numbers !== asked.numbers) return 'number';
  if (cached.negations !== asked.negations) return 'negation';
  for (const [pair, sides] of cached.poles) {
    const other = asked.poles.get(pair);
    if (other !== undefined && other !== sides) return 'direction';
  }
  if (!namesAppear(cached, asked) || !namesAppear(asked, cached)) return 'name';
  if (swappedInPlace(cached.sequence, asked.sequence)) return 'swap';
  return undefined;
}

/**
 * The two questions say the same content words in the same order but for one, swapped for another
 * in place ("easily train and use" and "easily test and use"; "Audio files are decoded" and "Image
 * files are decoded"). That is the shape of a question about a different thing; were the two
 * words synonyms ("cost" for "price"), nothing here could tell, so the hit is refused.
 */
function swappedInPlace(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && ++differ > 1) return false;
  return differ === 1;
}

/**
 * Every name or rare term of `one` appears in `other` as often (by stem), or, when its stem does not
 * occur there at all, joined with a neighbour. Counting catches a name swapped for another while the
 * first is still mentioned elsewhere ("Audio file … Audio feature" and "audio file … video feature").
 */
function namesAppear(one: QuestionSignature, other: QuestionSignature): boolean {
  for (const term of one.critical) {
    const count = other.counts.get(term.stem) ?? 0;
    if (count > 0 ? count !== one.counts.get(term.stem) : !term.forms.some((form) => other.present.has(form))) return false;
  }
  return true;
}

/** Words that carry a question's form rather than its topic: rewording them changes nothing. */
const FUNCTION_WORDS: ReadonlySet<string> = new Set([
  'a', 'an', 'the', 'and', 'or', 'but', 'if', 'then', 'so', 'than', 'as', 'of', 'to', 'in', 'on', 'at',
  'by', 'for', 'with', 'from', 'into', 'onto', 'about', 'up', 'out', 'off', 'via', 'per',
  'is', 'are', 'was', 'were', 'be', 'been', 'being', 'am', 'do', 'does', 'did', 'done', 'doing',
  'has', 'have', 'had', 'having', 'will', 'would', 'shall', 'should', 'can', 'could', 'may', 'might',
  'must', 'it', 'its', 'this', 'that', 'these', 'those', 'there', 'here', 'i', 'me', 'my', 'mine',
  'you', 'your', 'yours', 'he', 'him', 'his', 'she', 'her', 'hers', 'we', 'us', 'our', 'ours',
  'they', 'them', 'their', 'theirs', 'itself', 'also', 'just', 'very', 'too', 'such', 'some', 'any',
  'each', 'other', 'own', 'same', 'both', 'all', 'only', 'again', 'further', 'whether', 'yes',
  'please', 'explain', 'describe', 'tell', 'give', 'list', 'show', 'define', 'let', 'lets',
]);

/** Negation cues (a word ending in n't counts too). */
const NEGATIONS: ReadonlySet<string> = new Set(['not', 'no', 'never', 'none', 'nobody', 'nothing', 'nowhere', 'neither', 'nor', 'cannot', 'without']);

/**
 * Opposed pairs: a question with a word of one side and another with a word of the other side ask
 * different things. Words are matched by stem, so inflections of the listed forms match too. The
 * question words are one "pair" of many sides: "how" and "why" ask different questions.
 */
const OPPOSED: readonly (readonly string[])[][] = [
  [['more', 'greater'], ['less', 'fewer']],
  [['most'], ['least', 'fewest']],
  [['better', 'best', 'good'], ['worse', 'worst', 'bad']],
  [['high', 'higher', 'highest'], ['low', 'lower', 'lowest']],
  [['large', 'larger', 'largest', 'big', 'bigger', 'biggest', 'huge'], ['small', 'smaller', 'smallest', 'tiny']],
  [['fast', 'faster', 'fastest', 'quick', 'quicker', 'quickest'], ['slow', 'slower', 'slowest']],
  [['long', 'longer', 'longest'], ['short', 'shorter', 'shortest']],
  [['cheap', 'cheaper', 'cheapest', 'inexpensive'], ['expensive', 'costly', 'pricey', 'pricier']],
  [['increase', 'raise', 'grow', 'expand'], ['decrease', 'reduce', 'shrink', 'cut']],
  [['before', 'prior'], ['after']],
  [['max', 'maximum', 'maximal', 'maximize'], ['min', 'minimum', 'minimal', 'minimize']],
  [['early', 'earlier', 'earliest'], ['late', 'later', 'latest']],
  [['easy', 'easier', 'easiest', 'simple', 'simpler'], ['hard', 'harder', 'hardest', 'difficult']],
  [['old', 'older', 'oldest'], ['new', 'newer', 'newest']],
  [['above', 'over'], ['below', 'under']],
  [['enable', 'activate'], ['disable', 'deactivate']],
  [['upload'], ['download']],
  [['import'], ['export']],
  [['encode', 'encoder'], ['decode', 'decoder']],
  [['encrypt'], ['decrypt']],
  [['compress'], ['decompress']],
  [['input'], ['output']],
  [['add', 'insert', 'create'], ['remove', 'delete', 'drop']],
  [['start', 'begin'], ['stop', 'end', 'finish']],
  [['open'], ['close']],
  [['buy', 'purchase'], ['sell']],
  [['include'], ['exclude']],
  [['true'], ['false']],
  [['positive'], ['negative']],
  [['accept'], ['reject']],
  [['push'], ['pull']],
  [['allow', 'permit'], ['forbid', 'prevent', 'block', 'deny']],
  [['public'], ['private']],
  [['online'], ['offline']],
  [['local'], ['remote']],
  [['internal'], ['external']],
  [['inside'], ['outside']],
  [['win'], ['lose']],
  [['sync', 'synchronous'], ['async', 'asynchronous']],
  [['train', 'training'], ['inference']],
  [['how'], ['why'], ['what', 'which'], ['when'], ['where'], ['who', 'whom', 'whose']],
];

/** Word and its stem → (pair index, side bit). */
const POLES: ReadonlyMap<string, readonly [number, number]> = new Map(
  OPPOSED.flatMap((sides, pair) =>
    sides.flatMap((words, side) => words.flatMap((word) => [word, stemWord(word)].map((form) => [form, [pair, 1 << side]] as [string, readonly [number, number]]))),
  ),
);

const UNITS: ReadonlyMap<string, number> = new Map([
  ['zero', 0], ['one', 1], ['two', 2], ['three', 3], ['four', 4], ['five', 5], ['six', 6], ['seven', 7], ['eight', 8], ['nine', 9],
  ['ten', 10], ['eleven', 11], ['twelve', 12], ['thirteen', 13], ['fourteen', 14], ['fifteen', 15], ['sixteen', 16],
  ['seventeen', 17], ['eighteen', 18], ['nineteen', 19], ['twenty', 20], ['thirty', 30], ['forty', 40], ['fifty', 50],
  ['sixty', 60], ['seventy', 70], ['eighty', 80], ['ninety', 90], ['dozen', 12], ['twice', 2], ['thrice', 3], ['half', 0.5],
]);
const ORDINALS: ReadonlyMap<string, number> = new Map([
  ['first', 1], ['second', 2], ['third', 3], ['fourth', 4], ['fifth', 5], ['sixth', 6], ['seventh', 7], ['eighth', 8], ['ninth', 9],
  ['tenth', 10], ['eleventh', 11], ['twelfth', 12], ['thirteenth', 13], ['fourteenth', 14], ['fifteenth', 15], ['sixteenth', 16],
  ['seventeenth', 17], ['eighteenth', 18], ['nineteenth', 19], ['twentieth', 20], ['thirtieth', 30], ['fortieth', 40],
  ['fiftieth', 50], ['sixtieth', 60], ['seventieth', 70], ['eightieth', 80], ['ninetieth', 90], ['hundredth', 100],
  ['thousandth', 1000], ['millionth', 1e6], ['last', -1],
]);
const SCALES: ReadonlyMap<string, number> = new Map([['hundred', 100], ['thousand', 1e3], ['million', 1e6], ['billion', 1e9], ['trillion', 1e12]]);
/** Every word that may start a written number. */
const NUMBER_WORDS: ReadonlySet<string> = new Set([...UNITS.keys(), ...ORDINALS.keys(), ...SCALES.keys()]);
const SUFFIX_SCALES: ReadonlyMap<string, number> = new Map([['k', 1e3], ['m', 1e6], ['b', 1e9]]);

/** Words after which a lone roman numeral or letter numbers something ("level I", "part V", "Henry VIII"). */
const NUMBERED_BY: ReadonlySet<string> = new Set([
  'level', 'part', 'chapter', 'grade', 'class', 'phase', 'stage', 'tier', 'type', 'war', 'season', 'book', 'volume', 'vol',
  'act', 'step', 'round', 'section', 'article', 'title', 'division', 'league', 'category', 'schedule', 'appendix', 'unit',
  'module', 'lesson', 'paper', 'episode', 'series', 'generation', 'gen', 'mark', 'mk', 'version', 'release', 'rank',
  'henry', 'louis', 'edward', 'george', 'elizabeth', 'charles', 'richard', 'william', 'james', 'pope', 'pius', 'john', 'paul',
]);
/** "one" is a pronoun rather than a count after these ("which one", "the one") and in "one of", "one another". */
const ONE_AS_PRONOUN_AFTER: ReadonlySet<string> = new Set(['which', 'the', 'this', 'that', 'each', 'every', 'any', 'no', 'a', 'an', 'some', 'another', 'only']);

const ROMAN_LETTERS = /^[ivxlcdm]+$/;
/** Character codes of i, v, x, l, c, d, m: a cheap test before the pattern. */
const ROMAN_FIRST: ReadonlySet<number> = new Set([...'ivxlcdm'].map((letter) => letter.charCodeAt(0)));
const ROMAN = /^(?=[MDCLXVI])M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})$/;
const ROMAN_VALUES: Readonly<Record<string, number>> = { I: 1, V: 5, X: 10, L: 50, C: 100, D: 500, M: 1000 };

/** A word: letters and digits, joined by apostrophes, underscores, dots inside it, or thousands commas. */
const WORD = /[\p{L}\p{N}][\p{L}\p{N}\p{M}]*(?:(?:['’_]|\.(?=[\p{L}\p{N}])|(?<=\d),(?=\d{3}(?!\d)))[\p{L}\p{N}][\p{L}\p{N}\p{M}]*)*/gu;
const HAS_DIGIT = /\p{N}/u;
const HAS_LETTER = /\p{L}/u;
const HAS_UPPER = /\p{Lu}/u;
const INNER_UPPER = /.\p{Lu}/su;

/**
 * The common-word list (host/cache/common-words.txt, made by scripts/make-common-words.ts), read
 * when the module loads (about 10 ms, at start) rather than on the first similar question, where
 * it would stall every session of the host.
 */
const COMMON_WORDS: ReadonlySet<string> = new Set(
  readFileSync(new URL('./common-words.txt', import.meta.url), 'utf8').split('\n').filter((line) => line.length > 0 && !line.startsWith('#')),
);

/** One word of a question. */
interface Word {
  /** As written (NFKC). */
  surface: string;
  /** Lower case, apostrophe forms folded, contraction and possessive removed. */
  base: string;
  negated: boolean;
  sentenceStart: boolean;
}

/** Splits a question into words, noting which start a sentence and which carried n't. */
function wordsOf(text: string): Word[] {
  const folded = text.normalize('NFKC');
  const words: Word[] = [];
  let end = 0;
  WORD.lastIndex = 0;
  for (let match = WORD.exec(folded); match !== null; match = WORD.exec(folded)) {
    const surface = match[0];
    const sentenceStart = words.length === 0 || endsSentence(folded, end, match.index);
    end = match.index + surface.length;
    let base = surface.toLowerCase();
    let negated = false;
    const apostrophe = apostropheIn(base);
    if (apostrophe >= 0) {
      base = base.replaceAll('’', "'");
      if (base.endsWith("n't")) {
        negated = true;
        base = base.slice(0, -3);
        base = base === 'ca' ? 'can' : base === 'wo' ? 'will' : base === 'sha' ? 'shall' : base;
      } else {
        base = base.slice(0, apostrophe);
      }
    }
    if (base.length > 0 || negated) words.push({ surface, base, negated, sentenceStart });
  }
  return words;
}

/** Whether the text between two words holds punctuation that ends a sentence (or a line break). */
function endsSentence(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const code = text.charCodeAt(i);
    // . ! ? : ; and line feed
    if (code === 46 || code === 33 || code === 63 || code === 58 || code === 59 || code === 10) return true;
  }
  return false;
}

function apostropheIn(word: string): number {
  const straight = word.indexOf("'");
  return straight >= 0 ? straight : word.indexOf('’');
}

/** The canonical value of a digit token ("1,000" → "1000", "2.10.0" stays, "3rd" → "3", "50k" → "50000"), or undefined. */
function digitValue(base: string): string | undefined {
  let match = /^v?(\d+(?:,\d{3})*(?:\.\d+)*)$/.exec(base);
  if (match !== null) {
    const digits = (match[1] as string).replaceAll(',', '');
    const parts = digits.split('.');
    if (parts.length > 2) return parts.map((part) => String(Number(part))).join('.');
    return String(Number(digits));
  }
  match = /^(\d+)(?:st|nd|rd|th)$/.exec(base);
  if (match !== null) return String(Number(match[1]));
  match = /^(\d+(?:\.\d+)?)([kmb])$/.exec(base);
  if (match !== null) return String(Number(match[1]) * (SUFFIX_SCALES.get(match[2] as string) as number));
  return undefined;
}

function romanValue(text: string): number {
  let total = 0;
  for (let i = 0; i < text.length; i++) {
    const value = ROMAN_VALUES[text[i] as string] as number;
    const next = ROMAN_VALUES[text[i + 1] ?? ''] ?? 0;
    total += value < next ? -value : value;
  }
  return total;
}

/**
 * The value of a roman numeral at `i`, or undefined. Two or more capitals are read as a numeral
 * anywhere ("World War II"); a single letter, or a lower-case numeral, only after a word that
 * numbers things ("level I", "part v"): elsewhere "I" is the pronoun.
 */
function romanAt(words: readonly Word[], i: number): number | undefined {
  const word = words[i] as Word;
  const upper = word.surface.toUpperCase();
  if (!ROMAN.test(upper)) return undefined;
  const afterNumbering = i > 0 && NUMBERED_BY.has((words[i - 1] as Word).base);
  if (afterNumbering) return romanValue(upper);
  return word.surface.length >= 2 && word.surface === upper && /^[IVX]+$/.test(upper) ? romanValue(upper) : undefined;
}

/**
 * Reads a written number starting at `i` ("twenty one", "two thousand five hundred", "third"),
 * returning its value and how many words it took, or undefined.
 */
function writtenNumberAt(words: readonly Word[], i: number): { value: number; length: number } | undefined {
  let total = 0;
  let current = 0;
  let length = 0;
  let seen = false;
  for (let j = i; j < words.length; j++) {
    const base = (words[j] as Word).base;
    if (base === 'and' && seen && j + 1 < words.length && (UNITS.has((words[j + 1] as Word).base) || ORDINALS.has((words[j + 1] as Word).base))) {
      length++;
      continue;
    }
    const unit = UNITS.get(base);
    const ordinal = ORDINALS.get(base);
    const scale = SCALES.get(base);
    if (unit !== undefined) {
      if (base === 'one' && !seen && isPronounOne(words, j)) return undefined;
      current += unit;
    } else if (ordinal !== undefined) {
      if (ordinal < 0) return seen ? undefined : { value: ordinal, length: 1 };
      current = ordinal >= 100 && seen ? Math.max(current, 1) * ordinal : current + ordinal;
      return { value: total + current, length: length + 1 };
    } else if (scale !== undefined && (seen || scale === 100 || scale === 1e3)) {
      const multiplied = Math.max(current, 1) * scale;
      if (scale >= 1e3) {
        total += multiplied;
        current = 0;
      } else {
        current = multiplied;
      }
    } else {
      break;
    }
    seen = true;
    length++;
  }
  return seen ? { value: total + current, length } : undefined;
}

function isPronounOne(words: readonly Word[], i: number): boolean {
  const before = i > 0 ? (words[i - 1] as Word).base : '';
  const after = (words[i + 1] as Word | undefined)?.base ?? '';
  return ONE_AS_PRONOUN_AFTER.has(before) || after === 'of' || after === 'another';
}

/** Whether a content word is a name or a rare term: it must then appear in the other question. */
function isCritical(word: Word): boolean {
  const { surface, base } = word;
  let letters = 0;
  let digits = 0;
  let capitals = 0;
  let innerCapital = false;
  // One pass over the characters for plain ASCII words; anything else takes the Unicode-aware path.
  for (let i = 0; i < surface.length; i++) {
    const code = surface.charCodeAt(i);
    if (code >= 65 && code <= 90) {
      letters++;
      capitals++;
      if (i > 0) innerCapital = true;
    } else if (code >= 97 && code <= 122) {
      letters++;
    } else if (code >= 48 && code <= 57) {
      digits++;
    } else if (code === 95 || code === 46) {
      return true;
    } else if (code > 127) {
      return isCriticalUnicode(word);
    }
  }
  if (digits > 0 && letters > 0) return true;
  // A capital where no sentence starts, all capitals or inner capitals ("CMS", "PyTorch") mark a name;
  // a capitalised first word of a sentence is judged like a lower-case word.
  if (capitals > 0 && (!word.sentenceStart || innerCapital)) return true;
  return !COMMON_WORDS.has(base);
}

/** {@link isCritical} for words with characters beyond ASCII. */
function isCriticalUnicode(word: Word): boolean {
  const { surface, base } = word;
  if (/[._]/.test(base) || (HAS_DIGIT.test(base) && HAS_LETTER.test(base))) return true;
  if (HAS_UPPER.test(surface) && (!word.sentenceStart || INNER_UPPER.test(surface))) return true;
  return !COMMON_WORDS.has(base);
}

/**
 * The verifier's view of one question. Linear in its length; callers bound that length
 * (`LIMITS.askTextCharsMax`).
 */
export function questionSignature(text: string): QuestionSignature {
  const words = wordsOf(text);
  const numbers: string[] = [];
  const poles = new Map<number, number>();
  const sequence: string[] = [];
  const counts = new Map<string, number>();
  const present = new Set<string>();
  const critical = new Map<string, string[]>();
  let negations = 0;
  /** The content word before this one, unless a number or a negation came between; and its forms if it is critical. */
  let previous: Word | undefined;
  let previousForms: string[] | undefined;
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as Word;
    if (word.negated) negations++;
    const { base } = word;
    if (base.length === 0) continue;
    const number = numberAt(words, i);
    if (number !== undefined) {
      numbers.push(number.value);
      i += number.length - 1;
      previous = undefined;
      continue;
    }
    if (NEGATIONS.has(base)) {
      negations++;
      previous = undefined;
      continue;
    }
    if (FUNCTION_WORDS.has(base)) continue;
    const stem = stemWord(base);
    const pole = POLES.get(base) ?? POLES.get(stem);
    if (pole !== undefined) poles.set(pole[0], (poles.get(pole[0]) ?? 0) | pole[1]);
    sequence.push(stem);
    counts.set(stem, (counts.get(stem) ?? 0) + 1);
    present.add(stem);
    if (base !== stem) present.add(base);
    let forms: string[] | undefined;
    if (isCritical(word)) {
      forms = critical.get(stem);
      if (forms === undefined) critical.set(stem, (forms = [stem]));
      if (!forms.includes(base)) forms.push(base);
    }
    // "Hugging Face" and "HuggingFace" are the same name: a name also appears joined with a neighbour.
    if (previous !== undefined && (forms !== undefined || previousForms !== undefined)) {
      const joined = previous.base + base;
      present.add(joined);
      forms?.push(joined);
      previousForms?.push(joined);
    }
    previous = word;
    previousForms = forms;
  }
  return {
    numbers: numbers.length === 0 ? '' : numbers.sort().join(' '),
    negations,
    poles,
    sequence,
    counts,
    present,
    critical: [...critical].map(([stem, forms]) => ({ stem, forms })),
  };
}

/** The number starting at word `i` (digits with an optional scale word, a roman numeral, written words), or undefined. */
function numberAt(words: readonly Word[], i: number): { value: string; length: number } | undefined {
  const { base } = words[i] as Word;
  const first = base.charCodeAt(0);
  if ((first >= 48 && first <= 57) || (first === 118 && base.length > 1)) {
    const digits = digitValue(base);
    if (digits !== undefined) {
      // "50 thousand", "2 million": a scale word after digits multiplies them.
      const scale = SCALES.get((words[i + 1] as Word | undefined)?.base ?? '');
      if (scale === undefined || digits.includes('.')) return { value: digits, length: 1 };
      return { value: String(Number(digits) * scale), length: 2 };
    }
  }
  if (base.length <= 9 && ROMAN_FIRST.has(first) && ROMAN_LETTERS.test(base)) {
    const roman = romanAt(words, i);
    if (roman !== undefined) return { value: String(roman), length: 1 };
  }
  if (NUMBER_WORDS.has(base)) {
    const written = writtenNumberAt(words, i);
    if (written !== undefined) return { value: String(written.value), length: written.length };
  }
  return undefined;
}
