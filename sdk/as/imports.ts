/**
 * The raw host functions of ABI `ctx:host/v1`. Each takes the offset of an Extism memory block
 * holding the request and returns the offset of a block holding the response
 * (`u8 status`, then `str message` or the payload). Plugins normally use the typed wrappers in
 * `index.ts`; these are exported for tests that must exercise the boundary with bad offsets.
 *
 * An import that a plugin never calls is not emitted into its module, so a plugin only ever
 * imports what it uses.
 */

/**
 * `index_search(str query; u32 k; u8 mode; u32 vecLen + f32[vecLen]; u32 filterCount + (str, str)*)`.
 *
 * @example
 * ```ts
 * const response = index_search(requestBlock.offset);
 * ```
 */
// @ts-ignore: decorator
@external("ctx:host/v1", "index_search")
export declare function index_search(request: u64): u64;

/**
 * `chunk_get(str chunkId)`.
 *
 * @example
 * ```ts
 * const response = chunk_get(requestBlock.offset);
 * ```
 */
// @ts-ignore: decorator
@external("ctx:host/v1", "chunk_get")
export declare function chunk_get(request: u64): u64;

/**
 * `kv_get(str key)`.
 *
 * @example
 * ```ts
 * const response = kv_get(requestBlock.offset);
 * ```
 */
// @ts-ignore: decorator
@external("ctx:host/v1", "kv_get")
export declare function kv_get(request: u64): u64;

/**
 * `kv_set(str key; bytes value)`.
 *
 * @example
 * ```ts
 * const response = kv_set(requestBlock.offset);
 * ```
 */
// @ts-ignore: decorator
@external("ctx:host/v1", "kv_set")
export declare function kv_set(request: u64): u64;

/**
 * `embed(str text)`.
 *
 * @example
 * ```ts
 * const response = embed(requestBlock.offset);
 * ```
 */
// @ts-ignore: decorator
@external("ctx:host/v1", "embed")
export declare function embed(request: u64): u64;
