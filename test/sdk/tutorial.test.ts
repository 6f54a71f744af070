/**
 * sdk/README.md's five-minute tutorial, run exactly as written: the commands between its
 * `tutorial:start` and `tutorial:end` markers run in one bash script, in a fresh temp directory,
 * against a host on port 0 whose tenant holds the demo documents. The environment is what the
 * README's setup block gives (ctx-plugin on PATH from this checkout, CTX_URL, CTX_API_KEY), so the
 * docs cannot drift from what works. Nothing here needs the network.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEMO_DOCUMENTS } from '../../host/tenants/demo.ts';
import { CHILD_PROCESS_MS, within } from '../helpers/deadline.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STEP_MARK = '@@tutorial-step@@';

/** The commands of the README's tutorial block, verbatim. */
function tutorialCommands(): string[] {
  const readme = readFileSync(join(ROOT, 'sdk', 'README.md'), 'utf8');
  const block = readme.slice(readme.indexOf('<!-- tutorial:start -->'), readme.indexOf('<!-- tutorial:end -->'));
  const code = /```sh\n([\s\S]*?)```/.exec(block)?.[1] ?? '';
  return code.split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
}

/** Runs the commands in one bash script (so `cd` carries over), marking where each one's output starts. */
async function runTutorial(commands: string[], cwd: string, env: Record<string, string>): Promise<{ code: number | null; steps: string[]; stderr: string }> {
  const script = ['set -euo pipefail', ...commands.flatMap((command) => [`echo "${STEP_MARK}"`, command])].join('\n');
  const child = spawn('bash', ['-c', script], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await within(new Promise<number | null>((done) => child.on('exit', done)), 'the tutorial', 2 * CHILD_PROCESS_MS);
  return { code, steps: stdout.split(`${STEP_MARK}\n`).slice(1), stderr };
}

let host: TestHost;
const workDir = mkdtempSync(join(tmpdir(), 'ctx-tutorial-'));

test.before(async () => {
  host = await startTestHost();
});
test.after(async () => {
  await host.close();
  rmSync(workDir, { recursive: true, force: true });
});

test('the tutorial runs as written: init, build, test, check, publish, ask', async () => {
  const tenant = await host.createTenant('Tutorial shop');
  await host.ingest(tenant.apiKey, DEMO_DOCUMENTS);
  const commands = tutorialCommands();
  assert.equal(commands.map((command) => command.split(' ').slice(0, 2).join(' ')), [
    'ctx-plugin init', 'cd my-retriever', 'ctx-plugin build', 'ctx-plugin test', 'ctx-plugin test', 'ctx-plugin check', 'ctx-plugin publish', 'ctx-plugin ask',
  ]);
  const env = { CTX_HOST: ROOT, PATH: `${join(ROOT, 'sdk', 'bin')}:${process.env['PATH'] ?? ''}`, CTX_URL: host.url, CTX_API_KEY: tenant.apiKey };
  const { code, steps, stderr } = await runTutorial(commands, workDir, env);
  assert.is(code, 0, `the tutorial failed:\n${stderr}\n${steps.join('\n---\n')}`);
  const [init, , build, testCases, testQuestion, check, publish, ask] = steps as [string, string, string, string, string, string, string, string];
  assert.match(init, /created a retrieval plugin project in my-retriever/);
  assert.match(build, /^build\/plugin\.wasm {2}[\d.]+ KiB {2}retrieval plugin\n {2}exports {2}retrieve\n/);
  assert.match(testCases, /\? How much does express delivery cost\?\n {2}retrieval \(your plugin\) · [\d.]+ ms · fuel [\d,]+ · index_search×2\n {4} 1\. shipping#0/);
  assert.match(testCases, /✔ first shipping#0\n\n1 of 1 cases passed\n$/);
  assert.match(testQuestion, /\? When is the first service free\?\n[\s\S]* 1\. maintenance#0/);
  assert.match(check, /vetting report for build\/plugin\.wasm \(retrieval plugin\)\n {2}sha256 {4}[0-9a-f]{64}/);
  assert.match(check, /✔ a host would accept this module\n$/);
  const published = /module {2}([0-9a-f]{64}) {2}\(as run/.exec(publish)?.[1];
  assert.ok(published !== undefined, publish);
  assert.match(publish, /^published build\/plugin\.wasm as retrieval version 1; new sessions run it\n/);
  assert.match(ask, /^Express delivery arrives the next working day and costs 15 euros\. \[shipping#0\]\n\nsources \(cache miss, [\d.]+ ms\):\n {2}\[shipping#0\] Shipping and delivery/);
  assert.match(ask, new RegExp(`session plugins: retrieval ${published}, prompt [0-9a-f]{64}\\n$`), 'the session runs the published plugin');
  // Progress went to stderr, one line per slow step (no terminal here, so no spinner).
  // A step's duration prints as `850 ms` or, past a second (a loaded machine), `1.2 s`.
  const took = String.raw`(?:\d+ ms|\d+\.\d s)`;
  assert.match(stderr, new RegExp(String.raw`✔ compiled assembly/index\.ts \([\d.]+ KiB\) · ${took}\n`));
  assert.match(stderr, new RegExp(String.raw`✔ uploading build/plugin\.wasm to http://127\.0\.0\.1:\d+ · ${took}\n`));
});

test.run();
