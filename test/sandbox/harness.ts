/**
 * Shared set-up for the sandbox tests: builds plugins from source (real AssemblyScript, real
 * wasm), an in-memory PluginCapabilities standing in for one tenant's store, and assertions for
 * HostError failures. Not a test file itself.
 */
import { AssertionError } from 'node:assert';
import { readFile } from 'node:fs/promises';
import * as assert from 'uvu/assert';
import { HostError, type ErrorCode } from '../../host/errors.ts';
import type { ChunkView, PluginCapabilities, SearchHit, SearchRequest } from '../../host/sandbox/capabilities.ts';
import { buildPlugin } from '../../scripts/build-plugins.ts';

/** Compiles `test/fixtures/plugins/<name>.ts` (skipped when up to date) and returns its bytes. */
export async function fixturePlugin(name: string): Promise<Uint8Array> {
  const { outFile } = await buildPlugin(`test/fixtures/plugins/${name}.ts`, `build/test/plugins/${name}.wasm`);
  return readFile(outFile);
}

/** Compiles the built-in plugin of `slot` (as `npm run build` does) and returns its bytes. */
export async function builtinPlugin(slot: 'retrieval' | 'prompt'): Promise<Uint8Array> {
  const { outFile } = await buildPlugin(`plugins/${slot}/index.ts`, `build/plugins/${slot}.wasm`);
  return readFile(outFile);
}

/** What the in-memory tenant returns and records. */
export interface MemoryTenant {
  capabilities: PluginCapabilities;
  chunks: Map<string, ChunkView>;
  /** Chunk ids each index returns, best first. */
  ranking: { vector: string[]; lexical: string[] };
  kv: Map<string, Uint8Array>;
  searches: SearchRequest[];
  embedded: string[];
  logs: { level: string; message: string }[];
  /** Every kv_set, in order, as "key=value" (UTF-8). */
  kvWrites: string[];
}

/** One tenant's store in memory: a test double for the capabilities a session builds. */
export function memoryTenant(): MemoryTenant {
  const tenant: Omit<MemoryTenant, 'capabilities'> = {
    chunks: new Map(),
    ranking: { vector: [], lexical: [] },
    kv: new Map(),
    searches: [],
    embedded: [],
    logs: [],
    kvWrites: [],
  };
  const hitsFrom = (ids: string[], via: 1 | 2, k: number): SearchHit[] =>
    ids.slice(0, k).map((chunkId, rank) => ({ chunkId, docId: chunkId.split('#')[0] ?? chunkId, score: 1 / (rank + 1), via }));
  const capabilities: PluginCapabilities = {
    indexSearch(request) {
      tenant.searches.push(request);
      if (request.mode.vector && !request.mode.lexical) return hitsFrom(tenant.ranking.vector, 1, request.k);
      if (request.mode.lexical && !request.mode.vector) return hitsFrom(tenant.ranking.lexical, 2, request.k);
      return hitsFrom(tenant.ranking.vector, 1, request.k);
    },
    chunkGet: (chunkId) => tenant.chunks.get(chunkId),
    kvGet: (key) => tenant.kv.get(key),
    kvSet(key, value) {
      tenant.kvWrites.push(`${key}=${new TextDecoder().decode(value)}`);
      if (value.byteLength === 0) tenant.kv.delete(key);
      else tenant.kv.set(key, value);
    },
    embed(text) {
      tenant.embedded.push(text);
      return Float32Array.of(0.25, 0.5, 0.75);
    },
    log: (level, message) => {
      tenant.logs.push({ level, message });
    },
  };
  return { ...tenant, capabilities };
}

/** Adds a chunk to the tenant. */
export function addChunk(tenant: MemoryTenant, chunkId: string, title: string, text: string): ChunkView {
  const chunk: ChunkView = { chunkId, docId: chunkId.split('#')[0] ?? chunkId, title, text, metadata: { lang: 'en' } };
  tenant.chunks.set(chunkId, chunk);
  return chunk;
}

/**
 * Awaits `promise` and asserts it rejected with a HostError of `code` whose message matches
 * `message` (a substring or a pattern). Returns the error for further checks.
 */
export async function assertHostError(promise: Promise<unknown>, code: ErrorCode, message: string | RegExp): Promise<HostError> {
  let caught: unknown = undefined;
  try {
    await promise;
  } catch (error: unknown) {
    caught = error;
  }
  assert.ok(caught !== undefined, `expected a rejection with ${code}, but the promise fulfilled`);
  assert.instance(caught, HostError, `expected a HostError, got ${String(caught)}`);
  const error = caught as HostError;
  assert.is(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
  if (typeof message === 'string') assert.ok(error.message.includes(message), `message "${error.message}" should include "${message}"`);
  else assert.match(error.message, message);
  return error;
}

/**
 * Asserts `promise` rejected with a node:assert AssertionError (a caller's programming error, not
 * something a plugin or user can cause) whose message matches `message`.
 */
export async function assertProgrammerError(promise: Promise<unknown>, message: RegExp): Promise<void> {
  let caught: unknown = undefined;
  try {
    await promise;
  } catch (error: unknown) {
    caught = error;
  }
  assert.instance(caught, AssertionError, `expected an AssertionError, got ${String(caught)}`);
  assert.is((caught as AssertionError).code, 'ERR_ASSERTION');
  assert.match((caught as AssertionError).message, message);
}

/** Rejects when `promise` takes longer than `ms`: uvu has no timeouts of its own. */
export async function withDeadline<T>(promise: Promise<T>, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
