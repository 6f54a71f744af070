/**
 * What a plugin instance may do to the world: the host functions of ABI `ctx:host/v1`, expressed as
 * plain TypeScript. A session builds one `PluginCapabilities` object as closures over its
 * TenantScope (see pipeline/), so the ABI itself has no tenant parameter at all: a plugin can only
 * ever reach the tenant whose session created it.
 */

/** Which index a search runs against. */
export interface SearchMode {
  vector: boolean;
  lexical: boolean;
}

/** One `index_search` request as the host sees it after decoding and validation. */
export interface SearchRequest {
  query: string;
  k: number;
  mode: SearchMode;
  /** A query vector from the plugin, or `null` to use the ask's own embedding of `query`. */
  vector: Float32Array | null;
  /** Metadata equality filter: every entry must match. */
  filter: Readonly<Record<string, string>>;
}

/** One search hit. */
export interface SearchHit {
  chunkId: string;
  docId: string;
  score: number;
  /** 1 = vector index, 2 = lexical (BM25) index. */
  via: 1 | 2;
}

/** One chunk as a plugin sees it. */
export interface ChunkView {
  chunkId: string;
  docId: string;
  title: string;
  text: string;
  metadata: Readonly<Record<string, string>>;
}

/** The host functions, bound to one session's tenant. Implementations throw HostError on bad input. */
export interface PluginCapabilities {
  indexSearch(request: SearchRequest): SearchHit[];
  chunkGet(chunkId: string): ChunkView | undefined;
  kvGet(key: string): Uint8Array | undefined;
  /** An empty value deletes the key. */
  kvSet(key: string, value: Uint8Array): void;
  embed(text: string): Float32Array;
  log(level: 'trace' | 'debug' | 'info' | 'warn' | 'error', message: string): void;
  /** Rows an index search scans (what a search costs the plugin's fuel); 0 when unknown. */
  indexRows?(): number;
}
