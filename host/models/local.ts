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

/** A run of letters or digits, in any script. */
const WORD = /[\p{L}\p{N}]+/gu;

/**
 * Where one sentence ends: terminal punctuation (optionally closed by quotes or brackets) before
 * whitespace, a blank line, or a line break before a list item or heading (those lines are
 * sentences of their own even without a full stop).
 */
const SENTENCE_BOUNDARY = /(?<=[.!?…]["'’”)\]]*)\s+|\s*\n\s*\n\s*|\s*\n(?=[ \t]*(?:[#>*•-]|\d+[.)]\s))/u;

/** A candidate sentence with its place in the context and its match against the question. */
interface ScoredSentence {
  readonly text: string;
  readonly chunkIndex: number;
  readonly position: number;
  readonly overlap: number;
  readonly score: number;
}

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
 * order followed by ` [chunkId]`, the best chunk first; or {@link NO_ANSWER_SENTENCE}.
 * Deterministic: the same question and chunks always give the same string.
 * @throws never
 */
export function extractAnswer(question: string, chunks: readonly ContextChunk[]): string {
  const questionTerms = contentTerms(question);
  if (questionTerms.size === 0 || chunks.length === 0) return NO_ANSWER_SENTENCE;
  const overlapMin = Math.max(1, Math.ceil(questionTerms.size * QUESTION_SHARE_MIN));
  const candidates: ScoredSentence[] = [];
  chunks.forEach((chunk, chunkIndex) => {
    splitSentences(chunk.text).forEach((text, position) => {
      const scored = scoreSentence(text, questionTerms, chunkIndex, position);
      if (scored.overlap >= overlapMin) candidates.push(scored);
    });
  });
  const chosen = chooseSentences(candidates, chunks);
  return chosen.length === 0 ? NO_ANSWER_SENTENCE : composeAnswer(chosen, chunks);
}

/** Lower-cased, stemmed content words of `text` (stop words and one-letter words removed). */
function contentTerms(text: string): Set<string> {
  const terms = new Set<string>();
  for (const match of text.toLowerCase().matchAll(WORD)) {
    const term = contentTerm(match[0]);
    if (term !== undefined) terms.add(term);
  }
  return terms;
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

/** The sentences of a chunk, whitespace collapsed to single spaces, empty and letterless ones dropped. */
function splitSentences(text: string): string[] {
  const sentences: string[] = [];
  for (const piece of text.split(SENTENCE_BOUNDARY)) {
    const sentence = piece.replace(/\s+/g, ' ').trim();
    if (/[\p{L}\p{N}]/u.test(sentence)) sentences.push(sentence);
  }
  return sentences;
}

/**
 * Overlap = distinct question terms the sentence contains. The score adds a density bonus below 1
 * so that, at equal overlap, a focused sentence beats a long one that merely mentions the terms.
 */
function scoreSentence(text: string, questionTerms: ReadonlySet<string>, chunkIndex: number, position: number): ScoredSentence {
  const matched = new Set<string>();
  let termCount = 0;
  for (const match of text.toLowerCase().matchAll(WORD)) {
    const term = contentTerm(match[0]);
    if (term === undefined) continue;
    termCount += 1;
    if (questionTerms.has(term)) matched.add(term);
  }
  const overlap = matched.size;
  return { text, chunkIndex, position, overlap, score: overlap + overlap / (termCount + 1) };
}

/**
 * Picks up to three sentences, best first: no duplicates (overlapping chunks repeat sentences), and
 * never past the answer length limit. A sentence from the best sentence's chunk may join with two
 * thirds of the best overlap (it continues the same passage); one from another chunk needs the best overlap
 * itself, because a weaker match elsewhere is usually a stray word, not more of the answer.
 * Ties go to the earlier sentence in context order, which keeps it deterministic.
 */
function chooseSentences(candidates: ScoredSentence[], chunks: readonly ContextChunk[]): ScoredSentence[] {
  candidates.sort((a, b) => b.score - a.score || a.chunkIndex - b.chunkIndex || a.position - b.position);
  const best = candidates[0];
  if (best === undefined) return [];
  const sameChunkOverlapMin = Math.ceil((best.overlap * 2) / 3);
  const seen = new Set<string>();
  const chosen: ScoredSentence[] = [];
  let chars = 0;
  for (const candidate of candidates) {
    if (chosen.length === SENTENCES_PER_ANSWER_MAX || candidate.overlap < sameChunkOverlapMin) break;
    if (candidate.chunkIndex !== best.chunkIndex && candidate.overlap < best.overlap) continue;
    const key = candidate.text.toLowerCase();
    if (seen.has(key)) continue;
    // Budget the citation as if this sentence opened a new chunk group: an upper bound.
    const cost = candidate.text.length + 1 + citation(chunks, candidate.chunkIndex).length;
    if (chars + cost > LIMITS.answerCharsMax) continue;
    seen.add(key);
    chosen.push(candidate);
    chars += cost;
  }
  return chosen;
}

/** Groups the chosen sentences by chunk (best chunk first), in text order, each group cited once. */
function composeAnswer(chosen: readonly ScoredSentence[], chunks: readonly ContextChunk[]): string {
  const groups = new Map<number, ScoredSentence[]>();
  for (const sentence of chosen) {
    const group = groups.get(sentence.chunkIndex);
    if (group === undefined) groups.set(sentence.chunkIndex, [sentence]);
    else group.push(sentence);
  }
  const parts: string[] = [];
  for (const [chunkIndex, group] of groups) {
    group.sort((a, b) => a.position - b.position);
    parts.push(`${group.map((sentence) => sentence.text).join(' ')}${citation(chunks, chunkIndex)}`);
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
