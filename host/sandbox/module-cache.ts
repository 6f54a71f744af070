/**
 * Compiles plugin modules once per distinct module. Compiling is the expensive step (milliseconds
 * to seconds); instantiating a compiled `WebAssembly.Module` takes tens of microseconds. So each
 * session gets FRESH instances (invariant 3) from a SHARED compiled module: a module is code only,
 * it holds no state of any session or tenant.
 *
 * Compilation also checks the module's imports: a plugin may import functions only, and only from
 * `extism:host/env` (minus HTTP) and `ctx:host/v1`. No imported memory, table or global, no WASI.
 */
import { createHash } from 'node:crypto';
import { HostError } from '../errors.ts';
import { FUEL_EXPORT, START_EXPORT } from './metering.ts';
import type { PluginSlot } from './slots.ts';

/** The host functions of ABI `ctx:host/v1`. */
export const HOST_NAMESPACE = 'ctx:host/v1';
/** Names of the `ctx:host/v1` functions. */
export const HOST_FUNCTION_NAMES = ['index_search', 'chunk_get', 'kv_get', 'kv_set', 'embed'] as const;

/**
 * Extism's own functions a plugin may import. HTTP is left out on purpose: a plugin must not reach
 * the network, and on runtimes with JSPI Extism would wire a real `fetch` behind `http_request`.
 */
const EXTISM_ENV_FUNCTIONS = new Set([
  'alloc', 'free', 'length', 'length_unsafe', 'load_u8', 'load_u64', 'store_u8', 'store_u64',
  'input_offset', 'input_length', 'input_load_u8', 'input_load_u64', 'output_set', 'error_set', 'error_get',
  'config_get', 'var_get', 'var_set', 'log_trace', 'log_debug', 'log_info', 'log_warn', 'log_error', 'get_log_level',
]);
const ALLOWED_IMPORTS: Readonly<Record<string, ReadonlySet<string>>> = {
  'extism:host/env': EXTISM_ENV_FUNCTIONS,
  [HOST_NAMESPACE]: new Set(HOST_FUNCTION_NAMES),
};

/** The export each slot must provide. */
export const SLOT_EXPORTS: Readonly<Record<PluginSlot, string>> = { retrieval: 'retrieve', prompt: 'assemble' };

/** A compiled, import-checked plugin module. Holds code only, never state. */
export interface CompiledPlugin {
  readonly sha256: string;
  readonly module: WebAssembly.Module;
  /** Names of its function exports. */
  readonly exports: ReadonlySet<string>;
  /** Whether fuel metering was compiled in (it exports the fuel global): calls then get a fuel budget. */
  readonly metered: boolean;
  /** Whether it exports a former start function the host must run after instantiation (metered modules). */
  readonly deferredStart: boolean;
  /**
   * Whether it is one of the host's own built-in plugins (compiled from this repository's source).
   * Those run metered but without the wall-clock watchdog, whose vm timeout starts a thread per
   * call (~0.2 ms): for our own metered code it would guard against nothing fuel does not.
   */
  readonly builtin?: boolean;
}

/**
 * The imports of `module` a plugin may not have: anything but functions of `extism:host/env`
 * (minus HTTP) and `ctx:host/v1`. Each is shown as `kind "module" "name"`.
 *
 * @example
 * ```ts
 * const refused = forbiddenImports(await WebAssembly.compile(bytes)); // ['function "wasi_snapshot_preview1" "fd_write"']
 * ```
 */
export function forbiddenImports(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.imports(module)
    .filter((entry) => entry.kind !== 'function' || ALLOWED_IMPORTS[entry.module]?.has(entry.name) !== true)
    .map((entry) => `${entry.kind} "${entry.module}" "${entry.name}"`);
}

/**
 * A seam for a later issue: rewrites module bytes before compilation (fuel metering, clamping the
 * memory maximum). `id` distinguishes rewriters in the cache key, so the same upload compiled with
 * and without metering never share an entry.
 */
export interface ModuleRewriter {
  readonly id: string;
  rewrite(bytes: Uint8Array): Uint8Array;
}

