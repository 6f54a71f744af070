/**
 * The `ctx:host/v1` host functions, built from one {@link PluginCapabilities} object. They are
 * closures over that object alone (which is itself a closure over one session's TenantScope), so
 * the ABI needs no tenant parameter and a plugin can reach only its own session's tenant.
 *
 * A host function never throws into the plugin: every failure becomes an error status the plugin
 * can read (a throw would trap the plugin, and in Extism's worker mode poison it for good).
 */
import { ERROR_CATALOG, HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import {
  AbiDecodeError,
  decodeKvSetRequest,
  decodeSearchRequest,
  decodeStringRequest,
  encodeChunkResponse,
  encodeEmbedResponse,
  encodeEmptyResponse,
  encodeErrorResponse,
  encodeKvGetResponse,
  encodeSearchResponse,
  HostStatus,
  type HostStatusCode,
} from './abi.ts';
import type { PluginCapabilities } from './capabilities.ts';
import type { GuestMemory, HostFunction } from './extism.ts';
import type { HOST_FUNCTION_NAMES } from './module-cache.ts';

/** Per-call accounting shared between the host functions and the instance that runs the call. */
export interface HostCallBudget {
  /** Host function calls made during the current plugin call. */
  calls: number;
  /** Set when the plugin broke a per-call limit; the call fails with it whatever the plugin does next. */
  failure: HostError | null;
  /**
   * `performance.now()` at which the watchdog stops the call (Infinity without one). Host
   * functions refuse to start within LIMITS.pluginHostCallMarginMs of it (see watchdog.ts).
   */
  deadlineAt: number;
}

/** How the host functions of one instance account and report. */
export interface HostFunctionOptions {
  /** The instance's per-call accounting; the instance resets it before each call. */
  budget: HostCallBudget;
  hostCallsPerCallMax: number;
  hostCallInputBytesMax: number;
  /**
   * Receives errors that are not HostErrors (host bugs, storage faults). The plugin only sees
   * `internal error`; the details belong in the host's log.
   */
  onInternalError: (functionName: string, error: unknown) => void;
  /**
   * The plugin's fuel, for a metered module: host work is charged to it by the time it takes (a
   * plugin cannot make the host compute for it for free), and a plugin with no fuel left gets no
   * more host work done.
   */
  fuel?: HostCallFuel;
}

/** A metered plugin call's fuel, as the host functions charge it. */
export interface HostCallFuel {
  /** Whether the call has spent its budget. */
  spent(): boolean;
  /** Charges `fuel` for host work done (see {@link HOST_CALL_FUEL}). */
  charge(fuel: number): void;
}

/**
 * What host work costs the plugin, in fuel: a fixed part, a part per byte of request and response,
 * and (for index_search) a part per index row searched. Counted from the sizes of the work, never
 * from the clock, so a call's budget does not depend on how loaded the machine is. Calibrated on the
 * reference 2-core machine against the worst-case metered loop (about 2,000,000 fuel per ms):
 * embedding costs ~170 fuel per character (16,000 characters: 1.4 ms), a search ~40 per row at 256
 * dimensions (10,000 rows: 0.2 ms with the vectors in cache; so the built-in retrieval's two searches
 * fit the default budget even at LIMITS.chunksPerTenantMax), and a kv write's own work ~0.1 ms (its
 * commit then waits for the disk, which is not CPU and not charged; a plugin at the smallest budget
 * still gets a few writes in).
 */
export const HOST_CALL_FUEL: Readonly<Record<HostFunctionName, { fixed: number; perByte: number; perRow: number }>> = {
  index_search: { fixed: 20_000, perByte: 50, perRow: 40 },
  chunk_get: { fixed: 10_000, perByte: 4, perRow: 0 },
  kv_get: { fixed: 20_000, perByte: 4, perRow: 0 },
  kv_set: { fixed: 200_000, perByte: 8, perRow: 0 },
  embed: { fixed: 10_000, perByte: 200, perRow: 0 },
};

type HostFunctionName = (typeof HOST_FUNCTION_NAMES)[number];
type Handler = (request: Uint8Array) => Uint8Array;

/** A failure the plugin caused or may retry, as the status it reads back. */
class StatusError extends Error {
  constructor(readonly status: Exclude<HostStatusCode, 0>, message: string) {
    super(message);
  }
}

/**
 * Maps an error from a capability to a status. HostError messages are wire-safe by contract, so
 * the plugin may see them; anything else is an internal fault whose details stay in the host. A
 * HostError's status is its catalog entry's `abi` column; a code without one (no host function
 * should raise it) reads `internal` and is reported like any other internal fault.
 */
function statusOf(error: unknown): { status: Exclude<HostStatusCode, 0>; message: string; report: boolean } {
  if (error instanceof StatusError) return { status: error.status, message: error.message, report: false };
  if (error instanceof AbiDecodeError) return { status: HostStatus.badRequest, message: error.message, report: false };
  if (error instanceof HostError) {
    const abi = ERROR_CATALOG[error.code].abi;
    return abi === null ? { status: HostStatus.internal, message: 'internal error', report: true } : { status: HostStatus[abi], message: error.message, report: false };
  }
  return { status: HostStatus.internal, message: 'internal error', report: true };
}

function handlers(capabilities: PluginCapabilities, limits: HostFunctionOptions): Record<HostFunctionName, Handler> {
  return {
    index_search: (request) => {
      const search = decodeSearchRequest(request);
      return encodeSearchResponse(capabilities.indexSearch(search).slice(0, search.k));
    },
    chunk_get: (request) => {
      const chunkId = decodeStringRequest(request, 'chunkId', limits.hostCallInputBytesMax);
      const chunk = capabilities.chunkGet(chunkId);
      if (chunk === undefined) throw new StatusError(HostStatus.notFound, 'chunk_get: no chunk has that id');
      return encodeChunkResponse(chunk);
    },
    kv_get: (request) => {
      const key = decodeStringRequest(request, 'key', LIMITS.kvKeyBytesMax);
      if (key.length === 0) throw new AbiDecodeError('key: must not be empty');
      return encodeKvGetResponse(capabilities.kvGet(key));
    },
    kv_set: (request) => {
      const { key, value } = decodeKvSetRequest(request);
      capabilities.kvSet(key, value);
      return encodeEmptyResponse();
    },
    embed: (request) => {
      const text = decodeStringRequest(request, 'text', limits.hostCallInputBytesMax);
      if (text.length > LIMITS.embedTextCharsMax) {
        throw new StatusError(HostStatus.limit, `text: ${text.length} characters, over the limit of ${LIMITS.embedTextCharsMax}`);
      }
      return encodeEmbedResponse(capabilities.embed(text));
    },
  };
}

/** Wraps a handler with the call cap, the request read, the fuel charge, the response store and the catch-all. */
function guarded(name: HostFunctionName, handler: Handler, options: HostFunctionOptions, rows: () => number): HostFunction {
  const price = HOST_CALL_FUEL[name];
  const { budget } = options;
  return (memory: GuestMemory, offset: unknown): bigint => {
    let response: Uint8Array;
    try {
      budget.calls += 1;
      if (budget.calls > options.hostCallsPerCallMax) {
        budget.failure ??= new HostError(
          'PLUGIN_HOST_CALL_LIMIT',
          `the plugin made more than ${options.hostCallsPerCallMax} host function calls in one call (call ${budget.calls} was ${name})`,
        );
        throw new StatusError(HostStatus.limit, `${name}: more than ${options.hostCallsPerCallMax} host calls in one plugin call`);
      }
      if (performance.now() > budget.deadlineAt - LIMITS.pluginHostCallMarginMs) {
        budget.failure ??= new HostError('PLUGIN_TIMEOUT', `the plugin called ${name} within ${LIMITS.pluginHostCallMarginMs} ms of its wall-clock limit; the call is stopped`);
        throw new StatusError(HostStatus.limit, `${name}: the call is at its wall-clock limit`);
      }
      if (options.fuel?.spent() === true) throw new StatusError(HostStatus.limit, `${name}: the call has spent its fuel budget`);
      const read = memory.readBlock(offset, options.hostCallInputBytesMax);
      if (!read.ok) throw new StatusError(read.reason === 'too_large' ? HostStatus.limit : HostStatus.badRequest, `${name}: ${read.message}`);
      let answered: Uint8Array | undefined;
      try {
        answered = handler(read.bytes);
      } finally {
        const bytes = read.bytes.byteLength + (answered?.byteLength ?? 0);
        options.fuel?.charge(price.fixed + price.perByte * bytes + price.perRow * (price.perRow === 0 ? 0 : rows()));
      }
      response = answered;
    } catch (error: unknown) {
      const { status, message, report } = statusOf(error);
      if (report) reportInternal(options, name, error);
      response = encodeErrorResponse(status, message.startsWith(`${name}:`) ? message : `${name}: ${message}`);
    }
    // 0 tells the SDK there is no response at all; it can only happen when Extism cannot allocate.
    return memory.storeBlock(response);
  };
}

function reportInternal(options: HostFunctionOptions, name: string, error: unknown): void {
  try {
    options.onInternalError(name, error);
  } catch {
    // Reporting must not turn an error status into a trap.
  }
}

/**
 * Builds the `ctx:host/v1` functions for one plugin instance.
 *
 * @example
 * ```ts
 * const budget = { calls: 0, failure: null, deadlineAt: Number.POSITIVE_INFINITY };
 * const functions = createHostFunctions(capabilities, {
 *   budget, hostCallsPerCallMax: 256, hostCallInputBytesMax: 262144, onInternalError: (name, error) => log(name, error),
 * });
 * ```
 */
export function createHostFunctions(capabilities: PluginCapabilities, options: HostFunctionOptions): Record<HostFunctionName, HostFunction> {
  const table = handlers(capabilities, options);
  const rows = (): number => capabilities.indexRows?.() ?? 0;
  return {
    index_search: guarded('index_search', table.index_search, options, rows),
    chunk_get: guarded('chunk_get', table.chunk_get, options, rows),
    kv_get: guarded('kv_get', table.kv_get, options, rows),
    kv_set: guarded('kv_set', table.kv_set, options, rows),
    embed: guarded('embed', table.embed, options, rows),
  };
}
