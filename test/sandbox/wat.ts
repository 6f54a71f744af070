/**
 * Compiles WebAssembly text to a module with binaryen's parser, in a child process: loading
 * binaryen through tsx's loader takes seconds, natively a fraction of one. The child is awaited,
 * not waited for synchronously: on a loaded machine it takes seconds, and a test process whose
 * event loop stood still that long would find its idle keep-alive connections to a test host
 * closed under the next request (both ends' timers fire at once when the loop resumes).
 * Not a test file itself.
 */
import { spawn } from 'node:child_process';
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
export async function compileWat(text: string, features: 'default' | 'all' = 'default'): Promise<Uint8Array> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', COMPILE, features], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stdin.end(text);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`cannot compile WAT: ${Buffer.concat(stderr).toString()}`);
  return new Uint8Array(Buffer.concat(stdout));
}

/** Compiles `test/fixtures/plugins/<name>.wat`. */
export async function watFixture(name: string): Promise<Uint8Array> {
  return compileWat(await readFile(`test/fixtures/plugins/${name}.wat`, 'utf8'));
}
