/**
 * A retrieval plugin for ctx-host, made by `ctx-plugin init`.
 *
 * The host calls `retrieve` once per question. It reads the question and how many chunks the
 * tenant wants (k), searches the tenant's index through the SDK, and returns chunk ids ranked
 * best first. The host then resolves those ids itself: a plugin can only point at this tenant's
 * chunks, never hand the model text of its own.
 *
 * This one is deliberately small: keyword (BM25) search first, because exact terms such as
 * product names matter in support questions, then semantic (vector) hits to fill the rest.
 * Change how candidates are found, scored or filtered; `ctx-plugin test` shows the effect.
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
} from "@ctx-host/plugin-sdk";

/** Runs one search; a failed search logs why and counts as no hits, so the other one still helps. */
function search(query: string, k: u32, options: SearchOptions): Hit[] {
  const hits = indexSearch(query, k, options);
  if (hits == null) {
    logWarn("search failed: " + lastError()!.message);
    return [];
  }
  return hits;
}

/** Appends hits not ranked yet until `k` chunks are ranked. */
function take(hits: Hit[], k: i32, ranked: RankedChunk[], seen: Set<string>): void {
  for (let i = 0; i < hits.length && ranked.length < k; i++) {
    const hit = hits[i];
    if (seen.has(hit.chunkId)) continue;
    seen.add(hit.chunkId);
    ranked.push(new RankedChunk(hit.chunkId, hit.score));
  }
}

/** The `retrieve` export: the host calls it by this name. */
export function retrieve(): i32 {
  const input = readRetrieveInput();
  const k = <i32>input.k;
  const ranked = new Array<RankedChunk>(0);
  const seen = new Set<string>();
  take(search(input.query, input.k, SearchOptions.lexicalOnly()), k, ranked, seen);
  take(search(input.query, input.k, SearchOptions.vectorOnly()), k, ranked, seen);
  writeRetrieveOutput(ranked);
  return 0;
}
