/**
 * A model behind any OpenAI-compatible `POST /chat/completions` endpoint with `stream: true`
 * (vLLM, Ollama, llama.cpp's server, OpenAI itself). The answer arrives as Server-Sent Events whose
 * `choices[0].delta.content` pieces are yielded as they come; the stream must end with
 * `data: [DONE]`, otherwise the answer is incomplete and the stream fails rather than ending quietly.
 * Uses Node's global fetch (undici), so it adds no dependency.
 */
import { HostError } from '../errors.ts';
import { checkApiKey, invalidSetting, isModelName, MODEL_NAME_CHARS_MAX, resolveEndpoint } from './endpoint.ts';
import { LIMITS } from '../limits.ts';
import type { ChatModel, ModelRequest, ModelRouting } from './model.ts';
import { type SseEvent, createSseDecoder } from './sse.ts';

/** How to reach the provider. Env vars (MODEL_URL, MODEL_NAME, MODEL_API_KEY) are read by config, not here. */
export interface OpenAIModelOptions {
  /** Base URL of the API, e.g. `http://127.0.0.1:8000/v1`; `/chat/completions` is appended. */
  url: string;
  /** The default model name, used when a request names none. */
  model: string;
  /** Sent as `Authorization: Bearer <apiKey>`; never appears in an error message. */
  apiKey?: string;
  /** Wall-clock budget for one whole answer, first byte included; at most LIMITS.modelTimeoutMsMax. */
  timeoutMs: number;
}

/** Characters of a provider's error text quoted in an error message: enough to diagnose, no more. */
const ERROR_EXCERPT_CHARS_MAX = 200;

/** Bytes of an error response body read to find its message; the rest is discarded unread. */
const ERROR_BODY_BYTES_MAX = 4096;

const OPTION_KEYS: ReadonlySet<string> = new Set(['url', 'model', 'apiKey', 'timeoutMs']);

/** Validated options in the form a request needs. */
interface ProviderSettings {
  readonly endpoint: string;
  /** The endpoint as error messages show it: no query string, no credentials. */
  readonly shownUrl: string;
  readonly model: string;
  readonly apiKey: string | undefined;
  readonly timeoutMs: number;
}

/** What the streams of one model share: the controllers of answers in flight, and whether it is closed. */
interface ClientState {
  readonly inFlight: Set<AbortController>;
  closed: boolean;
}

/** One answer in flight: its abort controller (timeout, caller's signal, close) and how far it got. */
interface Call {
  readonly stop: AbortController;
  phase: 'connect' | 'stream';
  dispose(): void;
}

/**
 * Creates a model that streams from an OpenAI-compatible server. Its id is
 * `openai:<model>` or, with a LoRA adapter, `openai:<model>@<adapter>`.
 * @throws {HostError} CONFIG_INVALID when an option is unknown, missing or out of range.
 */
export function createOpenAIModel(options: OpenAIModelOptions): ChatModel {
  const settings = readOptions(options);
  const state: ClientState = { inFlight: new Set(), closed: false };
  const idFor = (routing: ModelRouting): string => openAIModelId(routing.model ?? settings.model, routing.adapter);
  return {
    id: idFor({}),
    idFor,
    stream: (request: ModelRequest) => streamCompletion(settings, state, request),
    close: async () => {
      state.closed = true;
      for (const stop of state.inFlight) stop.abort(new HostError('MODEL_FAILED', 'model client closed while an answer was streaming'));
    },
  };
}

/**
 * The cache-namespace id of one routing: provider, model name and, when set, the adapter.
 * @throws never
 */
export function openAIModelId(model: string, adapter: string | undefined): string {
  return adapter === undefined ? `openai:${model}` : `openai:${model}@${adapter}`;
}

/** Checks every option once, at creation, so a bad config fails at startup rather than per ask. */
function readOptions(options: OpenAIModelOptions): ProviderSettings {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw invalidSetting(key, `unknown option '${key}' for model provider 'openai'`);
  }
  const { endpoint, shownUrl } = resolveEndpoint(options.url, 'chat/completions', { subject: '', keyHint: 'apiKey' });
  checkModelName('model', options.model);
  const { apiKey, timeoutMs } = options;
  checkApiKey(apiKey, 'apiKey must be 1 to 1024 printable ASCII characters without spaces');
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > LIMITS.modelTimeoutMsMax) {
    throw invalidSetting('timeoutMs', `timeoutMs must be an integer from 1 to ${LIMITS.modelTimeoutMsMax} (modelTimeoutMsMax), got ${String(timeoutMs)}`);
  }
  return { endpoint, shownUrl, model: options.model, apiKey, timeoutMs };
}

/** @throws {HostError} CONFIG_INVALID naming `setting` when `name` is not a usable model or adapter name. */
function checkModelName(setting: string, name: unknown): void {
  if (!isModelName(name)) {
    throw invalidSetting(setting, `${setting} must be 1 to ${MODEL_NAME_CHARS_MAX} characters without spaces, control characters or '@'`);
  }
}

