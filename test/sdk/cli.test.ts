/**
 * `ctx-plugin` as a vendor meets it, through the real launcher in a child process: exit code 2 for
 * a wrong command line, 1 for every failure or refusal, and each error printed as `[CODE] message`
 * with a `next:` line. Covers the project file, the compiler, the host's vetting, failing test
 * cases and plugins, fixtures, `--json`, and publishing to a host that is down or says no.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEMO_DOCUMENTS } from '../../host/tenants/demo.ts';
import { buildPlugin } from '../../scripts/build-plugins.ts';
import { CHILD_PROCESS_MS, within } from '../helpers/deadline.ts';
import { startTestHost } from '../helpers/host.ts';
import { compileWat } from '../sandbox/wat.ts';

const CLI = fileURLToPath(new URL('../../sdk/bin/ctx-plugin', import.meta.url));
const BUILTIN_RETRIEVAL = fileURLToPath(new URL('../../build/plugins/retrieval.wasm', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'ctx-plugin-cli-'));

test.after(() => rmSync(work, { recursive: true, force: true }));

/** Runs ctx-plugin in `cwd`. */
async function cli(args: string[], cwd: string = work): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, CTX_URL: '', CTX_API_KEY: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await within(new Promise<number | null>((resolve) => child.on('exit', resolve)), `ctx-plugin ${args.join(' ')}`, CHILD_PROCESS_MS);
  return { code, stdout, stderr };
}

/** A project directory with `files` (ctx-plugin.json as an object). */
function project(name: string, config: unknown, files: Record<string, string> = {}): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'assembly'), { recursive: true });
  writeFileSync(join(dir, 'ctx-plugin.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'documents.json'), JSON.stringify({ documents: DEMO_DOCUMENTS }));
  for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
  return dir;
}

test('a wrong command line exits 2 with commander’s message', async () => {
  const unknown = await cli(['frobnicate']);
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, /error: unknown command 'frobnicate'/);
  const noSlot = await cli(['init', 'x']);
  assert.is(noSlot.code, 2);
  assert.match(noSlot.stderr, /error: required option '--slot <slot>' not specified/);
  const badSlot = await cli(['init', 'x', '--slot', 'ranking']);
  assert.is(badSlot.code, 2);
  assert.match(badSlot.stderr, /Allowed choices are retrieval, prompt/);
  const wasmWithoutSlot = await cli(['check', '--wasm', BUILTIN_RETRIEVAL]);
  assert.is(wasmWithoutSlot.code, 2);
  assert.match(wasmWithoutSlot.stderr, /^ctx-plugin: \[CLI_USAGE\] --wasm needs --slot retrieval\|prompt .*\n {2}next: add --slot retrieval or --slot prompt\n$/);
});

