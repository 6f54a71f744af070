/**
 * The default model: a deterministic extractive answerer that needs no download and no network.
 * It quotes the 1–3 sentences of the context chunks that share the most content words with the
 * question and cites their chunks. Because it only ever quotes `request.chunks`, it cannot say
 * anything the host did not resolve for this tenant, which makes it the reference model for the
 * isolation tests and the benchmarks (it is on their hot path, so it avoids allocation-heavy work).
 */
import { LIMITS } from '../limits.ts';
import type { ChatModel, ContextChunk, ModelRequest } from './model.ts';

/** The id of this model in cache namespaces; bump the version whenever answers can change. */
export const LOCAL_MODEL_ID = 'local:extractive-v1';

/** The one sentence the local model says when the chunks hold nothing that answers the question. */
export const NO_ANSWER_SENTENCE = 'The provided documents do not contain an answer to this question.';

/** At most this many sentences per answer: an extract, not a summary of the whole context. */
const SENTENCES_PER_ANSWER_MAX = 3;

/**
 * A sentence must share at least this fraction of the question's content words (and always at
 * least one) to count as an answer; below it, quoting would be a guess.
 */
const QUESTION_SHARE_MIN = 0.25;

/** Words that carry no topic; matching on them would make every sentence look relevant. */
const STOP_WORDS: ReadonlySet<string> = new Set(
  ('a about above after again all also am an and any are as at be because been before being below between both but by ' +
    'can could did do does doing done down during each either else ever few for from further get gets got had has have ' +
    'having he her here hers herself him himself his how i if in into is it its itself just let like may me might more ' +
    'most much must my myself no nor not now of off on once only or other our ours ourselves out over own please same ' +
    'shall she should so some such tell than that the their theirs them themselves then there these they this those ' +
    'through to too under until up upon us very was we were what when where whether which while who whom whose why ' +
    'will with would yes yet you your yours yourself yourselves')
    .split(' '),
);

/** A run of letters or digits, in any script. Cloned per call: a /g regex carries state. */
const WORD = /[\p{L}\p{N}]+/gu;

/**
 * Where one sentence ends: terminal punctuation (optionally closed by quotes or brackets) before
 * whitespace, a blank line, or a line break before a list item or heading (those lines are
 * sentences of their own even without a full stop). Group 1 is the punctuation the sentence keeps.
 * No lookbehind: it made the scan several times slower on the benchmark's hot path.
 */
