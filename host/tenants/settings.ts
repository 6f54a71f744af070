/**
 * A tenant's own settings (GET/PATCH /v1/config): system prompt, retrieval depth, prompt budget and
 * model routing. Stored in the tenant's environment. A patch is validated whole before anything is
 * written: unknown keys and out-of-range values are refused with the setting named.
 */
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { TenantScope } from './scope.ts';

/** Per-tenant model routing. `provider: "default"` follows the host's configured provider. */
export interface ModelSettings {
  provider: 'default' | 'local' | 'openai';
  /** Model name for an OpenAI-compatible server; empty = the host's MODEL_NAME. */
  name: string;
  /** Adapter (e.g. a LoRA name a vLLM server selects per request); empty = none. */
  adapter: string;
}

/** A tenant's settings. */
export interface TenantSettings {
  systemPrompt: string;
  /** Chunks the retrieval plugin is asked for. */
  topK: number;
  /** Estimated tokens of retrieved context the prompt plugin may use. */
  tokenBudget: number;
  model: ModelSettings;
  /**
   * Fuel (metered CPU work) each plugin call may spend, within the operator's ceiling
   * LIMITS.pluginFuelPerCallMax; the default is about 50 ms of the worst-case loop.
   */
  pluginFuelPerCall: number;
}

/** Defaults every tenant starts with. */
export const TENANT_SETTINGS_DEFAULTS: TenantSettings = {
  systemPrompt: 'You are a helpful assistant. Answer only from the provided context and cite sources.',
  topK: 8,
  tokenBudget: 1500,
  model: { provider: 'default', name: '', adapter: '' },
  pluginFuelPerCall: LIMITS.pluginFuelPerCallDefault,
};

/** Ranges, shown in error messages. */
const TOP_K_RANGE = [1, LIMITS.retrievedChunksMax] as const;
const TOKEN_BUDGET_RANGE = [50, 32_000] as const;
const PLUGIN_FUEL_RANGE = [LIMITS.pluginFuelPerCallMin, LIMITS.pluginFuelPerCallMax] as const;
const NAME_PATTERN = /^[A-Za-z0-9._:/@-]{0,128}$/;

/**
 * Reads the tenant's settings (defaults where none are stored). Every ask reads them, so they are
 * kept with the open environment and replaced by {@link patchSettings}; the copy returned is the
 * caller's to keep.
 */
export function readSettings(scope: TenantScope): TenantSettings {
  const current = scope.store.derived('settings', (store) => {
    const stored = store.meta.get('settings') as Partial<TenantSettings> | undefined;
    return { value: { ...TENANT_SETTINGS_DEFAULTS, ...stored, model: { ...TENANT_SETTINGS_DEFAULTS.model, ...stored?.model } } };
  });
  return { ...current.value, model: { ...current.value.model } };
}

/**
 * Applies a validated patch and stores the result.
 * @throws {HostError} CONFIG_INVALID naming the setting, its value and what is allowed.
 */
export function patchSettings(scope: TenantScope, patch: unknown): TenantSettings {
  const next = applyPatch(readSettings(scope), patch);
  scope.store.meta.put('settings', next);
  scope.store.derived('settings', () => ({ value: next })).value = next;
  return { ...next, model: { ...next.model } };
}

/**
 * Validates a patch against the current settings without storing it.
 * @throws {HostError} CONFIG_INVALID naming the setting.
 */
export function applyPatch(current: TenantSettings, patch: unknown): TenantSettings {
  const fail = (setting: string, message: string): never => {
    throw new HostError('CONFIG_INVALID', `${setting}: ${message}`, { setting });
  };
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) fail('body', 'must be a JSON object of settings');
  const next: TenantSettings = { ...current, model: { ...current.model } };
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    switch (key) {
      case 'systemPrompt':
        if (typeof value !== 'string' || value.length > LIMITS.systemPromptCharsMax) fail(key, `must be a string of at most ${LIMITS.systemPromptCharsMax} characters`);
        next.systemPrompt = value as string;
        break;
      case 'topK':
        next.topK = integerIn(key, value, TOP_K_RANGE, fail);
        break;
      case 'tokenBudget':
        next.tokenBudget = integerIn(key, value, TOKEN_BUDGET_RANGE, fail);
        break;
      case 'model':
        next.model = patchModel(next.model, value, fail);
        break;
      case 'pluginFuelPerCall':
        next.pluginFuelPerCall = integerIn(key, value, PLUGIN_FUEL_RANGE, fail);
        break;
      default:
        fail(key, `unknown setting; known: ${Object.keys(TENANT_SETTINGS_DEFAULTS).join(', ')}`);
    }
  }
  return next;
}

function integerIn(key: string, value: unknown, range: readonly [number, number], fail: (setting: string, message: string) => never): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1]) {
    fail(key, `must be an integer in ${range[0]}..${range[1]}, got ${JSON.stringify(value)}`);
  }
  return value as number;
}

function patchModel(current: ModelSettings, value: unknown, fail: (setting: string, message: string) => never): ModelSettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('model', 'must be an object {provider?, name?, adapter?}');
  const next = { ...current };
  for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
    if (key === 'provider') {
      if (entry !== 'default' && entry !== 'local' && entry !== 'openai') fail('model.provider', `must be default, local or openai, got ${JSON.stringify(entry)}`);
      next.provider = entry as ModelSettings['provider'];
    } else if (key === 'name' || key === 'adapter') {
      if (typeof entry !== 'string' || !NAME_PATTERN.test(entry)) fail(`model.${key}`, 'must be up to 128 characters of [A-Za-z0-9._:/@-]');
      next[key] = entry as string;
    } else {
      fail(`model.${key}`, 'unknown setting; known: provider, name, adapter');
    }
  }
  return next;
}
