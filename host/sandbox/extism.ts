/**
 * The Extism adapter: the only file that imports @extism/extism. It maps Extism's foreground
 * plugin onto a small interface of ours ({@link WasmPlugin}) and hardens the parts of Extism's
 * memory model a plugin can abuse.
 *
 * Facts about @extism/extism 2.0.0-rc13 this file relies on (checked against its source):
 * - A memory "offset" is `blockIndex << 48 | byteOffset`. `CallContext.read()` ignores the byte
 *   offset and returns the WHOLE block, and block 0 is a live 1-byte block, so offset 0 reads one
 *   byte instead of failing. We therefore accept only offsets that name the start of a block > 0.
 * - `CallContext.store(u8)` keeps (does not copy) a Uint8Array that spans its whole ArrayBuffer,
 *   so the plugin could later write into host memory; we only store buffers we own and drop.
 * - `memory.maxPages` checks AFTER allocating, keeps the refused block until the next call, and
 *   sums every block on each allocation (quadratic). We instead wrap `extism:host/env::alloc` and
 *   refuse over-budget allocations before anything is allocated.
 * - Host functions passed in `functions['extism:host/env']` replace Extism's own entries.
 * - The export's return code is ignored by Extism JS; a plugin reports an error with `error_set`,
 *   which makes `call()` reject with "Plugin-originated error: ...". After a trap, a message the
 *   plugin set with `error_set` is lost, so the SDK's abort logs its message before trapping.
 */
import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { runWatched } from './watchdog.ts';

/** Extism's address layout: the block index sits above bit 48. */
const BLOCK_INDEX_SHIFT = 48n;
const BLOCK_OFFSET_MASK = (1n << BLOCK_INDEX_SHIFT) - 1n;
/**
 * Host memory each allocation costs beyond its bytes (the Block object and its ArrayBuffer).
 * Charging it stops a plugin from exhausting host memory with millions of zero-byte blocks.
 */
export const ALLOC_OVERHEAD_BYTES = 64;

/** The result of reading a request block out of plugin memory. */
export type BlockRead =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; reason: 'invalid' | 'too_large'; message: string };

/** Plugin memory as a host function sees it. */
export interface GuestMemory {
  /**
   * Copies the block at `offset`, which must be the start of a live block and at most `bytesMax`
   * bytes long. Never throws.
   */
  readBlock(offset: unknown, bytesMax: number): BlockRead;
  /** Stores `bytes` in a new block and returns its offset, or 0n when that is impossible. Never throws. */
  storeBlock(bytes: Uint8Array): bigint;
}

/** A host function: one i64 offset in, one i64 offset out. Must never throw. */
export type HostFunction = (memory: GuestMemory, offset: unknown) => bigint;

/** Log levels a plugin can use through Extism's `log_*` functions. */
export type GuestLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** How to load one plugin. */
export interface WasmPluginOptions {
  /** The import namespace of `functions`. */
  namespace: string;
  functions: Readonly<Record<string, HostFunction>>;
  /** Receives every log line of the plugin (and Extism's own complaints about it). Must not throw. */
  onLog: (level: GuestLogLevel, message: string) => void;
  /** Bytes (plus per-block overhead) the plugin may allocate through `alloc` during one call. */
  allocBytesPerCallMax: number;
  /** Bytes of Extism "vars" (session-local scratch state) the plugin may hold. */
  varBytesMax: number;
}

/** The outcome of one export call. */
export type GuestCallResult =
  | { ok: true; output: Uint8Array }
  | { ok: false; kind: 'trap' | 'guest_error' | 'alloc_limit' | 'timeout'; message: string };

/** A loaded plugin: one WebAssembly instance with its own Extism memory. */
export interface WasmPlugin {
  /** The instance's exports, for guards (fuel, memory) that inspect or refill them between calls. */
  readonly exports: WebAssembly.Exports;
  /**
   * Calls an export with `input`, under the watchdog when `wallMsMax` is a number (see
   * watchdog.ts). Never rejects: failures come back as `{ ok: false }`.
   */
  call(exportName: string, input: Uint8Array, wallMsMax: number | null): Promise<GuestCallResult>;
  /**
   * Calls a parameterless export directly, outside Extism's call protocol (no input, no output):
   * how the host runs a metered module's former start function. Never throws.
   */
  callRaw(exportName: string, wallMsMax: number | null): GuestCallResult;
  close(): Promise<void>;
}

function readBlock(context: CallContext, offset: unknown, bytesMax: number): BlockRead {
  if (typeof offset !== 'bigint') return { ok: false, reason: 'invalid', message: 'the offset is not an i64' };
  const shown = `0x${BigInt.asUintN(64, offset).toString(16)}`;
  if (offset <= 0n || (offset & BLOCK_OFFSET_MASK) !== 0n) {
    return { ok: false, reason: 'invalid', message: `offset ${shown} does not name the start of a memory block` };
  }
  const block = context.read(offset)?.bytes() ?? null;
  if (block === null) return { ok: false, reason: 'invalid', message: `offset ${shown} names no live memory block` };
  if (block.byteLength > bytesMax) {
    return { ok: false, reason: 'too_large', message: `the request is ${block.byteLength} bytes, over the limit of ${bytesMax}` };
  }
  // A copy: the plugin can write into its blocks later, and capabilities may keep what they get.
  return { ok: true, bytes: block.slice() };
}

function storeBlock(context: CallContext, bytes: Uint8Array): bigint {
  try {
    return context.store(bytes);
  } catch {
    return 0n;
  }
}

/** Per-call allocation accounting, shared by the `alloc` wrapper and `call`. */
interface AllocBudget {
  used: number;
  refused: string | null;
}

