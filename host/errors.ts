/**
 * The one error catalog. Every error a user, a tenant or a plugin can cause is a {@link HostError}
 * with a stable, area-prefixed code from {@link ERROR_CATALOG}; each code knows its HTTP status,
 * where a WebSocket must close because of it its close code, and the status a plugin reads when a
 * host function fails with it. Unknown errors never reach the wire
 * with their message: they become `INTERNAL` and a log line (see {@link toWireError}).
 */

/** A failure status of the plugin ABI, by name (sandbox/abi.ts HostStatus holds the byte values). */
export type PluginStatusName = 'badRequest' | 'notFound' | 'limit' | 'internal';

/** How one error code shows on the wire. */
export interface ErrorSpec {
  /** HTTP status for the HTTP API. */
  readonly http: number;
  /** WebSocket close code when the error breaks a hard limit; `null` = an `error` frame only. */
  readonly close: 1008 | 1009 | 1011 | 1012 | 1013 | null;
  /**
   * The status a plugin reads when a host function fails with this code (ABI `ctx:host/v1`, see
   * sandbox/abi.ts HostStatus), or `null` for a code no host function can raise: if one does
   * anyway, it is a host bug, and the plugin reads `internal` while the host logs the error.
   */
  readonly abi: PluginStatusName | null;
  /** One sentence for the README's error table. */
  readonly doc: string;
}

