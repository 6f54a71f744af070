/**
 * Hostile plugins: bad pointers and lengths to every host function, malformed outputs of both
 * slots, and modules that import what a plugin may not or call host functions with the wrong
 * signature. Each must end in an error status or a typed HostError, never a host crash. A plugin
 * that goes after its own tenant's canary through kv finds nothing to read or delete.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { tenantCapabilities } from '../../host/pipeline/capabilities.ts';
import { createLocalEmbedder } from '../../host/retrieval/embedder.ts';
import { createPluginInstance } from '../../host/sandbox/instance.ts';
import { createTenant } from '../../host/tenants/lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { openTestAuthority } from '../helpers/authority.ts';
import { assertHostError, fixturePlugin, memoryTenant } from './harness.ts';
import { compileWat } from './wat.ts';

const FUNCTIONS = ['index_search', 'chunk_get', 'kv_get', 'kv_set', 'embed'];

test('bad offsets and lengths to every host function get an error status, and the instance keeps working', async () => {
  const tenant = memoryTenant();
  const instance = await createPluginInstance(await fixturePlugin('hostile-pointers'), { slot: 'prompt', capabilities: tenant.capabilities });
  try {
    const max = LIMITS.hostCallInputBytesMax;
    const output = await instance.assemble({ systemPrompt: '', query: String(max), tokenBudget: 1, history: [], chunks: [] });
    const lines = (output.messages[0]?.parts ?? []).map((part) => part.value);
    const notABlock = (name: string, what: string) => new RegExp(`^${name} ${what} 1 ${name}: offset 0x[0-9a-f]+ does not name the start of a memory block$`);
    const noBlock = (name: string, what: string) => new RegExp(`^${name} ${what} 1 ${name}: offset 0x[0-9a-f]+ names no live memory block$`);
    const expected = FUNCTIONS.flatMap((name) => {
      const field = { index_search: 'query', chunk_get: 'chunkId', kv_get: 'key', kv_set: 'key', embed: 'text' }[name];
      return [
        new RegExp(`^${name} zero 1 ${name}: offset 0x0 does not name the start of a memory block$`),
        new RegExp(`^${name} huge 1 ${name}: offset 0x7fff000000000000 names no live memory block$`),
        new RegExp(`^${name} negative 1 ${name}: offset 0xffffffffffffffff does not name the start of a memory block$`),
        notABlock(name, 'inside-block'),
        noBlock(name, 'freed'),
        new RegExp(`^${name} truncated 1 ${name}: ${field} length: needs 4 bytes at byte 0, only 2 remain$`),
        new RegExp(`^${name} oversized 3 ${name}: the request is ${max + 1} bytes, over the limit of ${max}$`),
      ];
    });
    assert.is(lines.length, expected.length + 1);
    expected.forEach((pattern, i) => assert.match(lines[i] ?? '', pattern));
    assert.is(lines.at(-1), 'final ok', 'a valid call after all the bad ones still works');
    assert.equal(tenant.kvWrites, [], 'no malformed request reached the tenant store');
  } finally {
    await instance.close();
  }
});

const retrieveCases: [string, string][] = [
  ['trailing', 'retrieve output: output: 1 trailing bytes after the last field'],
  ['utf8', 'retrieve output: chunks[0].chunkId: not valid UTF-8'],
  ['nan', 'retrieve output: chunks[0].score: NaN is not a finite number'],
  ['count', 'retrieve output: chunkCount: 1000, over the limit of 2'],
  ['truncated', 'retrieve output: chunkCount: 2 items cannot fit in the 10 bytes that remain'],
  ['short-string', 'retrieve output: chunks[0].chunkId: needs 50 bytes at byte 8, only 6 remain'],
  ['duplicate', 'retrieve output: chunks[1].chunkId: repeats an earlier chunk'],
  ['nothing', 'retrieve output: chunkCount: needs 4 bytes at byte 0, only 0 remain'],
  ['no-output', 'retrieve output: chunkCount: needs 4 bytes at byte 0, only 0 remain'],
];

test('malformed retrieve output is PLUGIN_BAD_OUTPUT naming the field', async () => {
  const wasm = await fixturePlugin('malformed');
  for (const [mode, message] of retrieveCases) {
    const instance = await createPluginInstance(wasm, { slot: 'retrieval', capabilities: memoryTenant().capabilities });
    try {
      await assertHostError(instance.retrieve({ query: mode, k: 2, history: [] }), 'PLUGIN_BAD_OUTPUT', message);
      await assertHostError(instance.retrieve({ query: 'valid', k: 2, history: [] }), 'PLUGIN_FAILED', 'failed earlier (PLUGIN_BAD_OUTPUT)');
    } finally {
      await instance.close();
    }
  }
});

const assembleCases: [string, string][] = [
  ['role', 'assemble output: messages[0].role: must be 0 (system), 1 (user) or 2 (assistant)'],
  ['kind', 'assemble output: messages[0].parts[0].kind: must be 0 (text) or 1 (chunk reference)'],
  ['flags', 'assemble output: flags: 0x2 sets bits other than bit 0 (cacheable)'],
  ['foreign-ref', 'assemble output: messages[0].parts[0].value: references a chunk that was not in the input'],
  ['no-messages', 'assemble output: messageCount: 0, at least one message is required'],
];

test('malformed assemble output is PLUGIN_BAD_OUTPUT naming the field; a reference to an input chunk passes', async () => {
  const wasm = await fixturePlugin('malformed');
  const chunks = [{ chunkId: 'doc#0', docId: 'doc', title: 'T', text: 'body', score: 1 }];
  for (const [mode, message] of assembleCases) {
    const instance = await createPluginInstance(wasm, { slot: 'prompt', capabilities: memoryTenant().capabilities });
    try {
      await assertHostError(instance.assemble({ systemPrompt: '', query: mode, tokenBudget: 10, history: [], chunks }), 'PLUGIN_BAD_OUTPUT', message);
    } finally {
      await instance.close();
    }
  }
  const valid = await createPluginInstance(wasm, { slot: 'prompt', capabilities: memoryTenant().capabilities });
  try {
    assert.equal(await valid.assemble({ systemPrompt: '', query: 'valid', tokenBudget: 10, history: [], chunks }), {
      cacheable: true,
      messages: [{ role: 'system', parts: [{ kind: 'text', value: 'context: ' }, { kind: 'chunk', value: 'doc#0' }] }],
    });
  } finally {
    await valid.close();
  }
});

/** Builds a tiny wasm module from sections (every section and name here is under 128 bytes). */
function wasmModule(...sections: [number, number[]][]): Uint8Array {
  const bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const [id, content] of sections) bytes.push(id, content.length, ...content);
  return Uint8Array.from(bytes);
}
const name = (text: string): number[] => [text.length, ...new TextEncoder().encode(text)];