function guardedAlloc(budget: AllocBudget, bytesMax: number) {
  return (context: CallContext, size: unknown): bigint => {
    const bytes = typeof size === 'bigint' ? size : BigInt(Number(size) || 0);
    const cost = Number(bytes) + ALLOC_OVERHEAD_BYTES;
    if (bytes < 0n || budget.used + cost > bytesMax) {
      budget.refused ??= `the plugin allocated more than ${bytesMax} bytes of host memory in one call (asked for ${bytes} more with ${budget.used} used)`;
      // Extism returns 0 for a refused allocation too; the call fails afterwards either way.
      return 0n;
    }
    budget.used += cost;
    return context.alloc(bytes);
  };
}

function guestLogger(onLog: WasmPluginOptions['onLog']): Console {
  const forward = (level: GuestLogLevel) => (message: unknown) => {
    try {
      onLog(level, String(message));
    } catch {
      // A throwing logger would trap the plugin; a lost log line is the lesser harm.
    }
  };
  const logger = { trace: forward('trace'), debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('error') };
  return logger as unknown as Console;
}

function classify(error: unknown, budget: AllocBudget): GuestCallResult {
  if (budget.refused !== null) return { ok: false, kind: 'alloc_limit', message: budget.refused };
  const message = error instanceof Error ? error.message : String(error);
  const guestError = /^Plugin-originated error: ([\s\S]*)$/.exec(message);
  if (guestError !== null) return { ok: false, kind: 'guest_error', message: guestError[1] ?? '' };
  // RuntimeError (unreachable, out of bounds), RangeError (stack overflow, or Extism's DataView
  // on a bad block offset) and TypeError (Extism's env given a dead block): all are the plugin's fault.
  const name = error instanceof Error ? error.name : 'Error';
  return { ok: false, kind: 'trap', message: `${name}: ${message}` };
}

/**
 * Instantiates `module` with Extism in the foreground (no worker thread, no WASI, no HTTP).
 *
 * @example
 * ```ts
 * const plugin = await loadWasmPlugin(module, { namespace: 'ctx:host/v1', functions, onLog, allocBytesPerCallMax, varBytesMax });
 * const result = await plugin.call('retrieve', input);
 * ```
 * @throws Error from Extism or WebAssembly when the module cannot be instantiated (a missing
 *   import, a trapping start function).
 */
export async function loadWasmPlugin(module: WebAssembly.Module, options: WasmPluginOptions): Promise<WasmPlugin> {
  const budget: AllocBudget = { used: 0, refused: null };
  const functions: Record<string, (context: CallContext, offset: unknown) => bigint> = {};
  for (const [name, fn] of Object.entries(options.functions)) {
    functions[name] = (context, offset) =>
      fn({ readBlock: (at, bytesMax) => readBlock(context, at, bytesMax), storeBlock: (bytes) => storeBlock(context, bytes) }, offset);
  }
  const plugin: Plugin = await createPlugin(
    { wasm: [{ module }] },
    {
      useWasi: false,
      runInWorker: false,
      functions: {
        'extism:host/env': { alloc: guardedAlloc(budget, options.allocBytesPerCallMax) },
        [options.namespace]: functions,
      },
      logger: guestLogger(options.onLog),
      logLevel: 'trace',
      // No maxPages: our alloc guard is stricter and does not allocate before checking.
      memory: { maxVarBytes: options.varBytesMax },
      // Extism looks config keys up with `in`: on a plain {} "constructor" would be "found" (and trap).
      config: Object.create(null) as Record<string, string>,
    },
  );
  const instance = await plugin.getInstance();
  return {
    exports: instance.exports,
    async call(exportName, input, wallMsMax) {
      budget.used = 0;
      budget.refused = null;
      try {
        // Extism runs the export synchronously inside call() (foreground, no async imports), so
        // the watchdog covers the wasm; the returned promise only carries the output.
        const started = runWatched(() => plugin.call(exportName, input), wallMsMax);
        if (!started.ok) return timedOut(exportName, started.wallMsMax);
        const output = await started.value;
        if (budget.refused !== null) return classify(null, budget);
        return { ok: true, output: output === null ? new Uint8Array(0) : output.bytes() };
      } catch (error: unknown) {
        return classify(error, budget);
      }
    },
    callRaw(exportName, wallMsMax) {
      budget.used = 0;
      budget.refused = null;
      const fn = instance.exports[exportName];
      if (typeof fn !== 'function') return { ok: false, kind: 'trap', message: `TypeError: export ${exportName} is not a function` };
      try {
        const done = runWatched(() => (fn as () => unknown)(), wallMsMax);
        return done.ok ? { ok: true, output: new Uint8Array(0) } : timedOut(exportName, done.wallMsMax);
      } catch (error: unknown) {
        return classify(error, budget);
      }
    },
    close: () => plugin.close(),
  };
}

function timedOut(exportName: string, wallMsMax: number): GuestCallResult {
  return { ok: false, kind: 'timeout', message: `${exportName} was still running after ${wallMsMax} ms; the watchdog stopped it` };
}

/**
 * Benchmark baseline only (bench/session-start.ts): the same module in Extism's worker mode, a
 * thread per instance. The host never uses it — host/DESIGN.md measures why a thread per session
 * cannot scale — but the session-start figure is printed as a ratio against it.
 * @throws Error from Extism when the module cannot be instantiated.
 */
export async function loadWorkerPluginForBenchmark(module: WebAssembly.Module, namespace: string, functionNames: readonly string[]): Promise<{ close(): Promise<void> }> {
  const functions: Record<string, () => bigint> = {};
  for (const name of functionNames) functions[name] = () => 0n;
  const plugin = await createPlugin({ wasm: [{ module }] }, { useWasi: false, runInWorker: true, functions: { [namespace]: functions } });
  return { close: () => plugin.close() };
}
