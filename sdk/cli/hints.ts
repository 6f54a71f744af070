/**
 * The next step for each error code a vendor meets through `ctx-plugin`: the host's codes (raised
 * by its vetting and sandbox locally, or returned by a host on publish and ask) and the client's.
 * The CLI's own errors carry their hint themselves (errors.ts).
 */
import type { ChatErrorCode } from '../client/errors.ts';

const HINTS: Partial<Record<ChatErrorCode, string>> = {
  AUTH_MISSING_KEY: 'pass --key, or set CTX_API_KEY, to the tenant API key (ctx_…)',
  AUTH_INVALID_KEY: 'check --key / CTX_API_KEY: it must be a live API key of the tenant on that host',
  CONFIG_INVALID: 'fix "settings" in ctx-plugin.json; the message names the setting and its range',
  DOCUMENT_INVALID: 'fix the fixture documents; the message names the document and the field',
  PLUGIN_INVALID: 'change what the message names, rebuild, and run `ctx-plugin check` until it passes',
  PLUGIN_FAILED: 'the plugin trapped or aborted; its log lines above say where (an uncaught throw logs its message and line)',
  PLUGIN_BAD_OUTPUT: 'write the output with the SDK (writeRetrieveOutput / writeAssembleOutput); the message names the bad field',
  PLUGIN_OUTPUT_LIMIT: 'return fewer or shorter items: one call may output at most 1 MiB',
  PLUGIN_HOST_CALL_LIMIT: 'make fewer host calls per call (at most 256): batch, or search once with a larger k',
  PLUGIN_MEMORY_LIMIT: 'allocate less: the plugin memory is capped at 16 MiB and Extism host memory at 16 MiB per call',
  PLUGIN_FUEL_EXHAUSTED: 'look for an unbounded loop, or raise "pluginFuelPerCall" in the settings (the tenant may allow up to 1,000,000,000)',
  PLUGIN_TIMEOUT: 'the call ran past the 2 s watchdog; look for a loop that never ends',
  PLUGIN_LOAD_FAILED: 'the module could not be instantiated; run `ctx-plugin check` for the reason',
  PLUGIN_BUSY: 'the host is metering other uploads; try again in a few seconds',
  STORAGE_QUOTA: 'the tenant keeps 4 versions per slot and 48 MiB of modules; DELETE /v1/plugins/<slot> or roll back to free room',
  LEAK_BLOCKED: 'a message referenced a chunk the host did not resolve for this ask; reference only chunks of the input',
  HTTP_BODY_TOO_LARGE: 'the module is over the 4 MiB upload limit; build without --debug, and drop unused code',
  HTTP_NOT_FOUND: 'check --url: it must be the host base URL, e.g. http://127.0.0.1:8787',
  CLIENT_CONNECT_FAILED: 'is the host running at --url? Start one with `npm start` in the ctx-host checkout',
  CLIENT_CONNECTION_LOST: 'the host went away mid-answer; ask again',
  TENANT_SESSION_LIMIT: 'the tenant has its maximum of live sessions; close some, then ask again',
  TENANT_ASK_RATE_LIMIT: 'the tenant is over its asks per minute; wait a minute',
};

/**
 * The next step for `code`, or `undefined` when the message says enough.
 *
 * @example
 * ```ts
 * const next = hintFor('PLUGIN_INVALID'); // "change what the message names, …"
 * ```
 */
export function hintFor(code: string): string | undefined {
  return HINTS[code as ChatErrorCode];
}
