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
}

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

/** Wraps a handler with the call cap, the request read, the response store and the catch-all. */
function guarded(name: HostFunctionName, handler: Handler, options: HostFunctionOptions): HostFunction {
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
      const read = memory.readBlock(offset, options.hostCallInputBytesMax);
      if (!read.ok) throw new StatusError(read.reason === 'too_large' ? HostStatus.limit : HostStatus.badRequest, `${name}: ${read.message}`);
      response = handler(read.bytes);
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
  return {
    index_search: guarded('index_search', table.index_search, options),
    chunk_get: guarded('chunk_get', table.chunk_get, options),
    kv_get: guarded('kv_get', table.kv_get, options),
    kv_set: guarded('kv_set', table.kv_set, options),
    embed: guarded('embed', table.embed, options),
  };
}
