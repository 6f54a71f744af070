/**
 * Limits compiled into the module (metering.ts) and enforced by the instance (fuel.ts): an endless
 * loop in a call and in the start function both stop with PLUGIN_FUEL_EXHAUSTED, the fuel budget
 * and the memory cap each hold on both sides, a memory bomb is PLUGIN_MEMORY_LIMIT, and metered
 * modules compute exactly what the unmetered ones do. Real AssemblyScript fixtures, real binaryen.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { createPluginInstance, type RetrievalPluginInstance } from '../../host/sandbox/instance.ts';
import { createMeteringService } from '../../host/sandbox/metering-service.ts';
import { FUEL_EXPORT, GROW_REFUSED_EXPORT, MeteringRefusal, START_EXPORT } from '../../host/sandbox/metering.ts';
import { compilePlugin, type CompiledPlugin } from '../../host/sandbox/module-cache.ts';
import { addChunk, assertHostError, assertProgrammerError, builtinPlugin, fixturePlugin, memoryTenant, withDeadline } from './harness.ts';
import { unwrapHostMetering } from '../../host/sandbox/remeter.ts';
import { vetPlugin } from '../../host/sandbox/vetting.ts';
import { compileWat } from './wat.ts';

const metering = createMeteringService();
test.after(() => metering.close());

async function metered(bytes: Uint8Array, memoryPagesMax?: number): Promise<CompiledPlugin> {
  const result = await metering.meter(bytes, memoryPagesMax === undefined ? {} : { memoryPagesMax });
  return compilePlugin(result.bytes);
}

const ask = (query: string) => ({ query, k: 1, history: [] });

test('metering exports the fuel counter, the grow flag and the former start function; the start section is gone', async () => {
  const result = await metering.meter(await fixturePlugin('cpu-and-memory'));
  const module = await WebAssembly.compile(result.bytes);
  const exports = WebAssembly.Module.exports(module).map((entry) => `${entry.kind} ${entry.name}`);
  for (const name of [`global ${FUEL_EXPORT}`, `global ${GROW_REFUSED_EXPORT}`, `function ${START_EXPORT}`]) assert.ok(exports.includes(name), name);
  assert.ok(result.hadStart);
  assert.ok(result.sites.loops > 0 && result.sites.functions > 0 && result.sites.dynamic > 0);
  assert.equal(result.memory, { initialPages: 1, declaredMaxPages: null, maxPages: LIMITS.pluginMemoryBytesMax / 65536 });
});

test('an endless loop in a call is PLUGIN_FUEL_EXHAUSTED within the budget; the instance is then refused and a fresh one works', async () => {
  const compiled = await metered(await fixturePlugin('cpu-and-memory'));
  const instance = await createPluginInstance(compiled, { slot: 'retrieval', capabilities: memoryTenant().capabilities });
  // The code is the proof that fuel, not the clock, ended the loop (the watchdog would say PLUGIN_TIMEOUT).
  await assertHostError(
    withDeadline(instance.retrieve(ask('spin')), 10_000),
    'PLUGIN_FUEL_EXHAUSTED',
    `retrieve ran out of fuel: it spent its whole budget of ${LIMITS.pluginFuelPerCallDefault} per call`,
  );
  await assertHostError(instance.retrieve(ask('hello')), 'PLUGIN_FAILED', 'failed earlier (PLUGIN_FUEL_EXHAUSTED)');
  await instance.close();
  const fresh = await createPluginInstance(compiled, { slot: 'retrieval', capabilities: memoryTenant().capabilities });
  assert.equal(await fresh.retrieve(ask('hello')), [{ chunkId: 'hello done', score: 1 }]);
  await fresh.close();
});

test('an endless loop in the start function stops with PLUGIN_FUEL_EXHAUSTED at load', async () => {
  const compiled = await metered(await fixturePlugin('start-spin'));
  await assertHostError(
    withDeadline(createPluginInstance(compiled, { slot: 'retrieval', capabilities: memoryTenant().capabilities, fuelPerCall: LIMITS.pluginFuelPerCallMin }), 10_000),
    'PLUGIN_FUEL_EXHAUSTED',
    `the start function ran out of fuel: it spent its whole budget of ${LIMITS.pluginFuelPerCallMin} per call`,
  );
});

test('fuelPerCall: a call that needs exactly the budget passes; one unit less is PLUGIN_FUEL_EXHAUSTED', async () => {
  const compiled = await metered(await fixturePlugin('cpu-and-memory'));
  const query = 'work:400000';
  let remaining = 0n;
  const measuring = await createPluginInstance(compiled, {
    slot: 'retrieval',
    capabilities: memoryTenant().capabilities,
    guards: { afterCall: (exports) => ((remaining = (exports[FUEL_EXPORT] as WebAssembly.Global).value as bigint), null) },
  });
  await measuring.retrieve(ask(query));
  await measuring.close();
  const needed = LIMITS.pluginFuelPerCallDefault - Number(remaining);
  assert.ok(needed > LIMITS.pluginFuelPerCallMin, `the call needs ${needed} fuel, more than the minimum budget`);
  const run = async (fuelPerCall: number, check: (instance: RetrievalPluginInstance) => Promise<void>) => {
    const instance = await createPluginInstance(compiled, { slot: 'retrieval', capabilities: memoryTenant().capabilities, fuelPerCall });
    try {
      await check(instance);
    } finally {
      await instance.close();
    }
  };
  await run(needed, async (instance) => assert.equal(await instance.retrieve(ask(query)), [{ chunkId: 'work done', score: 1 }]));
  await run(needed - 1, async (instance) => {
    await assertHostError(instance.retrieve(ask(query)), 'PLUGIN_FUEL_EXHAUSTED', `budget of ${needed - 1} per call`);
  });
});

test('fuelPerCall outside its range is a host bug', async () => {
  const compiled = await metered(await fixturePlugin('cpu-and-memory'));
  for (const fuelPerCall of [LIMITS.pluginFuelPerCallMin - 1, LIMITS.pluginFuelPerCallMax + 1]) {
    await assertProgrammerError(
      createPluginInstance(compiled, { slot: 'retrieval', capabilities: memoryTenant().capabilities, fuelPerCall }),
      new RegExp(`^fuelPerCall ${fuelPerCall} must be an integer in ${LIMITS.pluginFuelPerCallMin}\\.\\.${LIMITS.pluginFuelPerCallMax}$`),
    );
  }
});

test('memory cap: the metered maximum admits growth to exactly the cap and refuses one page more', async () => {
  const cap = 8;
  const result = await metering.meter(await fixturePlugin('cpu-and-memory'), { memoryPagesMax: cap });
  assert.is(result.memory.maxPages, cap);
  const module = await WebAssembly.compile(result.bytes);
  const stubs: Record<string, Record<string, () => unknown>> = {};
  for (const entry of WebAssembly.Module.imports(module)) (stubs[entry.module] ??= {})[entry.name] = () => 0n;
  const memory = new WebAssembly.Instance(module, stubs).exports['memory'] as WebAssembly.Memory;
  const initial = memory.buffer.byteLength / 65536;
  memory.grow(cap - initial);
  assert.is(memory.buffer.byteLength, cap * 65536);
  assert.throws(() => memory.grow(1), RangeError);
});

test('a memory.grow bomb and an allocation bomb stop at the cap with PLUGIN_MEMORY_LIMIT', async () => {
  const compiled = await metered(await fixturePlugin('cpu-and-memory'));
  for (const query of ['grow:100000', 'alloc:64']) {
    const instance = await createPluginInstance(compiled, { slot: 'retrieval', capabilities: memoryTenant().capabilities });
    await assertHostError(withDeadline(instance.retrieve(ask(query))), 'PLUGIN_MEMORY_LIMIT', /^retrieve: the plugin tried to grow its linear memory past its cap \(it holds \d+ bytes; the cap is at most 16777216 bytes\)$/);
    await instance.close();
  }
  const within = await createPluginInstance(compiled, { slot: 'retrieval', capabilities: memoryTenant().capabilities });
  assert.equal(await within.retrieve(ask('alloc:8')), [{ chunkId: 'alloc done', score: 1 }], 'allocating within the cap works');
  await within.close();
});

test('the built-in plugins give the same results metered and unmetered', async () => {
  const tenant = memoryTenant();
  tenant.ranking.vector = ['a#0', 'b#0', 'c#0'];
  tenant.ranking.lexical = ['c#0', 'a#0'];
  const chunks = [addChunk(tenant, 'a#0', 'A', 'alpha text'), addChunk(tenant, 'c#0', 'C', 'gamma text')].map((chunk, i) => ({ ...chunk, score: 1 / (i + 1) }));
  const results: unknown[] = [];
  for (const meter of [false, true]) {
    const retrievalBytes = await builtinPlugin('retrieval');
    const promptBytes = await builtinPlugin('prompt');
    const retrieval = await createPluginInstance(meter ? await metered(retrievalBytes) : retrievalBytes, { slot: 'retrieval', capabilities: tenant.capabilities });
    const prompt = await createPluginInstance(meter ? await metered(promptBytes) : promptBytes, { slot: 'prompt', capabilities: tenant.capabilities });
    results.push([
      await retrieval.retrieve({ query: 'alpha', k: 3, history: [] }),
      await prompt.assemble({ systemPrompt: 'Be brief.', query: 'alpha?', tokenBudget: 500, history: [], chunks }),
    ]);
    await Promise.all([retrieval.close(), prompt.close()]);
  }
  assert.equal(results[1], results[0]);
});

test('a plugin written in WebAssembly text (no AssemblyScript, no PDK) runs metered, unchanged', async () => {
  const instance = await createPluginInstance(await metered(await compileWat(WAT_RETRIEVAL)), { slot: 'retrieval', capabilities: memoryTenant().capabilities });
  assert.equal(await instance.retrieve(ask('anything')), [{ chunkId: 'wat#0', score: 1 }]);
  await instance.close();
});

test('metering refuses what it cannot meter or cap: shared memory, GC, a memory over the cap, reserved exports', async () => {
  const refusal = async (wat: string, message: string | RegExp) => {
    let caught: unknown;
    await metering.meter(await compileWat(wat, 'all')).catch((error: unknown) => (caught = error));
    assert.instance(caught, MeteringRefusal);
    if (typeof message === 'string') assert.is((caught as Error).message, message);
    else assert.match((caught as Error).message, message);
  };
  await refusal('(module (memory (export "memory") 1 1 shared))', 'the memory is shared; shared memories are refused (memory.atomic.wait could block the host)');
  await refusal(
    '(module (type $t (struct (field i32))) (memory (export "memory") 1) (func (export "f") (result i32) (drop (struct.new $t (i32.const 1))) (i32.const 0)))',
    // binaryen parses GC types whatever features it is given; the walker refuses the instruction.
    'the module uses an instruction the metering does not know (binaryen expression id 68)',
  );
  await refusal('(module (memory (export "memory") 257))', 'the memory starts at 257 pages (16448 KiB), over the cap of 256 pages (16384 KiB)');
  await refusal('(module (memory 1))', 'the memory is not exported; Extism plugins export their memory');
  await refusal('(module (memory (export "memory") 1) (global (export "__ctx_fuel") i32 (i32.const 0)))', 'the export "__ctx_fuel" uses the prefix __ctx_, which the host reserves');
  await refusal('(module (func (export "f")))', 'the module defines no memory; a plugin must define and export one');
});

test('bulk memory work is charged by its size: a fill loop stops on fuel long before it could stall the host', async () => {
  // Each iteration fills 16 MiB, charged 1 per 16 bytes: 1,048,576, more than the smallest budget,
  // so the first fill is refused before it runs. Charged as one instruction, the loop would run
  // ~200,000 fills on that budget and the watchdog, not fuel, would end it (PLUGIN_TIMEOUT).
  const wat = `(module (memory (export "memory") 256 256)
    (func (export "retrieve") (result i32) (loop $l (memory.fill (i32.const 0) (i32.const 1) (i32.const 16777216)) (br $l)) (i32.const 0)))`;
  const instance = await createPluginInstance(await metered(await compileWat(wat)), { slot: 'retrieval', capabilities: memoryTenant().capabilities, fuelPerCall: LIMITS.pluginFuelPerCallMin });
  await assertHostError(withDeadline(instance.retrieve(ask('q')), 10_000), 'PLUGIN_FUEL_EXHAUSTED', 'retrieve ran out of fuel');
  await instance.close();
});

/** Unsigned LEB128. */
function leb(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  do {
    let byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
    if (rest !== 0) byte |= 0x80;
    out.push(byte);
  } while (rest !== 0);
  return out;
}

