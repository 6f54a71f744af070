/**
 * An embedder behind any OpenAI-compatible `POST /embeddings` endpoint (OpenAI, vLLM, Ollama,
 * llama.cpp's server, Hugging Face TEI), so a deployment can use a real sentence-embedding model.
 * Its id — `openai-embed:<model>@<dim>` — goes into every cache namespace, so switching models never
 * compares vectors of two models.
 *
 * It is remote, so it is `costly`: the host reaches it only through `embedBatch`, and every vector
 * goes through the tenant's embedding cache (cache/embedding-cache.ts). It cannot embed
 * synchronously (a blocking HTTP call would stall every session on the event loop), so `embed`
 * refuses; the synchronous callers (the `embed` host function) are served from that cache.
 * Uses Node's global fetch, so it adds no dependency.
 */
import { HostError } from '../errors.ts';
import { checkApiKey, invalidSetting, isModelName, resolveEndpoint } from '../models/endpoint.ts';
import { LIMITS } from '../limits.ts';
import type { Embedder } from './embedder.ts';

/** How to reach the provider. Env vars (EMBED_URL, EMBED_MODEL, …) are read by config, not here. */
export interface OpenAIEmbedderOptions {
  /** Base URL of the API, e.g. `http://127.0.0.1:8080/v1`; `/embeddings` is appended. */
  url: string;
  /** Model name sent with every request. */
  model: string;
  /** Sent as `Authorization: Bearer <apiKey>`; never appears in an error message. */
  apiKey?: string;
  /** Time one request has to answer, at most LIMITS.embedTimeoutMsMax. */
  timeoutMs: number;
}

/** Characters of a provider's error text quoted in an error message: enough to diagnose, no more. */
const ERROR_EXCERPT_CHARS_MAX = 200;
/** Response bytes allowed per returned number (JSON floats with exponent and separator), plus fixed slack. */
const RESPONSE_BYTES_PER_NUMBER = 32;
const RESPONSE_BYTES_SLACK = 64 * 1024;
/** The probe that learns the dimension at start. */
const PROBE_TEXT = 'dimension probe';

interface ProviderSettings {
  readonly endpoint: string;
  /** The endpoint as error messages show it: no query string, no credentials. */
  readonly shownUrl: string;
  readonly model: string;
  readonly apiKey: string | undefined;
  readonly timeoutMs: number;
}

/**
 * Creates the embedder and embeds one probe text to learn the model's dimension, so a wrong URL or
 * model stops the host at start rather than failing every ask.
 * @throws {HostError} CONFIG_INVALID for a bad option; EMBED_FAILED when the probe fails.
 */
export async function createOpenAIEmbedder(options: OpenAIEmbedderOptions): Promise<Embedder> {
  const settings = readOptions(options);
  const [probe] = await requestEmbeddings(settings, [PROBE_TEXT], undefined, undefined);
  const dim = probe?.length ?? 0;
  if (dim < 1 || dim > LIMITS.embedDimMax) {
    throw new HostError('EMBED_FAILED', `the embeddings provider at ${settings.shownUrl} returned ${dim} dimensions; allowed 1..${LIMITS.embedDimMax}`);
  }
  const id = `openai-embed:${settings.model}@${dim}`;
  return {
    id,
    dim,
    costly: true,
    embed: () => {
      throw new HostError('EMBED_FAILED', `the embedder ${id} is remote and embeds asynchronously only; this text is not in the tenant's embedding cache`);
    },
    embedBatch: async (texts, signal) => {
      const vectors: Float32Array[] = [];
      for (let start = 0; start < texts.length; start += LIMITS.embedBatchTextsMax) {
        vectors.push(...(await requestEmbeddings(settings, texts.slice(start, start + LIMITS.embedBatchTextsMax), dim, signal)));
      }
      return vectors;
    },
  };
}

function readOptions(options: OpenAIEmbedderOptions): ProviderSettings {
  const { endpoint, shownUrl } = resolveEndpoint(options.url, 'embeddings', { subject: 'embeddings ', keyHint: 'the API key setting' });
  if (!isModelName(options.model)) {
    throw invalidSetting('model', 'embeddings model must be 1 to 256 characters without spaces, control characters or @');
  }
  const { apiKey, timeoutMs } = options;
  checkApiKey(apiKey, 'embeddings API key must be 1 to 1024 printable ASCII characters');
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > LIMITS.embedTimeoutMsMax) {
    throw invalidSetting('timeoutMs', `embeddings timeoutMs must be an integer from 1 to ${LIMITS.embedTimeoutMsMax} (embedTimeoutMsMax), got ${String(timeoutMs)}`);
  }
  return { endpoint, shownUrl, model: options.model, apiKey, timeoutMs };
}

