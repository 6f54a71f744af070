/**
 * A tenant's own settings (GET/PATCH /v1/config): system prompt, retrieval depth, prompt budget,
 * model routing and semantic cache. Stored in the tenant's environment. A patch is validated whole before anything is
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

/** Per-tenant semantic cache settings (host/cache/semantic-cache.ts). */
export interface CacheSettings {
  /** Answer asks from the cache and store answers in it. */
  enabled: boolean;
  /**
   * `tenant`: one cache for all of the tenant's end users; `user`: one per end user (the ticket's
   * `user`), so no user's asks can be inferred from another's hits; asks without a user are then
   * not cached at all.
   */
  scope: 'tenant' | 'user';
  /** Cosine similarity a cached question needs to answer a new one (bench/cache-quality.ts). */
  threshold: number;
  /** Seconds an answer may be served after it was made. */
  ttlSeconds: number;
  /** Estimated bytes of cached answers kept; the least recently used go first beyond it. */
  quotaBytes: number;
}

/** Per-tenant feedback retention (host/training/feedback.ts). */
export interface FeedbackSettings {
  /**
   * Keep rated answers, with the ask and the sources, for the tenant's training export. Off until
   * the tenant turns it on: a rating carries an end user's question.
   */
  retain: boolean;
  /** Days a rating is kept; older ones are deleted (LIMITS.feedbackRetentionDaysMax at most). */
  retentionDays: number;
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
   * ({@link SettingsBounds}); the default is about 10 ms of the worst-case loop.
   */
  pluginFuelPerCall: number;
  cache: CacheSettings;
  feedback: FeedbackSettings;
}

/** Defaults every tenant starts with. */
export const TENANT_SETTINGS_DEFAULTS: TenantSettings = {
  systemPrompt: 'You are a helpful assistant. Answer only from the provided context and cite sources.',
  topK: 8,
  tokenBudget: 1500,
  model: { provider: 'default', name: '', adapter: '' },
  pluginFuelPerCall: LIMITS.pluginFuelPerCallDefault,
  cache: {
    enabled: true,
    scope: 'tenant',
    // With the verifier, the local embedder serves 0.7% wrong hits on the hard-negative set and
    // recalls 14% of the paraphrases here, against 7.5% at the 0.92 used before (bench/cache-quality.ts).
    threshold: 0.88,
    ttlSeconds: 7 * 24 * 3600,
    quotaBytes: 16 * 1024 * 1024,
  },
  feedback: { retain: false, retentionDays: 30 },
};

/** Ranges, shown in error messages. */
const TOP_K_RANGE = [1, LIMITS.retrievedChunksMax] as const;
const TOKEN_BUDGET_RANGE = [50, 32_000] as const;
const NAME_PATTERN = /^[A-Za-z0-9._:/@-]{0,128}$/;
/** Below 0.5 the similarity path would answer loosely related questions (bench/cache-quality.ts). */
const CACHE_THRESHOLD_RANGE = [0.5, 1] as const;
const CACHE_TTL_RANGE = [1, LIMITS.cacheTtlSecondsMax] as const;
const CACHE_QUOTA_RANGE = [LIMITS.cacheBytesPerTenantMin, LIMITS.cacheBytesPerTenantMax] as const;
const RETENTION_DAYS_RANGE = [1, LIMITS.feedbackRetentionDaysMax] as const;

/**
 * What the operator allows tenants to set: a tenant's settings live within these, whatever it
 * stored (a ceiling lowered later clamps what was allowed before).
 */
export interface SettingsBounds {
  /** The operator's fuel ceiling per plugin call (config PLUGIN_FUEL_PER_CALL_MAX). */
  pluginFuelPerCallMax: number;
}

/** The bounds of a host that sets none: the default fuel ceiling (about 10 ms per call). */
export const DEFAULT_SETTINGS_BOUNDS: SettingsBounds = { pluginFuelPerCallMax: LIMITS.pluginFuelPerCallCeilingDefault };

/**
 * Reads the tenant's settings (defaults where none are stored), within the operator's `bounds`.
 * Every ask reads them, so they are kept with the open environment and replaced by
 * {@link patchSettings}; the copy returned is the caller's to keep.
 */
