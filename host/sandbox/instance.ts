/**
 * A plugin instance: one fresh WebAssembly instance of a compiled plugin, bound to one
 * PluginCapabilities object, serving one slot. Sessions create instances for themselves and close
 * them with themselves; an instance is never pooled or handed to another session (invariant 3).
 *
 * Every call is typed on both sides (encoded input, decoded and validated output) and runs under
 * per-call caps: output bytes, host function calls, Extism host memory and log lines. Calls run
 * one at a time through a bounded queue: plugins are not reentrant and the caps are per call.
 * After any failure the instance refuses further calls; the caller creates a new one, so no
 * half-updated plugin state survives a trap.
 */
import assert from 'node:assert/strict';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { PluginCapabilities } from './capabilities.ts';
import { loadWasmPlugin, type GuestCallResult, type GuestLogLevel, type WasmPlugin } from './extism.ts';
import { fuelGuards } from './fuel.ts';
import { createHostFunctions, type HostCallBudget } from './host-functions.ts';
import { FUEL_EXPORT, START_EXPORT } from './metering.ts';
import { assertSlotExport, compilePlugin, HOST_NAMESPACE, SLOT_EXPORTS, type CompiledPlugin } from './module-cache.ts';
import {
  decodeAssembleOutput,
  decodeRetrieveOutput,
  encodeAssembleInput,
  encodeRetrieveInput,
  type AssembleInput,
  type AssembleOutput,
  type PluginSlot,
  type RankedChunk,
  type RetrieveInput,
} from './slots.ts';

/**
 * The seam for fuel metering and memory caps. Guards see the instance's exports, so a metered
 * module has its fuel global refilled before each call and read after it (fuel.ts does that for
 * every metered module; these are extra guards, for tests).
 */
export interface CallGuards {
  /** Runs before each export call. */
  beforeCall?(exports: WebAssembly.Exports): void;
  /** Runs after each export call; a returned HostError fails the call (e.g. fuel exhausted). */
  afterCall?(exports: WebAssembly.Exports, trapped: boolean): HostError | null;
}

/** Options of {@link createPluginInstance}. Every limit defaults to LIMITS and may only be lowered. */
export interface PluginInstanceOptions {
  slot: PluginSlot;
  capabilities: PluginCapabilities;
  /** Bytes one call may output (default LIMITS.pluginOutputBytesMax). */
  outputBytesMax?: number;
  /** Host function calls per plugin call (default LIMITS.hostCallsPerPluginCallMax). */
  hostCallsPerCallMax?: number;
  /** Bytes of one host function request (default LIMITS.hostCallInputBytesMax). */
  hostCallInputBytesMax?: number;
  /** Log lines per call; the rest are dropped and counted (default LIMITS.pluginLogLinesPerCallMax). */
  logLinesPerCallMax?: number;
  /** Extism host memory one call may allocate (default LIMITS.extismHostPagesMax × 64 KiB). */
  hostBytesPerCallMax?: number;
  /** Calls queued or running at once; more are refused with PLUGIN_BUSY (default LIMITS.asksInFlightPerSessionMax). */
  queueDepthMax?: number;
  /** Extra guards run after the fuel guards of a metered module. */
  guards?: CallGuards;
  /**
   * Fuel per call (and for the start function) of a metered module (default
   * LIMITS.pluginFuelPerCallDefault; LIMITS.pluginFuelPerCallMin..pluginFuelPerCallMax).
   */
  fuelPerCall?: number;
  /**
   * Wall-clock limit of one call, enforced by the watchdog (watchdog.ts); `null` turns it off
   * (default LIMITS.pluginCallWallMsMax; may only be lowered).
   */
  watchdogMs?: number | null;
  /** Receives host-side faults inside host functions (default: the capabilities' error log). */
  onInternalError?: (functionName: string, error: unknown) => void;
}