test('a host function imported with the wrong signature traps the call (PLUGIN_FAILED), not the host', async () => {
  // (type (func (param i32) (result i32))) (type (func)) (import "ctx:host/v1" "kv_get" (func (type 0)))
  // (func (type 1) i32.const 0 call 0 drop) (export "retrieve" (func 1))
  const wasm = wasmModule(
    [1, [2, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 0, 0]],
    [2, [1, ...name('ctx:host/v1'), ...name('kv_get'), 0, 0]],
    [3, [1, 1]],
    [7, [1, ...name('retrieve'), 0, 1]],
    [10, [1, 7, 0, 0x41, 0, 0x10, 0, 0x1a, 0x0b]],
  );
  const tenant = memoryTenant();
  const instance = await createPluginInstance(wasm, { slot: 'retrieval', capabilities: tenant.capabilities });
  await assertHostError(instance.retrieve({ query: 'q', k: 1, history: [] }), 'PLUGIN_FAILED', 'retrieve trapped: TypeError: Cannot convert a BigInt value to a number');
  await instance.close();
});

test('imports outside the allowed set are refused at load: HTTP, WASI, memories', async () => {
  const tenant = memoryTenant();
  const options = { slot: 'retrieval', capabilities: tenant.capabilities } as const;
  const funcType: [number, number[]] = [1, [1, 0x60, 0, 0]];
  const importing = (module: string, field: string, kind: number[]) => wasmModule(funcType, [2, [1, ...name(module), ...name(field), ...kind]]);
  await assertHostError(
    createPluginInstance(importing('extism:host/env', 'http_request', [0, 0]), options),
    'PLUGIN_LOAD_FAILED',
    'the plugin imports function "extism:host/env" "http_request"; plugins may import only functions of extism:host/env (no HTTP) and ctx:host/v1',
  );
  await assertHostError(
    createPluginInstance(importing('wasi_snapshot_preview1', 'fd_write', [0, 0]), options),
    'PLUGIN_LOAD_FAILED',
    'the plugin imports function "wasi_snapshot_preview1" "fd_write"',
  );
  await assertHostError(
    createPluginInstance(importing('ctx:host/v1', 'memory', [2, 0, 1]), options),
    'PLUGIN_LOAD_FAILED',
    'the plugin imports memory "ctx:host/v1" "memory"',
  );
  await assertHostError(
    createPluginInstance(importing('ctx:host/v1', 'tenant_id', [0, 0]), options),
    'PLUGIN_LOAD_FAILED',
    'the plugin imports function "ctx:host/v1" "tenant_id"',
  );
});

