/**
 * HTTP calls to a host's API with the client library's typed errors: an error body
 * (`{"error": {code, message}}`) becomes a ChatError with the host's code and the HTTP status; a
 * host that does not answer becomes CLIENT_CONNECT_FAILED. Uses the global `fetch` (Node 18+,
 * browsers).
 */
import { ChatError, errorFromBody } from './errors.ts';

/** Options of {@link hostRequest}. */
export interface HostRequestOptions {
  method: string;
  apiKey?: string;
  /** A JSON string, or bytes (with `contentType`). */
  body?: string | Uint8Array;
  /** Default `application/json` when there is a body. */
  contentType?: string;
}

/**
 * Sends one request to `baseUrl` + `path` and returns the parsed JSON body of a 2xx answer.
 *
 * @example
 * ```ts
 * const report = await hostRequest(url, '/v1/plugins/retrieval', { method: 'PUT', apiKey, body: wasm, contentType: 'application/wasm' });
 * ```
 * @throws {ChatError} the host's code with `status` for an error answer; CLIENT_CONNECT_FAILED when
 *   nothing answers; CLIENT_BAD_RESPONSE when a 2xx body is not JSON.
 */
export async function hostRequest(baseUrl: string, path: string, options: HostRequestOptions): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (options.apiKey !== undefined) headers['authorization'] = `Bearer ${options.apiKey}`;
  if (options.body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const target = new URL(path, baseUrl);
  let response: Response;
  try {
    response = await fetch(target, { method: options.method, headers, ...(options.body === undefined ? {} : { body: options.body }) });
  } catch (error: unknown) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new ChatError('CLIENT_CONNECT_FAILED', `no host answered at ${target.origin} (${cause?.code ?? cause?.message ?? String(error)})`);
  }
  const text = await response.text();
  if (!response.ok) throw errorFromBody(response.status, text);
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new ChatError('CLIENT_BAD_RESPONSE', `${options.method} ${target.pathname} answered ${response.status} with a body that is not JSON`, { status: response.status });
  }
}
