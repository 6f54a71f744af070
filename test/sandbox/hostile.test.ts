/**
 * Hostile plugins: bad pointers and lengths to every host function, malformed outputs of both
 * slots, and modules that import what a plugin may not or call host functions with the wrong
 * signature. Each must end in an error status or a typed HostError, never a host crash.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { createPluginInstance } from '../../host/sandbox/instance.ts';
import { assertHostError, fixturePlugin, memoryTenant } from './harness.ts';

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

test.run();