/**
 * A retrieval plugin without any SDK that asks kv for the key the host once planted its canary
 * under, logs the raw response, then writes an empty value there (a delete), logs that response
 * too, and returns no chunks.
 */
const CANARY_THIEF = `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "ctx:host/v1" "kv_get" (func $kv_get (param i64) (result i64)))
  (import "ctx:host/v1" "kv_set" (func $kv_set (param i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\\0c\\00\\00\\00__ctx_canary")
  (data (i32.const 32) "\\0c\\00\\00\\00__ctx_canary\\00\\00\\00\\00")
  (data (i32.const 64) "\\00\\00\\00\\00")
  (func $block (param $at i32) (param $n i32) (result i64) (local $b i64) (local $i i32)
    (local.set $b (call $alloc (i64.extend_i32_u (local.get $n))))
    (block $done (loop $copy
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (call $store_u8 (i64.add (local.get $b) (i64.extend_i32_u (local.get $i))) (i32.load8_u (i32.add (local.get $at) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $copy)))
    (local.get $b))
  (func (export "retrieve") (result i32)
    (call $log_info (call $kv_get (call $block (i32.const 0) (i32.const 16))))
    (call $log_info (call $kv_set (call $block (i32.const 32) (i32.const 20))))
    (call $output_set (call $block (i32.const 64) (i32.const 4)) (i64.const 4))
    (i32.const 0)))`;

test("a plugin cannot read or delete its own tenant's canary through kv: host entries are outside its key space", async () => {
  const { authority, close } = openTestAuthority();
  const { tenant, apiKey } = createTenant(authority, operatorFromLocalAccess(), 'Canary owner');
  const scope = mintScopeFromApiKey(authority, apiKey);
  const lines: string[] = [];
  const capabilities = tenantCapabilities({ scope, embedder: createLocalEmbedder(), slot: 'retrieval', current: () => undefined, log: (_level, message) => void lines.push(message) });
  const planted = () => [...scope.store.pluginKv.entries()].filter(({ value }) => new TextDecoder().decode(value) === tenant.canary).length;
  try {
    assert.is(planted(), 2, 'the canary is planted (once per slot)');
    for (const slot of ['retrieval', 'prompt']) assert.is(scope.store.kvGet(slot, '__ctx_canary'), undefined, `${slot}: no plugin key reaches it`);
    const instance = await createPluginInstance(await compileWat(CANARY_THIEF), { slot: 'retrieval', capabilities });
    try {
      assert.equal(await instance.retrieve({ query: 'q', k: 1, history: [] }), []);
    } finally {
      await instance.close();
    }
    assert.is(lines.length, 2, 'both responses were logged');
    assert.not.ok(lines.some((line) => line.includes('ctxcanary-')), 'kv_get did not return the canary');
    assert.is(lines[0]?.charCodeAt(1), 0, 'kv_get answered ok, not found');
    assert.is(planted(), 2, 'the delete did not touch the canary');
  } finally {
    scope.release();
    await close();
  }
});

test.run();
