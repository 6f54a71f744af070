/**
 * Host configuration: defaults in one object, overridden by an optional JSON config file
 * (`CTX_CONFIG=path`) and then by environment variables. Everything is validated at start; an
 * unknown key or a bad value stops the host with a message naming the setting.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { HostError } from './errors.ts';
import { LIMITS } from './limits.ts';
import { checkApiKey, isModelName, MODEL_NAME_CHARS_MAX, resolveEndpoint } from './models/endpoint.ts';

/** The validated host configuration. */
export interface HostConfig {
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  /** Interface to listen on. */
  host: string;
  /** Where the registry, the tenant environments and the master key file live. */
  dataDir: string;
  /** Master key (64 hex chars or base64 of 32 bytes); else `<dataDir>/master.key` is used or made. */
  masterKey: string | undefined;
  /** Operator key; else one is generated on first start, printed once, stored hashed. */
  operatorKey: string | undefined;
  /** Default model provider for tenants that do not choose one. */
  modelProvider: 'local' | 'openai';
  /** Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1. */
  modelUrl: string | undefined;
  /** Model name sent to that server. */
  modelName: string;
  /** Bearer key for that server. */
  modelApiKey: string | undefined;
  /** Time a model has to finish one answer, in milliseconds. */
  modelTimeoutMs: number;
  /** Base URL of an OpenAI-compatible embeddings server; unset = the local embedder. */
  embedUrl: string | undefined;
  /** Embedding model name sent to that server. */
  embedModel: string;
  /** Bearer key for that server. */
  embedApiKey: string | undefined;
  /** Time the embeddings server has to answer one request, in milliseconds. */
  embedTimeoutMs: number;
  /** Create the demo tenant and its documents on first start. */
  demo: boolean;
  /** pino log level. */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Cell processes serving tenants (one per core by default); the supervisor is one more. */
  workers: number;
  /** The operator's fuel ceiling per plugin call: the longest one call may hold a cell's event loop. */
  pluginFuelPerCallMax: number;
  /** Host-wide budget for plugin instance memory, in MiB, shared out over the cells. */
  pluginMemoryMb: number;
  /** Move a tenant that keeps spending its whole plugin budget to a low-priority quarantine cell. */
  quarantine: boolean;
  /**
   * This host's name in a fleet (host/fleet/), unset for a host on its own. A fleet host answers a
   * credential naming a tenant it has never held with TENANT_MOVED (the router sent it astray)
   * rather than AUTH_INVALID_KEY.
   */
  fleetHost: string | undefined;
}

/** Every default, with its unit in the comment. */
export const CONFIG_DEFAULTS: HostConfig = {
  port: 8787,
  host: '127.0.0.1',
  dataDir: './data',
  masterKey: undefined,
  operatorKey: undefined,
  modelProvider: 'local',
  modelUrl: undefined,
  modelName: 'default',
  modelApiKey: undefined,
  modelTimeoutMs: 30_000, // 30 s for a whole answer
  embedUrl: undefined,
  embedModel: 'default',
  embedApiKey: undefined,
  embedTimeoutMs: 10_000, // 10 s for one batch of up to 128 texts
  demo: true,
  logLevel: 'info',
  workers: Math.min(availableParallelism(), LIMITS.cellsMax), // one cell per core
  pluginFuelPerCallMax: LIMITS.pluginFuelPerCallCeilingDefault, // about 10 ms of the worst-case metered loop
  pluginMemoryMb: Math.floor(totalmem() / 4 / 2 ** 20), // a quarter of the machine's memory, in MiB
  quarantine: true,
  fleetHost: undefined,
};

