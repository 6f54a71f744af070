/**
 * The HTTP API as the pages call it: same origin, the key as a bearer token, errors decoded from
 * the host's `{error: {code, message}}` into an {@link ApiError} a page can show.
 */

/** An error the API returned (or a network failure, code `NETWORK`). */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, message: string, status: number) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

/** Options of {@link api}. */
export interface ApiOptions {
  method?: string;
  key?: string;
  /** A JSON body (sent as application/json). */
  json?: unknown;
  /** A raw body with its content type (plugin uploads). */
  body?: Blob | ArrayBuffer;
  contentType?: string;
}

/**
 * Calls the API and returns its JSON body.
 * @throws {ApiError} with the host's code on an error status, or `NETWORK` when the host is unreachable.
 */
export async function api<T = unknown>(path: string, options: ApiOptions = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (options.key !== undefined) headers['authorization'] = `Bearer ${options.key}`;
  let body: BodyInit | undefined;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.body !== undefined) {
    headers['content-type'] = options.contentType ?? 'application/octet-stream';
    body = options.body;
  }
  let response: Response;
  try {
    response = await fetch(path, { method: options.method ?? 'GET', headers, ...(body === undefined ? {} : { body }) });
  } catch {
    throw new ApiError('NETWORK', 'the host could not be reached', 0);
  }
  const text = await response.text();
  return decode<T>(response.status, text);
}

/**
 * Posts a JSON body, reporting upload progress (fetch cannot): `onProgress(sent, total)` in bytes.
 * @throws {ApiError} as {@link api}.
 */
export function postWithProgress<T = unknown>(path: string, key: string, json: string, onProgress: (sent: number, total: number) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', path);
    request.setRequestHeader('authorization', `Bearer ${key}`);
    request.setRequestHeader('content-type', 'application/json');
    request.upload.addEventListener('progress', (event) => onProgress(event.loaded, event.lengthComputable ? event.total : json.length));
    request.addEventListener('load', () => {
      try {
        resolve(decode<T>(request.status, request.responseText));
      } catch (error) {
        reject(error);
      }
    });
    request.addEventListener('error', () => reject(new ApiError('NETWORK', 'the host could not be reached', 0)));
    request.send(json);
  });
}

function decode<T>(status: number, text: string): T {
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new ApiError('HTTP_BODY_INVALID', `the host answered ${status} with a body that is not JSON`, status);
  }
  if (status >= 200 && status < 300) return parsed as T;
  const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  throw new ApiError(String(error?.code ?? `HTTP_${status}`), String(error?.message ?? `the host answered ${status}`), status);
}