const SENTENCE_END = /([.!?…]+["'’”)\]]*)(?=\s)|\n[ \t\r]*\n|\n(?=[ \t]*(?:[#>*•-]|\d+[.)]\s))/g;

/** A candidate sentence: where it sits in the context and how well it matches the question. */
interface ScoredSentence {
  readonly chunkIndex: number;
  /** Index among the chunk's sentences, for text order within a chunk. */
  readonly position: number;
  readonly start: number;
  readonly end: number;
  readonly overlap: number;
  readonly score: number;
}

/** A chosen sentence, cut out of its chunk with whitespace collapsed. */
interface Quote {
  readonly chunkIndex: number;
  readonly position: number;
  readonly text: string;
}

/** Maps a lower-cased word to its content term (or `undefined`); memoised per answer. */
type TermOf = (word: string) => string | undefined;

/**
 * Creates the local extractive model. It holds no state between requests.
 * @throws never; the streams it returns throw `request.signal.reason` when the request is aborted.
 */
export function createLocalModel(): ChatModel {
  return {
    id: LOCAL_MODEL_ID,
    // The answer depends only on the question and the chunks, so routing never changes the id.
    idFor: () => LOCAL_MODEL_ID,
    stream: (request: ModelRequest) => streamAnswer(request),
  };
}

/**
 * Builds the extractive answer: the best 1–3 sentences of `chunks`, each chunk's sentences in text
 * order followed by ` [chunkId]`, the best chunk first; or {@link NO_ANSWER_SENTENCE}. Sentences
 * are quoted verbatim except that runs of whitespace become one space and list markers are dropped.
 * Deterministic: the same question and chunks always give the same string.
 * @throws never
 */
export function extractAnswer(question: string, chunks: readonly ContextChunk[]): string {
  const termOf = createTermMemo();
  const questionTerms = new Map<string, number>();
  for (const match of question.toLowerCase().matchAll(WORD)) {
    const term = termOf(match[0]);
    if (term !== undefined && !questionTerms.has(term)) questionTerms.set(term, questionTerms.size);
  }
  if (questionTerms.size === 0 || chunks.length === 0) return NO_ANSWER_SENTENCE;
  const overlapMin = Math.max(1, Math.ceil(questionTerms.size * QUESTION_SHARE_MIN));
  const candidates: ScoredSentence[] = [];
  chunks.forEach((chunk, chunkIndex) => {
    for (const sentence of scoreChunk(chunk.text, chunkIndex, questionTerms, termOf)) {
      if (sentence.overlap >= overlapMin) candidates.push(sentence);
    }
  });
  const chosen = chooseSentences(candidates, chunks);
  return chosen.length === 0 ? NO_ANSWER_SENTENCE : composeAnswer(chosen, chunks);
}

/**
 * Memoises {@link contentTerm} for one answer: a context repeats its words many times, and the
 * stemmer's regexes dominated the profile. Per answer, never shared, so no tenant's words outlive
 * the ask.
 */
function createTermMemo(): TermOf {
  const memo = new Map<string, string | null>();
  return (word) => {
    let term = memo.get(word);
    if (term === undefined) {
      term = contentTerm(word) ?? null;
      memo.set(word, term);
    }
    return term ?? undefined;
  };
}

/** The stem of one lower-cased word, or `undefined` when the word carries no topic. */
function contentTerm(word: string): string | undefined {
  if (word.length < 2 || STOP_WORDS.has(word)) return undefined;
  return stem(word);
}

/**
 * Light suffix stripping so "refunds"/"refund", "shipped"/"shipping"/"ship" and "damaged"/"damage"
 * meet: plurals, then -ed/-ing (keeping a stem of at least four letters, undoubling "shipp"), then a
 * final -e. Deliberately weaker than Porter, which conflates words like "news" and "new".
 */
function stem(word: string): string {
  let base = word;
  if (base.length > 4 && base.endsWith('ies')) base = `${base.slice(0, -3)}y`;
  else if (base.length > 4 && /(?:ss|x|z|ch|sh)es$/.test(base)) base = base.slice(0, -2);
  else if (base.length > 3 && base.endsWith('s') && !/(?:ss|us|is)$/.test(base)) base = base.slice(0, -1);
  const verb = /^(.{4,}?)(?:ed|ing)$/.exec(base);
  if (verb?.[1] !== undefined) base = /([^aeiouylsz])\1$/.test(verb[1]) ? verb[1].slice(0, -1) : verb[1];
  if (base.length > 4 && base.endsWith('e')) base = base.slice(0, -1);
  return base;
}

/** The [start, end) spans of a text's sentences, in order (some may hold only whitespace). */
function sentenceSpans(text: string): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  const boundary = new RegExp(SENTENCE_END);
  let start = 0;
  for (let match = boundary.exec(text); match !== null; match = boundary.exec(text)) {
    const end = match.index + (match[1]?.length ?? 0);
    spans.push([start, end]);
    start = match.index + match[0].length;
  }
  spans.push([start, text.length]);
  return spans;
}

/**
 * Scores every sentence of one chunk in a single pass over its words. Overlap = distinct question
 * terms the sentence contains; the score adds a density bonus below 1 so that, at equal overlap, a
 * focused sentence beats a long one that merely mentions the terms.
 */
function scoreChunk(text: string, chunkIndex: number, questionTerms: ReadonlyMap<string, number>, termOf: TermOf): ScoredSentence[] {
  const lower = text.toLowerCase();
  // Lower-casing can lengthen a string (e.g. "İ"); then indexes would drift, so lower word by word.
  const aligned = lower.length === text.length;
  const source = aligned ? lower : text;
  const words = new RegExp(WORD);
  // stamp[i] = the sentence that last matched question term i: counts distinct terms without a Set.
  const stamp = new Int32Array(questionTerms.size).fill(-1);
  const scored: ScoredSentence[] = [];
  sentenceSpans(text).forEach(([start, end], position) => {
    let overlap = 0;
    let termCount = 0;
    words.lastIndex = start;
    for (let match = words.exec(source); match !== null && match.index < end; match = words.exec(source)) {
      const term = termOf(aligned ? match[0] : match[0].toLowerCase());
      if (term === undefined) continue;
      termCount += 1;
      const index = questionTerms.get(term);
      if (index !== undefined && stamp[index] !== position) {
        stamp[index] = position;
        overlap += 1;
      }
    }
    if (overlap > 0) scored.push({ chunkIndex, position, start, end, overlap, score: overlap + overlap / (termCount + 1) });
  });
  return scored;
}

/**
 * Picks up to three sentences, best first: no duplicates (overlapping chunks repeat sentences), and
 * never past the answer length limit. A sentence from the best sentence's chunk may join with two
 * thirds of the best overlap (it continues the same passage); one from another chunk needs the
 * best overlap itself, because a weaker match elsewhere is usually a stray word, not more of the
 * answer.
 * Ties go to the earlier sentence in context order, which keeps it deterministic.
 */
function chooseSentences(candidates: ScoredSentence[], chunks: readonly ContextChunk[]): Quote[] {
  candidates.sort((a, b) => b.score - a.score || a.chunkIndex - b.chunkIndex || a.position - b.position);
  // The best sentence that can actually be quoted sets the bar for the others.
  let best: ScoredSentence | undefined;
  let sameChunkOverlapMin = 0;
  const seen = new Set<string>();
  const chosen: Quote[] = [];
  let chars = 0;
  for (const candidate of candidates) {
    if (chosen.length === SENTENCES_PER_ANSWER_MAX || candidate.overlap < sameChunkOverlapMin) break;
    if (best !== undefined && candidate.chunkIndex !== best.chunkIndex && candidate.overlap < best.overlap) continue;
    // Only the few sentences that get this far are cut out and normalised.
    const text = quoteOf(chunks[candidate.chunkIndex]?.text ?? '', candidate.start, candidate.end);
    const key = text.toLowerCase();
    if (seen.has(key)) continue;
    // Budget the citation as if this sentence opened a new chunk group: an upper bound.
    const cost = text.length + 1 + citation(chunks, candidate.chunkIndex).length;
    if (chars + cost > LIMITS.answerCharsMax) continue;
    if (best === undefined) {
      best = candidate;
      sameChunkOverlapMin = Math.ceil((best.overlap * 2) / 3);
    }
    seen.add(key);
    chosen.push({ chunkIndex: candidate.chunkIndex, position: candidate.position, text });
    chars += cost;
  }
  return chosen;
}

/**
 * The sentence as quoted: whitespace runs collapsed, and a leading list or heading marker dropped
 * (it belongs to the document's layout, not to the sentence). Still a piece of the chunk's text.
 */
function quoteOf(text: string, start: number, end: number): string {
  return text
    .slice(start, end)
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^(?:[#>*•-]+|\d+[.)]) /, '');
}

/** Groups the chosen sentences by chunk (best chunk first), in text order, each group cited once. */
function composeAnswer(chosen: readonly Quote[], chunks: readonly ContextChunk[]): string {
  const groups = new Map<number, Quote[]>();
  for (const quote of chosen) {
    const group = groups.get(quote.chunkIndex);
    if (group === undefined) groups.set(quote.chunkIndex, [quote]);
    else group.push(quote);
  }
  const parts: string[] = [];
  for (const [chunkIndex, group] of groups) {
    group.sort((a, b) => a.position - b.position);
    parts.push(`${group.map((quote) => quote.text).join(' ')}${citation(chunks, chunkIndex)}`);
  }
  return parts.join(' ');
}

/** ` [chunkId]` for the chunk at `chunkIndex`. */
function citation(chunks: readonly ContextChunk[], chunkIndex: number): string {
  return ` [${chunks[chunkIndex]?.chunkId ?? ''}]`;
}

/**
 * Streams the answer one word at a time, each word with the whitespace after it, so the tokens join
 * to exactly the answer. The work starts on the first `next()` (not when `stream()` is called) and
 * the signal is checked before every token, so an abort stops it at once.
 */
async function* streamAnswer(request: ModelRequest): AsyncGenerator<string> {
  const { signal } = request;
  signal.throwIfAborted();
  const answer = extractAnswer(request.question, request.chunks);
  for (const match of answer.matchAll(/\S+\s*/g)) {
    signal.throwIfAborted();
    yield match[0];
  }
}