/** Environment variable → setting. */
const ENV_NAMES: Record<string, keyof HostConfig> = {
  PORT: 'port',
  HOST: 'host',
  DATA_DIR: 'dataDir',
  CTX_MASTER_KEY: 'masterKey',
  CTX_OPERATOR_KEY: 'operatorKey',
  MODEL_PROVIDER: 'modelProvider',
  MODEL_URL: 'modelUrl',
  MODEL_NAME: 'modelName',
  MODEL_API_KEY: 'modelApiKey',
  MODEL_TIMEOUT_MS: 'modelTimeoutMs',
  EMBED_URL: 'embedUrl',
  EMBED_MODEL: 'embedModel',
  EMBED_API_KEY: 'embedApiKey',
  EMBED_TIMEOUT_MS: 'embedTimeoutMs',
  CTX_DEMO: 'demo',
  LOG_LEVEL: 'logLevel',
  WORKERS: 'workers',
  PLUGIN_FUEL_PER_CALL_MAX: 'pluginFuelPerCallMax',
  PLUGIN_MEMORY_MB: 'pluginMemoryMb',
  CTX_QUARANTINE: 'quarantine',
  FLEET_HOST: 'fleetHost',
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/**
 * Shortest provider time-out the config takes: under 100 ms no model or embeddings server answers,
 * so a smaller value is a mistake (seconds given as milliseconds), better refused at start. The
 * longest comes from LIMITS, which the model and embeddings clients enforce too.
 */
const PROVIDER_TIMEOUT_MS_MIN = 100;

/**
 * Builds the configuration from defaults, a config file and the environment.
 * @throws {HostError} CONFIG_INVALID naming the setting, its source and the allowed values.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<HostConfig> = {}): HostConfig {
  const raw: Record<string, unknown> = { ...CONFIG_DEFAULTS };
  const sources: Record<string, string> = {};
  const file = env['CTX_CONFIG'];
  if (file !== undefined && file !== '') {
    for (const [key, value] of Object.entries(readConfigFile(file))) {
      raw[key] = value;
      sources[key] = `${file}: ${key}`;
    }
  }
  for (const [name, key] of Object.entries(ENV_NAMES)) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      raw[key] = value;
      sources[key] = name;
    }
  }
  Object.assign(raw, overrides);
  return validateConfig(raw, (key) => sources[key] ?? key);
}

function readConfigFile(file: string): Record<string, unknown> {
  const path = resolve(file);
  if (!existsSync(path)) throw new HostError('CONFIG_INVALID', `CTX_CONFIG: no file at ${path}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new HostError('CONFIG_INVALID', `CTX_CONFIG: ${path} is not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HostError('CONFIG_INVALID', `CTX_CONFIG: ${path} must hold a JSON object`);
  }
  for (const key of Object.keys(parsed)) {
    if (!(key in CONFIG_DEFAULTS)) {
      throw new HostError('CONFIG_INVALID', `CTX_CONFIG: unknown setting ${JSON.stringify(key)}; known: ${Object.keys(CONFIG_DEFAULTS).join(', ')}`);
    }
  }
  return parsed as Record<string, unknown>;
}

function validateConfig(raw: Record<string, unknown>, source: (key: string) => string): HostConfig {
  const fail = (key: string, message: string): never => {
    throw new HostError('CONFIG_INVALID', `${source(key)}: ${message}`);
  };
  const integer = (key: string, min: number, max: number): number => {
    const value = typeof raw[key] === 'string' ? Number(raw[key]) : raw[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      fail(key, `must be an integer in ${min}..${max}, got ${JSON.stringify(raw[key])}`);
    }
    return value as number;
  };
  const text = (key: string): string | undefined => {
    const value = raw[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.length === 0) fail(key, `must be a non-empty string`);
    return value as string;
  };
  const oneOf = <T extends string>(key: string, allowed: readonly T[]): T => {
    const value = raw[key];
    if (typeof value !== 'string' || !allowed.includes(value as T)) fail(key, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
    return value as T;
  };
  // Provider settings are checked by the same rules the model and embeddings clients apply at
  // start, so a value accepted here is never refused there under another name.
  const modelName = (key: string): string | undefined => {
    const value = text(key);
    if (value !== undefined && !isModelName(value)) fail(key, `must be 1 to ${MODEL_NAME_CHARS_MAX} characters without spaces, control characters or '@'`);
    return value;
  };
  const apiKey = (key: string): string | undefined => {
    const value = text(key);
    try {
      checkApiKey(value, 'must be 1 to 1024 printable ASCII characters without spaces');
    } catch (error) {
      fail(key, (error as Error).message);
    }
    return value;
  };
  const url = (key: string, keyVariable: string): string | undefined => {
    const value = text(key);
    if (value === undefined) return undefined;
    if (!/^https?:\/\//.test(value)) fail(key, `must be an http(s) URL, got ${JSON.stringify(value)}`);
    try {
      resolveEndpoint(value, '', { subject: '', keyHint: keyVariable });
    } catch (error) {
      fail(key, (error as Error).message.replace(/^url /, ''));
    }
    return value;
  };
  const flag = (key: string): boolean => {
    const value = raw[key];
    if (typeof value === 'boolean') return value;
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    return fail(key, `must be true or false, got ${JSON.stringify(value)}`);
  };
  const config: HostConfig = {
    port: integer('port', 0, 65535),
    host: text('host') ?? CONFIG_DEFAULTS.host,
    dataDir: text('dataDir') ?? CONFIG_DEFAULTS.dataDir,
    masterKey: text('masterKey'),
    operatorKey: text('operatorKey'),
    modelProvider: oneOf('modelProvider', ['local', 'openai'] as const),
    modelUrl: url('modelUrl', 'MODEL_API_KEY'),
    modelName: modelName('modelName') ?? CONFIG_DEFAULTS.modelName,
    modelApiKey: apiKey('modelApiKey'),
    modelTimeoutMs: integer('modelTimeoutMs', PROVIDER_TIMEOUT_MS_MIN, LIMITS.modelTimeoutMsMax),
    embedUrl: url('embedUrl', 'EMBED_API_KEY'),
    embedModel: modelName('embedModel') ?? CONFIG_DEFAULTS.embedModel,
    embedApiKey: apiKey('embedApiKey'),
    embedTimeoutMs: integer('embedTimeoutMs', PROVIDER_TIMEOUT_MS_MIN, LIMITS.embedTimeoutMsMax),
    demo: flag('demo'),
    logLevel: oneOf('logLevel', LOG_LEVELS),
    workers: integer('workers', 1, LIMITS.cellsMax),
    pluginFuelPerCallMax: integer('pluginFuelPerCallMax', LIMITS.pluginFuelPerCallMin, LIMITS.pluginFuelPerCallMax),
    pluginMemoryMb: integer('pluginMemoryMb', LIMITS.pluginMemoryMbMin, LIMITS.pluginMemoryMbMax),
    quarantine: flag('quarantine'),
    fleetHost: text('fleetHost'),
  };
  if (config.fleetHost !== undefined && !isFleetHostName(config.fleetHost)) {
    fail('fleetHost', `must be 1..${LIMITS.fleetHostNameCharsMax} characters of a-z, 0-9 and "-", starting with a letter or digit, got ${JSON.stringify(config.fleetHost.slice(0, 40))}`);
  }
  if (config.modelProvider === 'openai' && config.modelUrl === undefined) fail('modelProvider', 'openai needs MODEL_URL');
  if (config.operatorKey !== undefined && config.operatorKey.length < 16) fail('operatorKey', 'must be at least 16 characters');
  return config;
}

/** Whether `name` is a valid fleet host name: it becomes a router backend name and a map value. */
export function isFleetHostName(name: string): boolean {
  return name.length <= LIMITS.fleetHostNameCharsMax && /^[a-z0-9][a-z0-9-]*$/.test(name);
}