/** Options of {@link compilePlugin}. */
export interface CompileOptions {
  rewriter?: ModuleRewriter;
}

/**
 * Compiled modules kept at once. Each entry costs the module's machine code (a few hundred KiB for
 * a large plugin); tenants sharing the built-in defaults share one entry. Least recently used
 * entries are evicted; live instances keep their module alive regardless.
 */
export const COMPILED_MODULES_MAX = 256;

const cache = new Map<string, Promise<CompiledPlugin>>();

/**
 * Compiles `bytes` (or returns the cached module for the same sha256), checking its imports.
 *
 * @example
 * ```ts
 * const compiled = await compilePlugin(await readFile('build/plugins/retrieval.wasm'));
 * ```
 * @throws {HostError} PLUGIN_LOAD_FAILED when the bytes are not a valid module or import
 *   something a plugin may not import.
 */
export function compilePlugin(bytes: Uint8Array, options: CompileOptions = {}): Promise<CompiledPlugin> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const key = options.rewriter === undefined ? sha256 : `${sha256}:${options.rewriter.id}`;
  const cached = cache.get(key);
  if (cached !== undefined) {
    // Re-insert so iteration order is least recently used first.
    cache.delete(key);
    cache.set(key, cached);
    return cached;
  }
  const compiling = compile(sha256, options.rewriter === undefined ? bytes : options.rewriter.rewrite(bytes));
  cache.set(key, compiling);
  compiling.catch(() => cache.delete(key));
  while (cache.size > COMPILED_MODULES_MAX) {
    const oldest = cache.keys().next().value;
    if (oldest === undefined) break;
    cache.delete(oldest);
  }
  return compiling;
}

/**
 * Returns the compiled module for a known sha256, compiling `load()` only on a miss: a session
 * start of an uploaded plugin then costs a cache lookup, not a read and hash of megabytes.
 * `sha256` must be the digest of what `load` returns (the plugin store computed it at upload).
 *
 * @example
 * ```ts
 * const compiled = await compileKnown(record.moduleSha256, () => readStoredModule(scope, record));
 * ```
 * @throws {HostError} PLUGIN_LOAD_FAILED as {@link compilePlugin}.
 */
export function compileKnown(sha256: string, load: () => Uint8Array): Promise<CompiledPlugin> {
  const cached = cache.get(sha256);
  if (cached !== undefined) {
    cache.delete(sha256);
    cache.set(sha256, cached);
    return cached;
  }
  return compilePlugin(load());
}

async function compile(sha256: string, bytes: Uint8Array): Promise<CompiledPlugin> {
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (error: unknown) {
    throw new HostError('PLUGIN_LOAD_FAILED', `the plugin is not a valid WebAssembly module: ${error instanceof Error ? error.message : String(error)}`);
  }
  for (const entry of WebAssembly.Module.imports(module)) {
    if (entry.kind !== 'function' || ALLOWED_IMPORTS[entry.module]?.has(entry.name) !== true) {
      throw new HostError(
        'PLUGIN_LOAD_FAILED',
        `the plugin imports ${entry.kind} "${entry.module}" "${entry.name}"; plugins may import only functions of extism:host/env (no HTTP) and ${HOST_NAMESPACE}`,
      );
    }
  }
  const described = WebAssembly.Module.exports(module);
  const exports = new Set(described.filter((entry) => entry.kind === 'function').map((entry) => entry.name));
  const metered = described.some((entry) => entry.kind === 'global' && entry.name === FUEL_EXPORT);
  return { sha256, module, exports, metered, deferredStart: metered && exports.has(START_EXPORT) };
}

/**
 * Checks that `compiled` has the export `slot` needs.
 *
 * @example
 * ```ts
 * assertSlotExport(compiled, 'retrieval');
 * ```
 * @throws {HostError} PLUGIN_LOAD_FAILED naming the missing export.
 */
export function assertSlotExport(compiled: CompiledPlugin, slot: PluginSlot): void {
  const name = SLOT_EXPORTS[slot];
  if (!compiled.exports.has(name)) {
    throw new HostError('PLUGIN_LOAD_FAILED', `a ${slot} plugin must export a function "${name}"; this one does not`);
  }
}
