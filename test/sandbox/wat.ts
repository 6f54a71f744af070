/**
 * Compiles WebAssembly text to a module with binaryen's parser, in a child process: loading
 * binaryen through tsx's loader takes seconds, natively a fraction of one. Not a test file itself.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';

const COMPILE = `
const { default: binaryen } = await import('binaryen');
let text = '';
for await (const part of process.stdin) text += part;
const module = binaryen.parseText(text);
const f = binaryen.Features;
// What toolchains emit by default; 'all' (argv) for modules that need a proposal plugins may not use.
module.setFeatures(process.argv.includes('all') ? f.All : f.MutableGlobals | f.SignExt | f.BulkMemory | f.BulkMemoryOpt | f.NontrappingFPToInt | f.Multivalue | f.ReferenceTypes | f.Atomics);
if (!module.validate()) { process.stderr.write('invalid module'); process.exit(1); }
process.stdout.write(module.emitBinary());
`;

/** The module for `text` (WebAssembly text format); `features: 'all'` enables every wasm proposal. */
export function compileWat(text: string, features: 'default' | 'all' = 'default'): Uint8Array {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', COMPILE, features], { input: text, maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`cannot compile WAT: ${result.stderr.toString()}`);
  return new Uint8Array(result.stdout);
}

/** Compiles `test/fixtures/plugins/<name>.wat`. */
export async function watFixture(name: string): Promise<Uint8Array> {
  return compileWat(await readFile(`test/fixtures/plugins/${name}.wat`, 'utf8'));
}
