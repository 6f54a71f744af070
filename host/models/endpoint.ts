/**
 * What both OpenAI-compatible clients (models/openai.ts for chat, retrieval/openai-embedder.ts for
 * embeddings) and the host's config check in their settings: the endpoint URL, the model name and
 * the API key, with messages that name the setting and never echo the key.
 */
import { HostError } from '../errors.ts';

/** How one client words its settings in messages. */
export interface SettingWords {
  /** Prefix for messages, e.g. `embeddings ` (or empty). */
  subject: string;
  /** What to use instead of credentials in the URL, e.g. `apiKey`. */
  keyHint: string;
}

/** Characters of a model or adapter name (Hugging Face ids are well below this). */
export const MODEL_NAME_CHARS_MAX = 256;

/**
 * A model or adapter name: no whitespace, no control characters and no `@`, because `@` separates
 * model from adapter in the model id; allowing it would let `a@b` collide with model `a`, adapter `b`
 * in cache keys.
 */
const MODEL_NAME = new RegExp(`^[^\\s\\p{Cc}@]{1,${MODEL_NAME_CHARS_MAX}}$`, 'u');

/**
 * Whether `name` is a usable model or adapter name (chat and embeddings models, and config, check
 * the same rule, so a name the config accepts is one the client accepts).
 * @throws never
 */
export function isModelName(name: unknown): name is string {
  return typeof name === 'string' && MODEL_NAME.test(name);
}

/** A CONFIG_INVALID error naming `setting`. */
export function invalidSetting(setting: string, message: string): HostError {
  return new HostError('CONFIG_INVALID', message, { setting });
}

/**
 * The endpoint `<base URL>/<path>` and its form for messages (no query, no credentials).
 * @throws {HostError} CONFIG_INVALID when the URL is not absolute http(s) or holds credentials.
 */
export function resolveEndpoint(url: unknown, path: string, words: SettingWords): { endpoint: string; shownUrl: string } {
  let base: URL;
  try {
    base = new URL(String(url));
  } catch {
    throw invalidSetting('url', `${words.subject}url must be an absolute http(s) URL, got ${JSON.stringify(String(url).slice(0, 100))}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw invalidSetting('url', `${words.subject}url must use http or https, got '${base.protocol}'`);
  // fetch refuses URLs with credentials, and they would end up in error messages.
  if (base.username !== '' || base.password !== '') throw invalidSetting('url', `${words.subject}url must not contain credentials; use ${words.keyHint}`);
  base.hash = '';
  base.pathname = `${base.pathname.replace(/\/+$/, '')}/${path}`;
  return { endpoint: base.href, shownUrl: `${base.origin}${base.pathname}` };
}

/**
 * Checks an API key: printable ASCII only, since anything else is not a valid header value.
 * @throws {HostError} CONFIG_INVALID with `message`; the key itself is never echoed.
 */
export function checkApiKey(apiKey: unknown, message: string): void {
  if (apiKey !== undefined && (typeof apiKey !== 'string' || !/^[\x21-\x7e]{1,1024}$/.test(apiKey))) throw invalidSetting('apiKey', message);
}