/** A retrieval-slot instance. */
export interface RetrievalPluginInstance {
  readonly slot: 'retrieval';
  readonly sha256: string;
  /**
   * Ranks chunks for one question.
   * @throws {HostError} PLUGIN_FAILED, PLUGIN_BAD_OUTPUT, PLUGIN_OUTPUT_LIMIT, PLUGIN_HOST_CALL_LIMIT,
   *   PLUGIN_MEMORY_LIMIT, PLUGIN_BUSY.
   */
  retrieve(input: RetrieveInput): Promise<RankedChunk[]>;
  /** Bytes the instance holds now (its linear memory plus a fixed overhead), for the memory budget. */
  readonly memoryBytes: number;
  /** Closes the instance; queued calls fail with PLUGIN_FAILED. Idempotent. */
  close(): Promise<void>;
}

/** A prompt-slot instance. */
export interface PromptPluginInstance {
  readonly slot: 'prompt';
  readonly sha256: string;
  /**
   * Assembles the prompt messages for one question.
   * @throws {HostError} as {@link RetrievalPluginInstance.retrieve}.
   */
  assemble(input: AssembleInput): Promise<AssembleOutput>;
  /** Bytes the instance holds now (its linear memory plus a fixed overhead), for the memory budget. */
  readonly memoryBytes: number;
  /** Closes the instance; queued calls fail with PLUGIN_FAILED. Idempotent. */
  close(): Promise<void>;
}

/** An instance of either slot. */
export type PluginInstance = RetrievalPluginInstance | PromptPluginInstance;

const PAGE_BYTES = 64 * 1024;
const OPTION_KEYS = new Set([
  'slot', 'capabilities', 'outputBytesMax', 'hostCallsPerCallMax', 'hostCallInputBytesMax', 'logLinesPerCallMax',
  'hostBytesPerCallMax', 'queueDepthMax', 'guards', 'onInternalError', 'fuelPerCall', 'watchdogMs',
]);

/** Resolved per-instance limits. */
interface InstanceLimits {
  outputBytesMax: number;
  hostCallsPerCallMax: number;
  hostCallInputBytesMax: number;
  logLinesPerCallMax: number;
  hostBytesPerCallMax: number;
  queueDepthMax: number;
  watchdogMs: number | null;
}

function resolveLimits(options: PluginInstanceOptions, builtin: boolean): InstanceLimits {
  for (const key of Object.keys(options)) assert.ok(OPTION_KEYS.has(key), `unknown plugin instance option "${key}"`);
  const pick = (name: keyof InstanceLimits, ceiling: number): number => {
    const value = options[name] ?? ceiling;
    assert.ok(Number.isInteger(value) && value >= 1 && value <= ceiling, `${name} ${value} must be an integer in 1..${ceiling}`);
    return value;
  };
  return {
    outputBytesMax: pick('outputBytesMax', LIMITS.pluginOutputBytesMax),
    hostCallsPerCallMax: pick('hostCallsPerCallMax', LIMITS.hostCallsPerPluginCallMax),
    hostCallInputBytesMax: pick('hostCallInputBytesMax', LIMITS.hostCallInputBytesMax),
    logLinesPerCallMax: pick('logLinesPerCallMax', LIMITS.pluginLogLinesPerCallMax),
    hostBytesPerCallMax: pick('hostBytesPerCallMax', LIMITS.extismHostPagesMax * PAGE_BYTES),
    queueDepthMax: pick('queueDepthMax', LIMITS.asksInFlightPerSessionMax),
    // Built-ins skip the watchdog unless a caller asks for one (see CompiledPlugin.builtin).
    watchdogMs: options.watchdogMs === null || (options.watchdogMs === undefined && builtin) ? null : pick('watchdogMs', LIMITS.pluginCallWallMsMax),
  };
}

/** Per-call log accounting: lines forwarded and lines dropped over the cap. */
interface LogBudget {
  lines: number;
  dropped: number;
}