test('no project, a bad project file, an existing init target: exit 1 with the next step', async () => {
  const empty = join(work, 'empty');
  mkdirSync(empty);
  const missing = await cli(['build'], empty);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /\[CLI_PROJECT_NOT_FOUND\] no ctx-plugin\.json in .*empty\n {2}next: run this inside a plugin project, create one with `ctx-plugin init/);
  const typo = project('typo', { slot: 'retrieval', tests: [{ question: 'q', expect: { frist: 'a#0' } }] });
  const invalid = await cli(['build'], typo);
  assert.is(invalid.code, 1);
  assert.match(invalid.stderr, /\[CLI_PROJECT_INVALID\] ctx-plugin\.json: tests\[0\]\.expect\.frist: unknown key; known: first, chunks, absent, text, cacheable, fuelMax\n/);
  const exists = await cli(['init', 'typo', '--slot', 'prompt']);
  assert.is(exists.code, 1);
  assert.match(exists.stderr, /\[CLI_INIT_TARGET_EXISTS\] .*typo exists and is not empty\n {2}next: choose a new directory name/);
});

test('a compile error exits 1 with the compiler’s diagnostic, file and line', async () => {
  const dir = project('broken', { slot: 'retrieval' }, {
    'assembly/index.ts': 'import { readRetrieveInput } from "@ctx-host/plugin-sdk";\nexport function retrieve(): i32 {\n  const input = readRetrieveInput();\n  return input.nothing;\n}\n',
  });
  const result = await cli(['build'], dir);
  assert.is(result.code, 1);
  assert.match(result.stderr, /\[CLI_BUILD_FAILED\] cannot compile assembly\/index\.ts: 1 compile error\(s\)/);
  assert.match(result.stderr, /Property 'nothing' does not exist/);
  assert.match(result.stderr, /assembly\/index\.ts\(4,16\)/);
  assert.match(result.stderr, /next: fix the errors above/);
});

test('a module the host would refuse: check exits 1 with PLUGIN_INVALID naming the import', async () => {
  const wasi = await compileWat(`(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "retrieve") (result i32) (i32.const 0)))`);
  writeFileSync(join(work, 'wasi.wasm'), wasi);
  const result = await cli(['check', '--wasm', 'wasi.wasm', '--slot', 'retrieval']);
  assert.is(result.code, 1);
  assert.match(result.stderr, /\[PLUGIN_INVALID\] WASI is not available to plugins .*wasi_snapshot_preview1\.fd_write\n {2}next: change what the message names/);
});

test('failing cases exit 1: an expectation not met, a plugin that aborts, with its log line', async () => {
  const { outFile } = await buildPlugin('test/fixtures/plugins/failures.ts', 'build/test/plugins/failures.wasm');
  const dir = project('expects', { slot: 'retrieval', fixture: 'documents.json', tests: [{ question: 'How much does express delivery cost?', expect: { first: 'returns#0' } }] });
  const unmet = await cli(['test', '--wasm', BUILTIN_RETRIEVAL], dir);
  assert.is(unmet.code, 1);
  assert.match(unmet.stdout, /✖ first returns#0: the result starts with shipping#0\n\n0 of 1 cases passed\n$/);
  assert.match(unmet.stderr, /\[CLI_TEST_FAILED\] 1 of 1 cases failed\n {2}next: read the ✖ lines above/);
  const aborted = await cli(['test', 'abort', 'fine', '--wasm', outFile, '--slot', 'retrieval', '--fixture', join(dir, 'documents.json')]);
  assert.is(aborted.code, 1);
  assert.match(aborted.stdout, /log retrieval \[error\] the fixture aborted on purpose at test\/fixtures\/plugins\/failures\.ts:\d+:\d+\n {2}✖ \[PLUGIN_FAILED\] retrieve trapped/);
  assert.match(aborted.stdout, /1 of 2 cases passed/, 'the next case gets fresh instances and passes');
});

test('test --json prints the results as JSON; a bad fixture exits 1', async () => {
  const dir = join(work, 'expects');
  const json = await cli(['test', 'How much does express delivery cost?', '--wasm', BUILTIN_RETRIEVAL, '--json'], dir);
  assert.is(json.code, 0, json.stderr);
  const [result] = JSON.parse(json.stdout) as { passed: boolean; ranked: { chunkId: string }[]; retrieval: { fuel: number; hostCalls: Record<string, number> } }[];
  assert.ok(result?.passed);
  assert.is(result?.ranked[0]?.chunkId, 'shipping#0');
  assert.ok((result?.retrieval.fuel ?? 0) > 0);
  assert.equal(result?.retrieval.hostCalls, { index_search: 2 });
  assert.is(json.stderr, '', 'no progress lines with --json');
  writeFileSync(join(work, 'bad-docs.json'), JSON.stringify({ documents: [{ text: '' }] }));
  const bad = await cli(['test', 'q', '--wasm', BUILTIN_RETRIEVAL, '--slot', 'retrieval', '--fixture', 'bad-docs.json']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /\[CLI_FIXTURE_INVALID\] the fixture bad-docs\.json is not valid: documents\[0\]\.text/);
});

test('publish: a host that is down, a key the host refuses', async () => {
  const down = await cli(['publish', '--wasm', BUILTIN_RETRIEVAL, '--slot', 'retrieval', '--url', 'http://127.0.0.1:9', '--key', 'ctx_x', '--no-check']);
  assert.is(down.code, 1);
  assert.match(down.stderr, /\[CLIENT_CONNECT_FAILED\] no host answered at http:\/\/127\.0\.0\.1:9 .*\n {2}next: is the host running at --url\?/);
  const host = await startTestHost();
  try {
    const refused = await cli(['publish', '--wasm', BUILTIN_RETRIEVAL, '--slot', 'retrieval', '--url', host.url, '--key', 'ctx_0000000000000000_wrong', '--no-check']);
    assert.is(refused.code, 1);
    assert.match(refused.stderr, /\[AUTH_INVALID_KEY\] the API key is unknown or revoked\n {2}next: check --key \/ CTX_API_KEY/);
  } finally {
    await host.close();
  }
});

test.run();