/**
 * A retrieval module whose one function nests its expressions `depth` levels deep, as binaryen
 * counts them: the body block, a drop, `depth - 3` f32.neg around one f32.const (a chain of unary
 * operators is the cheapest way to nest, and what overflowed the worker's stack first).
 */
function nestedModule(depth: number): Uint8Array {
  const body = [0, 0x43, 0, 0, 0, 0, ...new Array<number>(depth - 3).fill(0x8c), 0x1a, 0x41, 0, 0x0b];
  const section = (id: number, content: number[]) => [id, ...leb(content.length), ...content];
  const name = (text: string) => [text.length, ...new TextEncoder().encode(text)];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 0, 1, 0x7f]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0, 1]),
    ...section(7, [2, ...name('retrieve'), 0, 0, ...name('memory'), 2, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

test('expression depth: a function nested to the limit is metered and runs; one level deeper is PLUGIN_INVALID naming the limit', async () => {
  const atLimit = await metered(nestedModule(LIMITS.pluginExpressionDepthMax));
  const instance = await createPluginInstance(atLimit, { slot: 'retrieval', capabilities: memoryTenant().capabilities });
  await assertHostError(instance.retrieve(ask('q')), 'PLUGIN_BAD_OUTPUT', 'retrieve output');
  await instance.close();
  const message = `function 0 nests its expressions ${LIMITS.pluginExpressionDepthMax + 1} levels deep, over the limit of ${LIMITS.pluginExpressionDepthMax} (pluginExpressionDepthMax)`;
  await assertHostError(vetPlugin(nestedModule(LIMITS.pluginExpressionDepthMax + 1), 'retrieval', metering), 'PLUGIN_INVALID', message);
});

test('a module nested far past the limit (it overflowed the metering stack: a 500) is PLUGIN_INVALID too', async () => {
  await assertHostError(
    vetPlugin(nestedModule(200_000), 'retrieval', metering),
    'PLUGIN_INVALID',
    new RegExp(`^(function 0|the module) nests its expressions (200000 levels deep|too deeply to be metered), over the limit of ${LIMITS.pluginExpressionDepthMax} \\(pluginExpressionDepthMax\\)$`),
  );
  // The worker is still usable afterwards.
  assert.ok((await metering.meter(nestedModule(10))).bytes.byteLength > 0);
});

/** Spends most of the largest fuel budget per call in a counting loop (fuel is counted, not timed), then returns no chunks. */
const SPENDER = `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "retrieve") (result i32) (local $i i32) (local $out i64)
    (loop $spin (br_if $spin (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 40000000))))
    (local.set $out (call $alloc (i64.const 4)))
    (call $store_u8 (local.get $out) (i32.const 0))
    (call $store_u8 (i64.add (local.get $out) (i64.const 1)) (i32.const 0))
    (call $store_u8 (i64.add (local.get $out) (i64.const 2)) (i32.const 0))
    (call $store_u8 (i64.add (local.get $out) (i64.const 3)) (i32.const 0))
    (call $output_set (local.get $out) (i64.const 4))
    (i32.const 0)))`;

test('a metered module brought back from outside (an import) is metered again and keeps its whole budget in every call', async () => {
  const once = await metering.meter(await compileWat(SPENDER));
  const unwrapped = unwrapHostMetering(once.bytes);
  const exported = WebAssembly.Module.exports(new WebAssembly.Module(unwrapped)).map((entry) => entry.name);
  assert.equal(exported.sort(), ['memory', 'retrieve'], 'the host metering exports are gone, so vetting takes it like an upload');
  const { module } = await vetPlugin(unwrapped, 'retrieval', metering);
  const instance = await createPluginInstance(await compilePlugin(module), { slot: 'retrieval', capabilities: memoryTenant().capabilities, fuelPerCall: LIMITS.pluginFuelPerCallMax });
  try {
    // The first metering's counter is no longer refilled: were it still at its old start, these
    // calls together would spend it and trap.
    for (let call = 0; call < 4; call += 1) assert.equal(await withDeadline(instance.retrieve(ask('q')), 20_000), [], `call ${call + 1}`);
  } finally {
    await instance.close();
  }
  const plain = await compileWat('(module (memory (export "memory") 1) (func (export "retrieve") (result i32) (i32.const 0)))');
  assert.is(unwrapHostMetering(plain), plain, 'a module without the host metering exports passes unchanged');
});

const WAT_RETRIEVAL = `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\\01\\00\\00\\00\\05\\00\\00\\00wat#0\\00\\00\\80\\3f")
  (func (export "retrieve") (result i32) (local $block i64) (local $i i32)
    (local.set $block (call $alloc (i64.const 17)))
    (block $done (loop $copy
      (br_if $done (i32.ge_u (local.get $i) (i32.const 17)))
      (call $store_u8 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i))) (i32.load8_u offset=16 (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $copy)))
    (call $output_set (local.get $block) (i64.const 17))
    (i32.const 0)))`;

test.run();