/**
 * Streams one answer. Every failure surfaces as a HostError (MODEL_FAILED or MODEL_TIMEOUT), except
 * an abort by the caller's signal, which throws `signal.reason` like fetch does.
 */
async function* streamCompletion(settings: ProviderSettings, state: ClientState, request: ModelRequest): AsyncGenerator<string> {
  request.signal.throwIfAborted();
  if (state.closed) throw new HostError('MODEL_FAILED', 'model client is closed');
  if (request.model !== undefined) checkModelName('model', request.model);
  if (request.adapter !== undefined) checkModelName('adapter', request.adapter);
  const call = startCall(settings, state, request.signal);
  try {
    const response = await postCompletion(settings, request, call.stop.signal);
    call.phase = 'stream';
    await checkResponse(settings, response);
    if (response.body === null) throw new HostError('MODEL_FAILED', 'model stream ended before [DONE]: the response had no body');
    yield* readAnswer(response.body, call.stop.signal);
  } catch (error) {
    throw explainFailure(error, call, settings);
  } finally {
    call.dispose();
  }
}

/**
 * Ties the answer's one AbortController to its three reasons to stop. Each abort carries its own
 * reason (a MODEL_TIMEOUT error, the caller's reason, a close error), so whatever fetch or the body
 * reader throws afterwards, the reason tells what really happened.
 */
function startCall(settings: ProviderSettings, state: ClientState, signal: AbortSignal): Call {
  const stop = new AbortController();
  const call: Call = { stop, phase: 'connect', dispose };
  const onAbort = (): void => stop.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => stop.abort(timeoutError(settings, call.phase)), settings.timeoutMs);
  state.inFlight.add(stop);
  function dispose(): void {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    state.inFlight.delete(stop);
  }
  return call;
}

function timeoutError(settings: ProviderSettings, phase: Call['phase']): HostError {
  const what = phase === 'connect' ? 'sent no response' : 'did not finish its answer';
  return new HostError('MODEL_TIMEOUT', `model provider at ${settings.shownUrl} ${what} within ${settings.timeoutMs} ms (timeoutMs)`, {
    timeoutMs: settings.timeoutMs,
  });
}

/**
 * Sends the request. With an adapter, the adapter's name goes in `model`: vLLM serves each LoRA
 * adapter (`--lora-modules name=path`) as a model of that name, and the OpenAI API has no other
 * field for it. The base model name then only distinguishes cache namespaces (see openAIModelId).
 */
function postCompletion(settings: ProviderSettings, request: ModelRequest, signal: AbortSignal): Promise<Response> {
  const model = request.adapter ?? request.model ?? settings.model;
  // Only role and content: whatever else a caller's message objects carry stays in the host.
  const messages = request.messages.map(({ role, content }) => ({ role, content }));
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (settings.apiKey !== undefined) headers['authorization'] = `Bearer ${settings.apiKey}`;
  // `manual`: a redirect is reported as the provider's answer, never followed with the key attached.
  return fetch(settings.endpoint, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model, messages, stream: true }),
    signal,
    redirect: 'manual',
  });
}

/** @throws {HostError} MODEL_FAILED when the status is not 2xx or the body is plain JSON, not a stream. */
async function checkResponse(settings: ProviderSettings, response: Response): Promise<void> {
  if (response.status < 200 || response.status > 299) {
    const excerpt = await errorExcerpt(response, settings.apiKey);
    throw new HostError('MODEL_FAILED', `model provider at ${settings.shownUrl} returned HTTP ${response.status}${excerpt}`, {
      status: response.status,
    });
  }
  // A server that ignored `stream: true` answers with one JSON document, which is not an event stream.
  if ((response.headers.get('content-type') ?? '').includes('application/json')) {
    const excerpt = await errorExcerpt(response, settings.apiKey);
    throw new HostError('MODEL_FAILED', `model provider at ${settings.shownUrl} answered with JSON instead of an event stream${excerpt}`);
  }
}

/**
 * Reads the events and yields each non-empty delta until `[DONE]`.
 * @throws {HostError} MODEL_FAILED when the stream ends early, holds an error or an unreadable
 * event, or the answer grows past LIMITS.answerCharsMax.
 */
async function* readAnswer(body: ReadableStream<Uint8Array>, stop: AbortSignal): AsyncGenerator<string> {
  const decoder = createSseDecoder();
  const reader = body.getReader();
  let answerChars = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      for (const event of done ? decoder.end() : decoder.push(value)) {
        const delta = readEvent(event);
        if (delta === null) return;
        if (delta === '') continue;
        answerChars += delta.length;
        if (answerChars > LIMITS.answerCharsMax) {
          throw new HostError('MODEL_FAILED', `model answer exceeds ${LIMITS.answerCharsMax} characters (answerCharsMax)`, {
            limit: 'answerCharsMax',
          });
        }
        // A timeout or abort that fired while this batch was decoded must stop the answer too.
        stop.throwIfAborted();
        yield delta;
      }
      if (done) throw new HostError('MODEL_FAILED', 'model stream ended before [DONE]');
    }
  } finally {
    // Releases the connection when the answer is complete, failed, or the caller stopped early.
    reader.cancel().catch(() => undefined);
  }
}

