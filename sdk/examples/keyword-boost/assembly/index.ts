/**
 * Example retrieval plugin: hybrid search fused by reciprocal rank (as the built-in does), then a
 * keyword boost. A chunk whose document *title*, or whose `keywords` metadata, names a word of the
 * question moves up: in support content a title such as "Battery care" is a stronger signal than
 * the same word repeated in body text, which BM25 rewards instead.
 *
 * Shows: two searches with SearchOptions, chunkGet for titles and metadata, lastError handling,
 * debug logging, and staying inside the per-call host-call budget (a bounded candidate list).
 */
import {
  Hit,
  RankedChunk,
  SearchOptions,
  chunkGet,
  indexSearch,
  lastError,
  logDebug,
  logWarn,
  readRetrieveInput,
  writeRetrieveOutput,
} from "@ctx-host/plugin-sdk";

/** Reciprocal rank fusion constant (Cormack et al., 2009). */
const RRF_K: f64 = 60;
/** One matched keyword is worth a first place in one list: boosts compete on the same scale. */
const BOOST_PER_MATCH: f64 = 1.0 / (RRF_K + 1.0);
/** Candidates looked up with chunkGet: the host allows 256 host calls per plugin call. */
const CANDIDATES_MAX: i32 = 64;
/** Words that say nothing about the topic. */
const STOP_WORDS = new Set<string>();
const STOP_LIST = ["the", "and", "for", "how", "what", "when", "where", "which", "who", "why", "does", "did",
  "can", "could", "should", "would", "will", "with", "your", "you", "are", "was", "were", "this", "that",
  "there", "from", "about", "into", "much", "many", "long", "have", "has", "its", "our", "any"];
for (let i = 0; i < STOP_LIST.length; i++) STOP_WORDS.add(STOP_LIST[i]);

class Candidate {
  constructor(public chunkId: string, public score: f64, public order: i32) {}
}

/** A crude English stem, enough to match "batteries" with "battery" and "charges" with "charge". */
function stem(word: string): string {
  if (word.length > 4 && word.endsWith("ies")) return word.substring(0, word.length - 3) + "y";
  if (word.length > 3 && word.endsWith("s") && !word.endsWith("ss")) return word.substring(0, word.length - 1);
  return word;
}

/** Lower-case ASCII words of three letters or more, stop words dropped, stemmed. */
function keywords(text: string): Set<string> {
  const lower = text.toLowerCase();
  const out = new Set<string>();
  let start = -1;
  for (let i = 0; i <= lower.length; i++) {
    const c = i < lower.length ? lower.charCodeAt(i) : 32;
    const alnum = (c >= 97 && c <= 122) || (c >= 48 && c <= 57);
    if (alnum) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      const word = lower.substring(start, i);
      if (word.length >= 3 && !STOP_WORDS.has(word)) out.add(stem(word));
      start = -1;
    }
  }
  return out;
}

function search(query: string, k: u32, options: SearchOptions, what: string): Hit[] {
  const hits = indexSearch(query, k, options);
  if (hits) return hits;
  logWarn(what + " search failed: " + lastError()!.message);
  return [];
}

function fuse(hits: Hit[], byId: Map<string, Candidate>, candidates: Candidate[]): void {
  for (let rank = 0; rank < hits.length; rank++) {
    const id = hits[rank].chunkId;
    const contribution = 1.0 / (RRF_K + <f64>(rank + 1));
    if (byId.has(id)) byId.get(id).score += contribution;
    else {
      const candidate = new Candidate(id, contribution, candidates.length);
      byId.set(id, candidate);
      candidates.push(candidate);
    }
  }
}

/** How many question keywords the chunk's title or `keywords` metadata names. */
function matches(chunkId: string, question: Set<string>): i32 {
  const chunk = chunkGet(chunkId);
  if (chunk == null) return 0;
  const named = keywords(chunk.title);
  if (chunk.metadata.has("keywords")) {
    const tagged = keywords(chunk.metadata.get("keywords"));
    const tags = tagged.values();
    for (let i = 0; i < tags.length; i++) named.add(tags[i]);
  }
  let count = 0;
  const words = question.values();
  for (let i = 0; i < words.length; i++) if (named.has(words[i])) count++;
  return count;
}

function byScore(a: Candidate, b: Candidate): i32 {
  if (a.score != b.score) return a.score > b.score ? -1 : 1;
  return a.order - b.order;
}

/** The `retrieve` export. */
export function retrieve(): i32 {
  const input = readRetrieveInput();
  const perIndex = min(input.k * 2, 100);
  const byId = new Map<string, Candidate>();
  const candidates = new Array<Candidate>(0);
  fuse(search(input.query, perIndex, SearchOptions.vectorOnly(), "vector"), byId, candidates);
  fuse(search(input.query, perIndex, SearchOptions.lexicalOnly(), "lexical"), byId, candidates);
  candidates.sort(byScore);
  const question = keywords(input.query);
  const boosted = min(candidates.length, CANDIDATES_MAX);
  for (let i = 0; i < boosted; i++) {
    const found = matches(candidates[i].chunkId, question);
    if (found > 0) logDebug("boost " + candidates[i].chunkId + " x" + found.toString());
    candidates[i].score += BOOST_PER_MATCH * <f64>found;
  }
  candidates.sort(byScore);
  const ranked = new Array<RankedChunk>(0);
  for (let i = 0; i < min(<i32>input.k, candidates.length); i++) ranked.push(new RankedChunk(candidates[i].chunkId, <f32>candidates[i].score));
  writeRetrieveOutput(ranked);
  return 0;
}