/**
 * One request for `texts`; returns unit vectors in input order. `dim` (unknown for the probe) is
 * checked for every vector.
 * @throws {HostError} EMBED_FAILED; `signal.reason` when the caller aborts.
 */
async function requestEmbeddings(settings: ProviderSettings, texts: readonly string[], dim: number | undefined, signal: AbortSignal | undefined): Promise<Float32Array[]> {
  const timeout = AbortSignal.timeout(settings.timeoutMs);
  const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (settings.apiKey !== undefined) headers['authorization'] = `Bearer ${settings.apiKey}`;
  let text: string;
  try {
    const response = await fetch(settings.endpoint, {
      method: 'POST',
      headers,
      body: JSON.stringify({ model: settings.model, input: texts, encoding_format: 'float' }),
      signal: combined,
    });
    const bytesMax = texts.length * (dim ?? LIMITS.embedDimMax) * RESPONSE_BYTES_PER_NUMBER + RESPONSE_BYTES_SLACK;
    text = await readCapped(response, bytesMax, settings);
    if (!response.ok) {
      throw new HostError('EMBED_FAILED', `the embeddings provider at ${settings.shownUrl} answered HTTP ${response.status}: ${text.slice(0, ERROR_EXCERPT_CHARS_MAX)}`);
    }
  } catch (error) {
    if (signal?.aborted === true) throw signal.reason;
    if (error instanceof HostError) throw error;
    if (timeout.aborted) throw new HostError('EMBED_FAILED', `the embeddings provider at ${settings.shownUrl} did not answer within ${settings.timeoutMs} ms`);
    throw new HostError('EMBED_FAILED', `could not reach the embeddings provider at ${settings.shownUrl}: ${(error as Error).message}`);
  }
  return parseEmbeddings(text, texts.length, dim, settings);
}

/** Reads a response body up to `bytesMax` bytes; a longer body fails without being read further. */
async function readCapped(response: Response, bytesMax: number, settings: ProviderSettings): Promise<string> {
  if (response.body === null) return '';
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  for await (const part of response.body as AsyncIterable<Uint8Array>) {
    bytes += part.byteLength;
    if (bytes > bytesMax) {
      await response.body.cancel().catch(() => undefined);
      throw new HostError('EMBED_FAILED', `the embeddings provider at ${settings.shownUrl} sent more than ${bytesMax} bytes`);
    }
    text += decoder.decode(part, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * Validates `{data: [{index, embedding}]}`: one finite vector per text, each index once, equal
 * lengths; returns them in input order, scaled to unit length (providers differ on normalising).
 * @throws {HostError} EMBED_FAILED naming what was wrong.
 */
function parseEmbeddings(text: string, count: number, dim: number | undefined, settings: ProviderSettings): Float32Array[] {
  const fail = (what: string): never => {
    throw new HostError('EMBED_FAILED', `the embeddings provider at ${settings.shownUrl} sent an unreadable response: ${what}`);
  };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    fail('not JSON');
  }
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data) || data.length !== count) return fail(`data must be an array of ${count} items`);
  const vectors: (Float32Array | undefined)[] = new Array(count).fill(undefined);
  for (const [position, item] of data.entries()) {
    const index = (item as { index?: unknown } | null)?.index ?? position;
    const embedding = (item as { embedding?: unknown } | null)?.embedding;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= count || vectors[index] !== undefined) fail(`data[${position}].index is missing, out of range or repeated`);
    if (!Array.isArray(embedding) || embedding.length === 0 || (dim !== undefined && embedding.length !== dim)) fail(`data[${position}].embedding must hold ${dim ?? 'some'} numbers`);
    vectors[index as number] = unitVector(embedding as unknown[], () => fail(`data[${position}].embedding holds a value that is not a finite number`));
  }
  const first = vectors[0]?.length;
  if (vectors.some((vector) => vector?.length !== first)) fail('the embeddings differ in length');
  return vectors as Float32Array[];
}

function unitVector(values: readonly unknown[], fail: () => never): Float32Array {
  const vector = new Float32Array(values.length);
  let squares = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value !== 'number' || !Number.isFinite(value)) fail();
    vector[i] = value as number;
    squares += (value as number) * (value as number);
  }
  if (squares > 0) {
    const scale = 1 / Math.sqrt(squares);
    for (let i = 0; i < vector.length; i++) vector[i] = (vector[i] as number) * scale;
  }
  return vector;
}