export function readSettings(scope: TenantScope, bounds: SettingsBounds = DEFAULT_SETTINGS_BOUNDS): TenantSettings {
  const current = scope.store.derived('settings', (store) => {
    const stored = store.meta.get('settings') as Partial<TenantSettings> | undefined;
    const model = { ...TENANT_SETTINGS_DEFAULTS.model, ...stored?.model };
    const cache = { ...TENANT_SETTINGS_DEFAULTS.cache, ...stored?.cache };
    const feedback = { ...TENANT_SETTINGS_DEFAULTS.feedback, ...stored?.feedback };
    return { value: { ...TENANT_SETTINGS_DEFAULTS, ...stored, model, cache, feedback } };
  });
  const settings = copySettings(current.value);
  settings.pluginFuelPerCall = Math.min(settings.pluginFuelPerCall, bounds.pluginFuelPerCallMax);
  return settings;
}

/** A copy whose nested groups are not shared with the value kept by the open environment. */
function copySettings(settings: TenantSettings): TenantSettings {
  return { ...settings, model: { ...settings.model }, cache: { ...settings.cache }, feedback: { ...settings.feedback } };
}

/**
 * Applies a validated patch and stores the result.
 * @throws {HostError} CONFIG_INVALID naming the setting, its value and what is allowed.
 */
export function patchSettings(scope: TenantScope, patch: unknown, bounds: SettingsBounds = DEFAULT_SETTINGS_BOUNDS): TenantSettings {
  const next = applyPatch(readSettings(scope, bounds), patch, bounds);
  scope.store.meta.put('settings', next);
  scope.store.derived('settings', () => ({ value: next })).value = next;
  return copySettings(next);
}

/**
 * Validates a patch against the current settings without storing it.
 * @throws {HostError} CONFIG_INVALID naming the setting.
 */
export function applyPatch(current: TenantSettings, patch: unknown, bounds: SettingsBounds = DEFAULT_SETTINGS_BOUNDS): TenantSettings {
  const fail = (setting: string, message: string): never => {
    throw new HostError('CONFIG_INVALID', `${setting}: ${message}`, { setting });
  };
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) fail('body', 'must be a JSON object of settings');
  const next = copySettings(current);
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
        // The ceiling is the operator's: a tenant cannot buy itself a longer hold on the loop.
        next.pluginFuelPerCall = integerIn(key, value, [LIMITS.pluginFuelPerCallMin, bounds.pluginFuelPerCallMax], fail);
        break;
      case 'cache':
        next.cache = patchCache(next.cache, value, fail);
        break;
      case 'feedback':
        next.feedback = patchFeedback(next.feedback, value, fail);
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

function patchCache(current: CacheSettings, value: unknown, fail: (setting: string, message: string) => never): CacheSettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('cache', 'must be an object {enabled?, scope?, threshold?, ttlSeconds?, quotaBytes?}');
  const next = { ...current };
  for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
    const setting = `cache.${key}`;
    if (key === 'enabled') {
      if (typeof entry !== 'boolean') fail(setting, `must be true or false, got ${JSON.stringify(entry)}`);
      next.enabled = entry as boolean;
    } else if (key === 'scope') {
      if (entry !== 'tenant' && entry !== 'user') fail(setting, `must be tenant or user, got ${JSON.stringify(entry)}`);
      next.scope = entry as CacheSettings['scope'];
    } else if (key === 'threshold') {
      const [low, high] = CACHE_THRESHOLD_RANGE;
      if (typeof entry !== 'number' || !(entry >= low && entry <= high)) fail(setting, `must be a number in ${low}..${high}, got ${JSON.stringify(entry)}`);
      next.threshold = entry as number;
    } else if (key === 'ttlSeconds' || key === 'quotaBytes') {
      next[key] = integerIn(setting, entry, key === 'ttlSeconds' ? CACHE_TTL_RANGE : CACHE_QUOTA_RANGE, fail);
    } else {
      fail(setting, 'unknown setting; known: enabled, scope, threshold, ttlSeconds, quotaBytes');
    }
  }
  return next;
}

function patchFeedback(current: FeedbackSettings, value: unknown, fail: (setting: string, message: string) => never): FeedbackSettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('feedback', 'must be an object {retain?, retentionDays?}');
  const next = { ...current };
  for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
    if (key === 'retain') {
      if (typeof entry !== 'boolean') fail('feedback.retain', `must be true or false, got ${JSON.stringify(entry)}`);
      next.retain = entry as boolean;
    } else if (key === 'retentionDays') {
      next.retentionDays = integerIn('feedback.retentionDays', entry, RETENTION_DAYS_RANGE, fail);
    } else {
      fail(`feedback.${key}`, 'unknown setting; known: retain, retentionDays');
    }
  }
  return next;
}