/** Every error code the host can emit, grouped by area. */
export const ERROR_CATALOG = {
  AUTH_MISSING_KEY: { http: 401, close: null, abi: null, doc: 'No API key or ticket was presented.' },
  AUTH_INVALID_KEY: { http: 401, close: null, abi: null, doc: 'The API key or ticket is unknown, revoked or expired.' },
  CONFIG_INVALID: { http: 400, close: null, abi: null, doc: 'A setting is unknown or out of range; the message names it.' },
  TENANT_NOT_FOUND: { http: 404, close: null, abi: 'notFound', doc: 'No tenant has that id.' },
  TENANT_SESSION_LIMIT: { http: 429, close: 1008, abi: null, doc: 'The tenant already has its maximum number of live sessions.' },
  TENANT_INVALID: { http: 400, close: null, abi: null, doc: 'A tenant name or id is malformed.' },
  TENANT_MEMORY_LIMIT: { http: 429, close: 1013, abi: null, doc: "The host's plugin memory budget is spent and this tenant holds the most of it (or its own share is full); its new sessions wait until some end." },
  TENANT_INGEST_RATE_LIMIT: { http: 429, close: null, abi: null, doc: 'The tenant sent more document text in the last minute than its ingest quota allows, or has too many ingests in progress.' },
  TENANT_ASK_RATE_LIMIT: { http: 429, close: null, abi: null, doc: 'The tenant asked more questions in the last minute than its quota allows.' },
  TENANT_EXISTS: { http: 409, close: null, abi: null, doc: 'An import names a tenant, an API key or a canary this host already has; nothing was imported.' },
  TENANT_KEY_LIMIT: { http: 409, close: null, abi: null, doc: 'The tenant already has its maximum number of active API keys; revoke one first.' },
  TENANT_EXPORT_INVALID: { http: 400, close: null, abi: null, doc: 'A tenant export file is malformed, truncated or altered, the export key does not open it, or it holds a record the API would refuse (the message names it); nothing was imported.' },
  STORAGE_MASTER_KEY: { http: 500, close: null, abi: 'internal', doc: 'The master key is missing, malformed or does not unwrap a tenant key.' },
  STORAGE_ENV_LIMIT: { http: 503, close: 1011, abi: 'limit', doc: 'Every open tenant environment is in use; try again shortly.' },
  STORAGE_QUOTA: { http: 413, close: null, abi: 'limit', doc: 'The write would exceed a storage quota.' },
  STORAGE_FAILED: { http: 500, close: null, abi: 'internal', doc: 'The storage engine refused an operation.' },
  STORAGE_BUSY: { http: 503, close: null, abi: null, doc: 'The master key is being rotated and the registry takes no writes for that moment; try again shortly.' },
  STORAGE_HOST_RUNNING: { http: 409, close: null, abi: null, doc: 'The command needs the host stopped, because the host holds the registry open; use its HTTP route instead.' },
  DOCUMENT_INVALID: { http: 400, close: null, abi: null, doc: 'A document in the request body is malformed; nothing was stored.' },
  DOCUMENT_NOT_FOUND: { http: 404, close: null, abi: 'notFound', doc: 'No document has that id in this tenant.' },
  HTTP_BODY_TOO_LARGE: { http: 413, close: null, abi: null, doc: 'The request body is larger than its limit.' },
  HTTP_BODY_INVALID: { http: 400, close: null, abi: null, doc: 'The request body is not valid JSON of the expected shape.' },
  HTTP_NOT_FOUND: { http: 404, close: null, abi: null, doc: 'No route has that method and path.' },
  HTTP_UNSUPPORTED_MEDIA: { http: 415, close: null, abi: null, doc: 'The request body has the wrong content type.' },
  HTTP_QUERY_INVALID: { http: 400, close: null, abi: null, doc: 'A query parameter is malformed or out of range; the message names it.' },
  HTTP_PATH_INVALID: { http: 400, close: null, abi: null, doc: 'A path segment is not valid percent-encoded UTF-8; the message names it.' },
  PROTOCOL_BAD_ENCODING: { http: 400, close: null, abi: null, doc: 'A frame is not valid msgpack (binary) or JSON (text).' },
  PROTOCOL_BAD_FRAME: { http: 400, close: null, abi: null, doc: 'A frame is not an object of a known type with the right fields.' },
  PROTOCOL_UNKNOWN_TYPE: { http: 400, close: null, abi: null, doc: 'A frame has a type the host does not know.' },
  PROTOCOL_TOO_MANY_IN_FLIGHT: { http: 429, close: null, abi: null, doc: 'The session already has its maximum number of asks in flight.' },
  PROTOCOL_DUPLICATE_ID: { http: 400, close: null, abi: null, doc: 'An ask reuses the id of an ask still in flight.' },
  PROTOCOL_RATE_LIMIT: { http: 429, close: 1008, abi: null, doc: 'Too many frames too fast; the connection closes.' },
  PLUGIN_FAILED: { http: 500, close: null, abi: null, doc: 'A plugin call trapped or returned an error; the instance is replaced.' },
  PLUGIN_BAD_OUTPUT: { http: 500, close: null, abi: null, doc: 'A plugin returned output that does not decode as its slot requires.' },
  PLUGIN_OUTPUT_LIMIT: { http: 500, close: null, abi: null, doc: 'A plugin call returned more bytes than the output limit.' },
  PLUGIN_HOST_CALL_LIMIT: { http: 500, close: null, abi: null, doc: 'A plugin call made more host-function calls than allowed.' },
  PLUGIN_MEMORY_LIMIT: { http: 500, close: null, abi: null, doc: 'A plugin call allocated more Extism host memory than allowed.' },
  PLUGIN_LOAD_FAILED: { http: 500, close: null, abi: null, doc: 'A plugin module could not be instantiated.' },
  PLUGIN_BUSY: { http: 503, close: null, abi: null, doc: 'The session plugin queue (or the upload metering queue) is full.' },
  PLUGIN_FUEL_EXHAUSTED: { http: 500, close: null, abi: null, doc: 'A plugin call or start function spent its whole fuel (CPU) budget; the instance is replaced.' },
  PLUGIN_TIMEOUT: { http: 500, close: null, abi: null, doc: 'The watchdog stopped a plugin call that ran past its wall-clock limit; the instance is replaced.' },
  PLUGIN_INVALID: { http: 422, close: null, abi: null, doc: 'An uploaded plugin failed vetting; the message names what was wrong. Nothing was stored.' },
  PLUGIN_NOT_FOUND: { http: 404, close: null, abi: null, doc: 'The slot has no uploaded version to roll back to or remove.' },
  MODEL_FAILED: { http: 502, close: null, abi: null, doc: 'The model provider returned an error or an unreadable stream.' },
  MODEL_TIMEOUT: { http: 504, close: null, abi: null, doc: 'The model provider did not answer within its time limit.' },
  EMBED_FAILED: { http: 502, close: null, abi: 'badRequest', doc: 'The embeddings provider returned an error or an unreadable response, or did not answer in time.' },
  TRAINING_CONSENT_MISSING: { http: 403, close: null, abi: null, doc: 'A tenant named in a training pool has not opted in to pooling; nothing was pooled.' },
  TRAINING_POOL_INVALID: { http: 400, close: null, abi: null, doc: 'A training pool request names no tenant, a tenant twice or too many tenants, or would hold too many examples.' },
  LEAK_BLOCKED: { http: 500, close: null, abi: null, doc: 'The guard found material in the context that was not resolved for this tenant; nothing was sent.' },
  CELL_UNAVAILABLE: { http: 503, close: 1013, abi: null, doc: 'The cell serving this tenant is restarting or busy moving it; try again shortly.' },
  // Fleet: tenants sharded over hosts behind a router, and moved between them (host/fleet/).
  TENANT_MOVED: { http: 421, close: 1012, abi: 'limit', doc: 'This host does not serve the tenant now (it moved to another host, or is still arriving here); retry through the router, which reaches the host that serves it.' },
  TENANT_FROZEN: { http: 503, close: null, abi: 'limit', doc: 'The tenant is being moved to another host and takes no writes for that moment; reads and chats go on. Retry shortly.' },
  TENANT_STATE_CONFLICT: { http: 409, close: null, abi: null, doc: "A move step does not fit the tenant's state on this host (exporting a tenant that is not frozen, shredding one that still serves here); nothing was changed." },
  FLEET_INVALID: { http: 400, close: null, abi: null, doc: 'A fleet request names an unknown or malformed host, or moves a tenant to the host it is on.' },
  FLEET_MOVE_CONFLICT: { http: 409, close: null, abi: null, doc: 'The tenant already has a move in progress, or the fleet runs its maximum of moves at once; resume or roll back that one first.' },
  FLEET_HOST_UNAVAILABLE: { http: 503, close: null, abi: null, doc: 'The fleet controller could not reach a host or the router for a step; a move stays in the journal to be resumed or rolled back.' },
  INTERNAL: { http: 500, close: null, abi: 'internal', doc: 'An unexpected error; the host logged it.' },
} as const satisfies Record<string, ErrorSpec>;

