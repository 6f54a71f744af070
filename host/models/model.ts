/**
 * The model port: what the ask pipeline needs from a language model, and the one factory that picks
 * a provider. The pipeline only ever sees {@link ChatModel}; providers (local.ts, openai.ts) are
 * adapters behind it, so a contract test can run the same expectations against each of them.
 */
import { HostError } from '../errors.ts';
import { createLocalModel } from './local.ts';
import { type OpenAIModelOptions, createOpenAIModel } from './openai.ts';

/** One chat turn as the provider receives it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** One chunk the host resolved for this tenant and placed in the context. */
export interface ContextChunk {
  chunkId: string;
  docId: string;
  title: string;
  text: string;
}

/** Per-tenant routing: which model (and, for vLLM-style servers, which LoRA adapter) answers. */
export interface ModelRouting {
  model?: string;
  adapter?: string;
}

/** Everything one ask hands to the model. */
export interface ModelRequest extends ModelRouting {
  /** Fully resolved context (chunk text already inlined by the host). */
  messages: ChatMessage[];
  /** The end user's question for this ask. */
  question: string;
  /** The chunks that went into the context, in context order. */
  chunks: ContextChunk[];
  /**
   * Aborted when the session closes or the ask is cancelled. Providers then stop and the iterable
   * throws `signal.reason`: an aborted stream never ends normally, so a partial answer can never be
   * mistaken for a complete one (and cached).
   */
  signal: AbortSignal;
}

/** A language model that streams an answer as text pieces; joining the pieces gives the answer. */
export interface ChatModel {
  /** Provider, model name and adapter of the default routing, e.g. `openai:llama3@support-lora`. */
  readonly id: string;
  /**
   * The id for one routing. Cache keys must use this rather than `id` whenever a request carries
   * `model` or `adapter`, because those change the answer (see {@link modelIdFor}).
   */
  idFor?(routing: ModelRouting): string;
  /** Streams the answer. The iterable throws HostError (MODEL_*) or `signal.reason`. */
  stream(request: ModelRequest): AsyncIterable<string>;
  /** Releases the provider's resources; streams in flight fail. */
  close?(): Promise<void>;
}

/**
 * The model id to put in a cache namespace for one request's routing. When the model cannot name a
 * routing itself, any routing at all yields a distinct id rather than the default one: a cache key
 * that forgot the routing would serve one adapter's answer under another.
 * @throws never
 */
export function modelIdFor(model: ChatModel, routing: ModelRouting): string {
  if (model.idFor !== undefined) return model.idFor(routing);
  if (routing.model === undefined && routing.adapter === undefined) return model.id;
  return `${model.id}+${JSON.stringify([routing.model ?? null, routing.adapter ?? null])}`;
}

/** Options for {@link createModel}: the local provider (the default) or an OpenAI-compatible server. */
export type ModelOptions = { provider?: 'local' } | ({ provider: 'openai' } & OpenAIModelOptions);

const LOCAL_OPTION_KEYS: ReadonlySet<string> = new Set(['provider']);

/**
 * Creates the model for a provider. Unknown providers and unknown option keys are refused rather
 * than ignored, so a typo in config cannot silently fall back to another model.
 * @throws {HostError} CONFIG_INVALID when the provider or an option is unknown or out of range.
 */
export function createModel(options: ModelOptions = {}): ChatModel {
  const provider: unknown = options.provider ?? 'local';
  if (provider === 'openai') return createOpenAIModel(withoutProvider(options));
  if (provider !== 'local') {
    throw new HostError('CONFIG_INVALID', `model provider must be 'local' or 'openai', got ${JSON.stringify(provider)}`, {
      setting: 'provider',
    });
  }
  for (const key of Object.keys(options)) {
    if (!LOCAL_OPTION_KEYS.has(key)) {
      throw new HostError('CONFIG_INVALID', `unknown option '${key}' for model provider 'local'`, { setting: key });
    }
  }
  return createLocalModel();
}

/** Strips the discriminant so the provider's own validation sees only its own keys. */
function withoutProvider(options: ModelOptions): OpenAIModelOptions {
  const { provider: _provider, ...rest } = options as { provider: 'openai' } & OpenAIModelOptions;
  return rest;
}