/**
 * The delta text of one event (`''` when it carries none, e.g. the role-only first chunk), or
 * `null` for `[DONE]`.
 * @throws {HostError} MODEL_FAILED for an error event or data that is not a JSON object.
 */
function readEvent(event: SseEvent): string | null {
  if (event.data.trim() === '[DONE]') return null;
  let payload: unknown;
  try {
    payload = JSON.parse(event.data);
  } catch {
    throw new HostError('MODEL_FAILED', 'model stream sent an event whose data is not JSON');
  }
  if (typeof payload !== 'object' || payload === null) throw new HostError('MODEL_FAILED', 'model stream sent an event whose data is not a JSON object');
  const reported = providerErrorMessage(payload);
  if (reported !== undefined || event.event === 'error') {
    throw new HostError('MODEL_FAILED', `model provider reported an error in the stream: ${safeExcerpt(reported ?? event.data, undefined) || 'no message'}`);
  }
  const content = (payload as { choices?: Array<{ delta?: { content?: unknown } }> }).choices?.[0]?.delta?.content;
  return typeof content === 'string' ? content : '';
}

/**
 * The message of an error payload, in the shapes providers use: OpenAI and vLLM's `{error:{message}}`,
 * some servers' `{error: "text"}`, and older vLLM's `{object:"error", message}`.
 */
function providerErrorMessage(payload: object): string | undefined {
  const { error, object, message } = payload as { error?: unknown; object?: unknown; message?: unknown };
  if (typeof error === 'string') return error;
  if (typeof error === 'object' && error !== null) {
    const inner = (error as { message?: unknown }).message;
    return typeof inner === 'string' ? inner : JSON.stringify(error);
  }
  if (object === 'error') return typeof message === 'string' ? message : 'unknown error';
  return undefined;
}

/** `: <excerpt>` of an error response body (its JSON message when there is one), or `''`. */
async function errorExcerpt(response: Response, apiKey: string | undefined): Promise<string> {
  const text = await readCapped(response.body, ERROR_BODY_BYTES_MAX);
  let message = text;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null) message = providerErrorMessage(parsed) ?? text;
  } catch {
    // Not JSON: quote the text itself.
  }
  const excerpt = safeExcerpt(message, apiKey);
  return excerpt === '' ? '' : `: ${excerpt}`;
}

/** Up to `bytesMax` bytes of a body as text; the rest is cancelled, never buffered. */
async function readCapped(body: ReadableStream<Uint8Array> | null, bytesMax: number): Promise<string> {
  if (body === null) return '';
  const reader = body.getReader();
  const pieces: Uint8Array[] = [];
  let bytes = 0;
  try {
    while (bytes < bytesMax) {
      const { done, value } = await reader.read();
      if (done) break;
      pieces.push(value);
      bytes += value.byteLength;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return new TextDecoder().decode(Buffer.concat(pieces).subarray(0, bytesMax));
}

/**
 * Provider text made fit for an error message: the key and any bearer token redacted, control
 * characters and runs of whitespace collapsed, cut to ERROR_EXCERPT_CHARS_MAX characters.
 */
function safeExcerpt(text: string, apiKey: string | undefined): string {
  let safe = apiKey === undefined ? text : text.split(apiKey).join('[redacted]');
  safe = safe.replace(/bearer\s+\S+/gi, 'Bearer [redacted]').replace(/[\s\p{Cc}\p{Cf}]+/gu, ' ').trim();
  if (safe.length <= ERROR_EXCERPT_CHARS_MAX) return safe;
  // Never end on half a surrogate pair.
  return `${safe.slice(0, ERROR_EXCERPT_CHARS_MAX).replace(/[\uD800-\uDBFF]$/, '')}…`;
}

/**
 * Turns whatever a failed answer threw into its one reported error. Order matters: an abort's reason
 * beats the network error it caused, and a network error means "unreachable" before the response
 * arrived but "cut midway" after.
 */
function explainFailure(error: unknown, call: Call, settings: ProviderSettings): unknown {
  if (call.stop.signal.aborted) return call.stop.signal.reason;
  if (error instanceof HostError) return error;
  if (call.phase === 'stream') {
    return new HostError('MODEL_FAILED', `model stream ended before [DONE]: the connection to ${settings.shownUrl} was lost`);
  }
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  const code = typeof cause === 'string' && /^[A-Z0-9_]{1,40}$/.test(cause) ? cause : undefined;
  if (code === 'ECONNREFUSED') {
    return new HostError('MODEL_FAILED', `model provider at ${settings.shownUrl} refused the connection (ECONNREFUSED)`, { code });
  }
  return new HostError('MODEL_FAILED', `could not reach model provider at ${settings.shownUrl} (${code ?? 'network error'})`, code === undefined ? {} : { code });
}
