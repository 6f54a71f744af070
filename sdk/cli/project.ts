/**
 * A plugin project: the directory holding `ctx-plugin.json`, which names the slot, the entry file,
 * where the module is built, the fixture documents, the tenant settings `test` uses and the
 * project's test cases. The file is validated whole when it is read: an unknown key or a bad value
 * stops the command with the key's path named, as the host does with its own settings.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PluginSlot } from '../../host/sandbox/slots.ts';
import { CliError } from './errors.ts';

/** The project file's name. */
export const PROJECT_FILE = 'ctx-plugin.json';

/** A prior turn of the conversation a test case starts from. */
export interface CaseTurn {
  role: 'user' | 'assistant';
  content: string;
}

/**
 * What a test case expects. Chunk ids are `<docId>#<n>`. For a retrieval plugin, "the result" is
 * its ranked chunks; for a prompt plugin, the chunks its messages reference, in order.
 */
export interface Expectation {
  /** The first chunk of the result. */
  first?: string;
  /** Chunks the result must contain. */
  chunks?: string[];
  /** Chunks the result must not contain. */
  absent?: string[];
  /** Text the result must contain (retrieval: the ranked chunks' text; prompt: the messages as the model sees them). */
  text?: string[];
  /** Prompt plugins: whether the output must be marked cacheable. */
  cacheable?: boolean;
  /** Fuel the plugin's call may spend at most: a guard against a slow change. */
  fuelMax?: number;
}

/** One test case. */
export interface TestCase {
  question: string;
  history: CaseTurn[];
  expect: Expectation;
}

/** Tenant settings `test` applies to its fixture tenant (validated by the host's own rules). */
export type FixtureSettings = Partial<Record<'systemPrompt' | 'topK' | 'tokenBudget' | 'pluginFuelPerCall', unknown>>;

/** A loaded project; paths are absolute. */
export interface Project {
  dir: string;
  slot: PluginSlot;
  entry: string;
  outFile: string;
  fixture: string;
  settings: FixtureSettings;
  tests: TestCase[];
}

const PROJECT_KEYS = ['slot', 'entry', 'outFile', 'fixture', 'settings', 'tests'];
const SETTING_KEYS = ['systemPrompt', 'topK', 'tokenBudget', 'pluginFuelPerCall'];
const CASE_KEYS = ['question', 'history', 'expect'];
const EXPECT_KEYS = ['first', 'chunks', 'absent', 'text', 'cacheable', 'fuelMax'];

/**
 * Reads and validates `dir/ctx-plugin.json`.
 *
 * @example
 * ```ts
 * const project = loadProject(process.cwd());
 * ```
 * @throws {CliError} CLI_PROJECT_NOT_FOUND when the file is missing; CLI_PROJECT_INVALID naming the key.
 */
export function loadProject(dir: string): Project {
  const file = join(dir, PROJECT_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CliError('CLI_PROJECT_NOT_FOUND', `no ${PROJECT_FILE} in ${dir}`, 'run this inside a plugin project, create one with `ctx-plugin init <dir> --slot retrieval`, or pass --wasm <file> --slot <slot>');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error: unknown) {
    throw invalid(`is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const body = object(raw, PROJECT_FILE, PROJECT_KEYS);
  const slot = body['slot'];
  if (slot !== 'retrieval' && slot !== 'prompt') throw invalid(`slot: must be "retrieval" or "prompt", got ${JSON.stringify(slot)}`);
  const settings = body['settings'] === undefined ? {} : object(body['settings'], 'settings', SETTING_KEYS);
  const tests = body['tests'] === undefined ? [] : array(body['tests'], 'tests').map((entry, i) => testCase(entry, `tests[${i}]`));
  return {
    dir,
    slot,
    entry: resolve(dir, pathString(body['entry'], 'entry', 'assembly/index.ts')),
    outFile: resolve(dir, pathString(body['outFile'], 'outFile', 'build/plugin.wasm')),
    fixture: resolve(dir, pathString(body['fixture'], 'fixture', 'fixture/documents.json')),
    settings: settings as FixtureSettings,
    tests,
  };
}

function invalid(message: string): CliError {
  return new CliError('CLI_PROJECT_INVALID', `${PROJECT_FILE}: ${message}`, `fix ${PROJECT_FILE} (sdk/README.md describes every key)`);
}

function object(value: unknown, path: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${path}: must be an object`);
  const unknown = Object.keys(value).find((key) => !keys.includes(key));
  if (unknown !== undefined) throw invalid(`${path === PROJECT_FILE ? '' : `${path}.`}${unknown}: unknown key; known: ${keys.join(', ')}`);
  return value as Record<string, unknown>;
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(`${path}: must be an array`);
  return value;
}

function pathString(value: unknown, path: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.trim() === '') throw invalid(`${path}: must be a non-empty path relative to the project`);
  return value;
}

function strings(value: unknown, path: string): string[] {
  const items = array(value, path);
  items.forEach((item, i) => {
    if (typeof item !== 'string' || item === '') throw invalid(`${path}[${i}]: must be a non-empty string`);
  });
  return items as string[];
}

function testCase(value: unknown, path: string): TestCase {
  const body = object(value, path, CASE_KEYS);
  const question = body['question'];
  if (typeof question !== 'string' || question.trim() === '') throw invalid(`${path}.question: must be a non-empty string`);
  const history = body['history'] === undefined ? [] : array(body['history'], `${path}.history`).map((turn, i) => caseTurn(turn, `${path}.history[${i}]`));
  return { question, history, expect: body['expect'] === undefined ? {} : expectation(body['expect'], `${path}.expect`) };
}

function caseTurn(value: unknown, path: string): CaseTurn {
  const body = object(value, path, ['role', 'content']);
  if (body['role'] !== 'user' && body['role'] !== 'assistant') throw invalid(`${path}.role: must be "user" or "assistant"`);
  if (typeof body['content'] !== 'string') throw invalid(`${path}.content: must be a string`);
  return { role: body['role'], content: body['content'] };
}

function expectation(value: unknown, path: string): Expectation {
  const body = object(value, path, EXPECT_KEYS);
  const out: Expectation = {};
  if (body['first'] !== undefined) {
    if (typeof body['first'] !== 'string' || body['first'] === '') throw invalid(`${path}.first: must be a chunk id such as "shipping#0"`);
    out.first = body['first'];
  }
  if (body['chunks'] !== undefined) out.chunks = strings(body['chunks'], `${path}.chunks`);
  if (body['absent'] !== undefined) out.absent = strings(body['absent'], `${path}.absent`);
  if (body['text'] !== undefined) out.text = strings(body['text'], `${path}.text`);
  if (body['cacheable'] !== undefined) {
    if (typeof body['cacheable'] !== 'boolean') throw invalid(`${path}.cacheable: must be true or false`);
    out.cacheable = body['cacheable'];
  }
  if (body['fuelMax'] !== undefined) {
    const fuel = body['fuelMax'];
    if (typeof fuel !== 'number' || !Number.isInteger(fuel) || fuel < 1) throw invalid(`${path}.fuelMax: must be a positive integer`);
    out.fuelMax = fuel;
  }
  return out;
}