/** The slot-independent core: loading, the queue, the per-call caps and the failure latch. */
class Sandbox {
  readonly #slot: PluginSlot;
  readonly #capabilities: PluginCapabilities;
  readonly #limits: InstanceLimits;
  readonly #guards: CallGuards[];
  readonly #budget: HostCallBudget = { calls: 0, failure: null, deadlineAt: Number.POSITIVE_INFINITY };
  readonly #log: LogBudget = { lines: 0, dropped: 0 };
  #plugin: WasmPlugin | null = null;
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;
  #failure: HostError | null = null;
  #closed = false;

  #running = '';
  readonly #metered: boolean;

  constructor(options: PluginInstanceOptions, limits: InstanceLimits, compiled: CompiledPlugin) {
    this.#slot = options.slot;
    this.#capabilities = options.capabilities;
    this.#limits = limits;
    this.#guards = [];
    this.#metered = compiled.metered;
    if (compiled.metered) this.#guards.push(fuelGuards(options.fuelPerCall ?? LIMITS.pluginFuelPerCallDefault, () => this.#running));
    if (options.guards !== undefined) this.#guards.push(options.guards);
  }

  /** The fuel global of a metered module once it is loaded (host work is charged to it). */
  #fuel(): WebAssembly.Global | undefined {
    return this.#metered ? (this.#plugin?.exports[FUEL_EXPORT] as WebAssembly.Global | undefined) : undefined;
  }

  /** Bytes this instance holds: its linear memory as grown so far, plus what an instance costs besides. */
  get memoryBytes(): number {
    const memory = this.#plugin?.exports['memory'];
    return (memory instanceof WebAssembly.Memory ? memory.buffer.byteLength : 0) + LIMITS.pluginInstanceOverheadBytes;
  }

  /** Instantiates the module with host functions that close over this sandbox's capabilities only. */
  async load(module: WebAssembly.Module, onInternalError: (functionName: string, error: unknown) => void): Promise<void> {
    const functions = createHostFunctions(this.#capabilities, {
      budget: this.#budget,
      hostCallsPerCallMax: this.#limits.hostCallsPerCallMax,
      hostCallInputBytesMax: this.#limits.hostCallInputBytesMax,
      onInternalError,
      fuel: {
        spent: () => ((this.#fuel()?.value as bigint | undefined) ?? 0n) < 0n,
        charge: (spent) => {
          const fuel = this.#fuel();
          if (fuel !== undefined) fuel.value = (fuel.value as bigint) - BigInt(Math.ceil(spent));
        },
      },
    });
    try {
      this.#plugin = await loadWasmPlugin(module, {
        namespace: HOST_NAMESPACE,
        functions,
        onLog: (level, message) => this.#onLog(level, message),
        allocBytesPerCallMax: this.#limits.hostBytesPerCallMax,
        varBytesMax: LIMITS.kvValueBytesMax,
      });
    } catch (error: unknown) {
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new HostError('PLUGIN_LOAD_FAILED', `the ${this.#slot} plugin could not be instantiated: ${reason}`);
    }
    // A start function runs during instantiation and may already have broken a per-call limit.
    if (this.#budget.failure !== null) {
      await this.#plugin.close();
      throw this.#budget.failure;
    }
  }

  /**
   * Runs a metered module's former start function (metering.ts moved it out of instantiation) as a
   * call of its own: fuel, watchdog and host-call caps apply, and its failure can be named.
   */
  async runDeferredStart(): Promise<void> {
    const plugin = this.#plugin;
    assert.ok(plugin !== null, 'the sandbox was used before it loaded');
    this.#beginCall('the start function');
    const result = plugin.callRaw(START_EXPORT, this.#limits.watchdogMs);
    const failure = this.#endCall(plugin, result);
    if (failure === null) return;
    await plugin.close();
    this.#plugin = null;
    if (failure.code === 'PLUGIN_FAILED') {
      throw new HostError('PLUGIN_LOAD_FAILED', `the ${this.#slot} plugin could not be instantiated: ${result.ok ? 'its start function failed' : result.message}`);
    }
    throw failure;
  }

  /** Resets the per-call accounting and arms the guards. */
  #beginCall(what: string): void {
    const plugin = this.#plugin;
    assert.ok(plugin !== null, 'the sandbox was used before it loaded');
    this.#running = what;
    this.#budget.calls = 0;
    this.#budget.failure = null;
    this.#budget.deadlineAt = this.#limits.watchdogMs === null ? Number.POSITIVE_INFINITY : performance.now() + this.#limits.watchdogMs;
    this.#log.lines = 0;
    this.#log.dropped = 0;
    for (const guard of this.#guards) guard.beforeCall?.(plugin.exports);
  }

  /** The call's failure, in order of precedence: a broken per-call cap, a guard, the result itself. */
  #endCall(plugin: WasmPlugin, result: GuestCallResult): HostError | null {
    if (this.#log.dropped > 0) {
      this.#hostLog('warn', `plugin log: ${this.#log.dropped} lines dropped, the limit is ${this.#limits.logLinesPerCallMax} per call`);
    }
    if (this.#budget.failure !== null) return this.#budget.failure;
    // After a watchdog stop the module's globals are mid-call; only the timeout is meaningful.
    if (!result.ok && result.kind === 'timeout') return this.#failureOf(result);
    for (const guard of this.#guards) {
      const failure = guard.afterCall?.(plugin.exports, !result.ok) ?? null;
      if (failure !== null) return failure;
    }
    return this.#failureOf(result);
  }

  #onLog(level: GuestLogLevel, message: string): void {
    if (this.#log.lines >= this.#limits.logLinesPerCallMax) {
      this.#log.dropped += 1;
      return;
    }
    this.#log.lines += 1;
    // A log line is a host call argument by another name: bound it the same way.
    this.#hostLog(level, message.length > LIMITS.hostCallInputBytesMax ? `${message.slice(0, LIMITS.hostCallInputBytesMax)}…` : message);
  }

  /** Logging must never change a call's outcome, so a throwing log sink is ignored. */
  #hostLog(level: GuestLogLevel, message: string): void {
    try {
      this.#capabilities.log(level, message);
    } catch {
      // Nothing sensible to do: the log sink itself is what failed.
    }
  }

  /**
   * Queues one call of the slot's export; `decode` turns its output into the typed result.
   * Any failure, decoding included, latches the instance into the failed state.
   */
  enqueue<T>(input: Uint8Array, decode: (output: Uint8Array) => T): Promise<T> {
    if (this.#pending >= this.#limits.queueDepthMax) {
      return Promise.reject(new HostError('PLUGIN_BUSY', `the ${this.#slot} plugin already has ${this.#pending} calls queued or running, the limit is ${this.#limits.queueDepthMax}`));
    }
    this.#pending += 1;
    const result = this.#tail.then(async () => {
      let started = false;
      try {
        this.#assertUsable();
        started = true;
        return decode(await this.#execute(input));
      } catch (error: unknown) {
        if (started) this.#failure ??= error instanceof HostError ? error : new HostError('PLUGIN_FAILED', 'the plugin call failed unexpectedly');
        throw error;
      } finally {
        this.#pending -= 1;
      }
    });
    this.#tail = result.then(ignore, ignore);
    return result;
  }

  #assertUsable(): void {
    if (this.#closed) throw new HostError('PLUGIN_FAILED', `the ${this.#slot} plugin instance is closed`);
    if (this.#failure !== null) {
      throw new HostError('PLUGIN_FAILED', `the ${this.#slot} plugin instance failed earlier (${this.#failure.code}) and cannot be used again; create a new instance`);
    }
  }

  async #execute(input: Uint8Array): Promise<Uint8Array> {
    const plugin = this.#plugin;
    assert.ok(plugin !== null, 'the sandbox was used before it loaded');
    const exportName = SLOT_EXPORTS[this.#slot];
    this.#beginCall(exportName);
    const result = await plugin.call(exportName, input, this.#limits.watchdogMs);
    const failure = this.#endCall(plugin, result);
    if (failure !== null) throw failure;
    assert.ok(result.ok);
    return result.output;
  }

  #failureOf(result: GuestCallResult): HostError | null {
    const exportName = SLOT_EXPORTS[this.#slot];
    if (result.ok) {
      if (result.output.byteLength <= this.#limits.outputBytesMax) return null;
      return new HostError('PLUGIN_OUTPUT_LIMIT', `${exportName} returned ${result.output.byteLength} bytes, over the limit of ${this.#limits.outputBytesMax}`);
    }
    switch (result.kind) {
      case 'alloc_limit':
        return new HostError('PLUGIN_MEMORY_LIMIT', `${exportName}: ${result.message}`);
      case 'guest_error':
        // The plugin's own message may quote tenant data: it goes to the plugin log, not the error.
        this.#hostLog('error', `${exportName} reported an error: ${result.message}`);
        return new HostError('PLUGIN_FAILED', `${exportName} reported an error (see the plugin log)`);
      case 'trap':
        return new HostError('PLUGIN_FAILED', `${exportName} trapped: ${result.message}`);
      case 'timeout':
        return new HostError('PLUGIN_TIMEOUT', `${result.message}; the instance is discarded`);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail;
    const plugin = this.#plugin;
    this.#plugin = null;
    await plugin?.close();
  }
}

function ignore(): void {}

/**
 * Creates a fresh plugin instance for one session. `wasm` is the module's bytes (compiled once
 * per distinct sha256 and cached) or an already compiled plugin.
 *
 * @example
 * ```ts
 * const retrieval = await createPluginInstance(bytes, { slot: 'retrieval', capabilities });
 * const ranked = await retrieval.retrieve({ query: 'refunds?', k: 5, history: [] });
 * await retrieval.close();
 * ```
 * @throws {HostError} PLUGIN_LOAD_FAILED when the module is invalid, imports what it may not,
 *   lacks the slot's export or fails to instantiate.
 */
export function createPluginInstance(wasm: Uint8Array | CompiledPlugin, options: PluginInstanceOptions & { slot: 'retrieval' }): Promise<RetrievalPluginInstance>;
export function createPluginInstance(wasm: Uint8Array | CompiledPlugin, options: PluginInstanceOptions & { slot: 'prompt' }): Promise<PromptPluginInstance>;
export function createPluginInstance(wasm: Uint8Array | CompiledPlugin, options: PluginInstanceOptions): Promise<PluginInstance>;
export async function createPluginInstance(wasm: Uint8Array | CompiledPlugin, options: PluginInstanceOptions): Promise<PluginInstance> {
  const compiled = wasm instanceof Uint8Array ? await compilePlugin(wasm) : wasm;
  const limits = resolveLimits(options, compiled.builtin === true);
  assertSlotExport(compiled, options.slot);
  const sandbox = new Sandbox(options, limits, compiled);
  const { capabilities } = options;
  await sandbox.load(
    compiled.module,
    options.onInternalError ?? ((name, error) => capabilities.log('error', `host function ${name} failed: ${error instanceof Error ? error.message : String(error)}`)),
  );
  if (compiled.deferredStart) await sandbox.runDeferredStart();
  const close = () => sandbox.close();
  if (options.slot === 'retrieval') {
    return {
      slot: 'retrieval',
      sha256: compiled.sha256,
      retrieve: async (input) => sandbox.enqueue(encodeRetrieveInput(input), (output) => decodeRetrieveOutput(output, input.k)),
      get memoryBytes() {
        return sandbox.memoryBytes;
      },
      close,
    };
  }
  return {
    slot: 'prompt',
    sha256: compiled.sha256,
    get memoryBytes() {
      return sandbox.memoryBytes;
    },
    assemble: async (input) => {
      const chunkIds = new Set(input.chunks.map((chunk) => chunk.chunkId));
      return sandbox.enqueue(encodeAssembleInput(input), (output) => decodeAssembleOutput(output, chunkIds));
    },
    close,
  };
}