/** A stable error code from the catalog. */
export type ErrorCode = keyof typeof ERROR_CATALOG;

/**
 * An error the host reports to a caller. `message` is safe to send on the wire: it names what was
 * wrong (the parameter, the observed and the allowed value) and never holds tenant data.
 */
export class HostError extends Error {
  /** The stable code, e.g. `PROTOCOL_BAD_FRAME`. */
  readonly code: ErrorCode;
  /** Extra, wire-safe detail (for example which setting or which document index). */
  readonly detail: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, detail?: Record<string, unknown>) {
    super(message);
    this.name = 'HostError';
    this.code = code;
    this.detail = detail;
  }

  /** The HTTP status this error maps to. */
  get httpStatus(): number {
    return ERROR_CATALOG[this.code].http;
  }

  /** The WebSocket close code this error forces, or `null` when the connection stays up. */
  get closeCode(): 1008 | 1009 | 1011 | 1012 | 1013 | null {
    return ERROR_CATALOG[this.code].close;
  }
}

/** The shape of an error on the wire (HTTP body and WebSocket `error` frame alike). */
export interface WireError {
  code: ErrorCode;
  message: string;
  detail?: Readonly<Record<string, unknown>>;
}

/**
 * Maps any thrown value to what may be sent to a client. Known errors carry their own wire form;
 * anything else becomes `INTERNAL` and is passed to `onUnknown` so it can be logged.
 */
export function toWireError(error: unknown, onUnknown?: (error: unknown) => void): { wire: WireError; error: HostError } {
  if (error instanceof HostError) {
    const wire: WireError = { code: error.code, message: error.message };
    if (error.detail !== undefined) wire.detail = error.detail;
    return { wire, error };
  }
  onUnknown?.(error);
  const internal = new HostError('INTERNAL', 'internal error; the host logged it');
  return { wire: { code: 'INTERNAL', message: internal.message }, error: internal };
}
