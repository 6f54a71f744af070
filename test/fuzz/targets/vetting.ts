/**
 * Plugin vetting and module compilation, as a tenant uploading modules would drive them:
 * arbitrary bytes, bytes behind a valid wasm header, and valid plugins (the built-ins and a
 * hand-written WAT plugin) mutated byte by byte.
 *
 * Properties: `compilePlugin` (what a session start does) gives a module or PLUGIN_LOAD_FAILED;
 * `vetPlugin` (what an upload does, binaryen metering included) gives a report or PLUGIN_INVALID,
 * never another error, and accepts every unmutated valid plugin; a module it accepts compiles
 * as metered with its slot's export, and an instance of it either answers a call or fails with a
 * PLUGIN_* code — it cannot take the host down, and fuel ends whatever it runs.
 */
import fc from 'fast-check';
import type { ErrorCode } from '../../../host/errors.ts';
import { LIMITS } from '../../../host/limits.ts';
import { createPluginInstance, type PluginInstance } from '../../../host/sandbox/instance.ts';
import { createMeteringService } from '../../../host/sandbox/metering-service.ts';
import { assertSlotExport, compilePlugin } from '../../../host/sandbox/module-cache.ts';
import type { PluginSlot } from '../../../host/sandbox/slots.ts';
import { vetPlugin, type VettedPlugin } from '../../../host/sandbox/vetting.ts';
import { builtinPlugin, memoryTenant } from '../../sandbox/harness.ts';
import { compileWat, watFixture } from '../../sandbox/wat.ts';
import { mutatedFrom } from '../mutate.ts';
import { ensure, expectHostError, PropertyViolation, recordInput, runCheck, type FuzzTarget, type OpenTarget } from '../target.ts';

/** What a call of an accepted module may fail with. */
const CALL_CODES: readonly ErrorCode[] = [
  'PLUGIN_FAILED', 'PLUGIN_BAD_OUTPUT', 'PLUGIN_OUTPUT_LIMIT', 'PLUGIN_HOST_CALL_LIMIT', 'PLUGIN_MEMORY_LIMIT',
  'PLUGIN_LOAD_FAILED', 'PLUGIN_FUEL_EXHAUSTED', 'PLUGIN_TIMEOUT',
];

/** A prompt plugin by hand: one system message "ok", cacheable. */
const WAT_PROMPT = `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\\01\\01\\00\\00\\00\\00\\01\\00\\00\\00\\00\\02\\00\\00\\00ok")
  (func (export "assemble") (result i32) (local $block i64) (local $i i32)
    (local.set $block (call $alloc (i64.const 18)))
    (block $done (loop $copy
      (br_if $done (i32.ge_u (local.get $i) (i32.const 18)))
      (call $store_u8 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i))) (i32.load8_u offset=16 (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $copy)))
    (call $output_set (local.get $block) (i64.const 18))
    (i32.const 0)))`;

interface Upload {
  bytes: Uint8Array;
  slot: PluginSlot;
  /** An unmutated valid plugin of this slot: vetting must accept it. */
  valid: boolean;
}

async function runOnce(vetted: VettedPlugin, slot: PluginSlot): Promise<void> {
  const compiled = await compilePlugin(vetted.module);
  ensure(compiled.metered, 'an accepted module runs unmetered');
  assertSlotExport(compiled, slot);
  let instance: PluginInstance;
  try {
    instance = await createPluginInstance(compiled, { slot, capabilities: memoryTenant().capabilities, fuelPerCall: LIMITS.pluginFuelPerCallMin });
  } catch (error: unknown) {
    expectHostError('vetting', error, CALL_CODES);
    return;
  }
  try {
    if (instance.slot === 'retrieval') await instance.retrieve({ query: 'fuzz', k: 4, history: [] });
    else await instance.assemble({ systemPrompt: 'system', query: 'fuzz', tokenBudget: 100, history: [], chunks: [{ chunkId: 'a#0', docId: 'a', title: 'A', text: 'text', score: 1 }] });
  } catch (error: unknown) {
    expectHostError('vetting', error, CALL_CODES);
  } finally {
    await instance.close();
  }
}

export const vettingTarget: FuzzTarget = {
  name: 'vetting',
  summary: 'compilePlugin and vetPlugin (with binaryen metering) over arbitrary and mutated wasm; accepted modules instantiated and called',
  testRuns: 150,
  async open(): Promise<OpenTarget> {
    const metering = createMeteringService();
    const seeds: { bytes: Uint8Array; slot: PluginSlot }[] = [
      { bytes: await watFixture('wat-retrieval'), slot: 'retrieval' },
      { bytes: await compileWat(WAT_PROMPT), slot: 'prompt' },
      { bytes: await builtinPlugin('retrieval'), slot: 'retrieval' },
      { bytes: await builtinPlugin('prompt'), slot: 'prompt' },
    ];
    const small = seeds.slice(0, 2);
    const slot = fc.constantFrom<PluginSlot>('retrieval', 'prompt');
    const header = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);
    const upload: fc.Arbitrary<Upload> = fc.oneof(
      { arbitrary: fc.record({ bytes: fc.uint8Array({ maxLength: 256 }), slot, valid: fc.constant(false) }), weight: 1 },
      { arbitrary: fc.record({ bytes: fc.uint8Array({ maxLength: 128 }).map((rest) => Uint8Array.from([...header, ...rest])), slot, valid: fc.constant(false) }), weight: 1 },
      // Small seeds mutate into modules that still validate far more often than large ones do.
      { arbitrary: fc.constantFrom(...small).chain((seed) => mutatedFrom(seed.bytes, 2).map((bytes) => ({ bytes, slot: seed.slot, valid: false }))), weight: 8 },
      // The built-ins are larger: metering one that still validates takes a few hundred ms.
      { arbitrary: fc.constantFrom(...seeds.slice(2)).chain((seed) => mutatedFrom(seed.bytes, 2).map((bytes) => ({ bytes, slot: seed.slot, valid: false }))), weight: 1 },
      { arbitrary: fc.constantFrom(...seeds).map((seed) => ({ ...seed, valid: true })), weight: 1 },
    );
    const property = fc.asyncProperty(upload, async ({ bytes, slot: uploadSlot, valid }) => {
      recordInput('vetting', bytes, `slot ${uploadSlot}`);
      try {
        await compilePlugin(bytes);
      } catch (error: unknown) {
        expectHostError('vetting', error, ['PLUGIN_LOAD_FAILED']);
      }
      let vetted: VettedPlugin;
      try {
        vetted = await vetPlugin(bytes, uploadSlot, metering);
      } catch (error: unknown) {
        if (error instanceof PropertyViolation) throw error;
        expectHostError('vetting', error, ['PLUGIN_INVALID']);
        ensure(!valid, `a valid ${uploadSlot} plugin was refused: ${String(error)}`);
        return;
      }
      ensure(vetted.report.slot === uploadSlot && vetted.report.bytes === bytes.byteLength, 'the report describes another upload');
      await runOnce(vetted, uploadSlot);
    });
    return { check: (params) => runCheck(property, params), close: () => metering.close() };
  },
};
