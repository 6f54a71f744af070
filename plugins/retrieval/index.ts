/**
 * The built-in retrieval plugin: hybrid search fused by reciprocal rank fusion (RRF).
 *
 * It asks the vector index and the lexical index separately (each for 2k hits, capped at the
 * host's per-search maximum), then scores every chunk by the sum over both lists of
 * 1 / (RRF_K + rank), de-duplicating by chunk id, and returns the top k. RRF needs no score
 * calibration between BM25 and cosine similarity, which is why it is the default.
 */
import {
  Hit,
  RankedChunk,
  SearchOptions,
  indexSearch,
  lastError,
  logWarn,
  readRetrieveInput,
  writeRetrieveOutput,
} from "../../sdk/as/index";

/** The RRF constant from Cormack et al. (2009); damps the weight of the very first ranks. */
const RRF_K: f64 = 60;
/** Mirrors the host's LIMITS.searchHitsMax: asking for more would be refused. */
const SEARCH_HITS_MAX: u32 = 100;

/** A chunk seen in at least one list, with its fused score and first-seen order (tie-break). */
class Candidate {
  constructor(public chunkId: string, public score: f64, public order: i32) {}
}

/** Adds one ranked list to the fused scores; a chunk listed twice in one list counts once. */
function fuse(hits: Hit[], byId: Map<string, Candidate>, candidates: Candidate[]): void {
  const seenInList = new Set<string>();
  for (let rank = 0; rank < hits.length; rank++) {
    const chunkId = hits[rank].chunkId;
    if (seenInList.has(chunkId)) continue;
    seenInList.add(chunkId);
    const contribution = 1.0 / (RRF_K + <f64>(rank + 1));
    if (byId.has(chunkId)) {
      byId.get(chunkId).score += contribution;
    } else {
      const candidate = new Candidate(chunkId, contribution, candidates.length);
      byId.set(chunkId, candidate);
      candidates.push(candidate);
    }
  }
}

/** Runs one search; a failed search degrades to the other index rather than failing the ask. */
function search(query: string, k: u32, options: SearchOptions, what: string): Hit[] {
  const hits = indexSearch(query, k, options);
  if (hits) return hits;
  const error = lastError();
  logWarn(what + " search failed: " + (error ? error.message : "unknown error"));
  return [];
}

/** The `retrieve` export. */
export function retrieve(): i32 {
  const input = readRetrieveInput();
  if (input.k == 0) {
    writeRetrieveOutput([]);
    return 0;
  }
  const perIndex = min(input.k * 2, SEARCH_HITS_MAX);
  const byId = new Map<string, Candidate>();
  const candidates = new Array<Candidate>(0);
  fuse(search(input.query, perIndex, SearchOptions.vectorOnly(), "vector"), byId, candidates);
  fuse(search(input.query, perIndex, SearchOptions.lexicalOnly(), "lexical"), byId, candidates);
  candidates.sort((a: Candidate, b: Candidate): i32 => {
    if (a.score != b.score) return a.score > b.score ? -1 : 1;
    return a.order - b.order;
  });
  const count = min(<i32>input.k, candidates.length);
  const ranked = new Array<RankedChunk>(0);
  for (let i = 0; i < count; i++) {
    ranked.push(new RankedChunk(candidates[i].chunkId, <f32>candidates[i].score));
  }
  writeRetrieveOutput(ranked);
  return 0;
}
