/**
 * The local harness behind `ctx-plugin test`, in process: the project file's validation, fixture
 * loading, and runCase on the host's sandbox — fuel measured, host calls counted, fresh instances
 * per case while kv carries over, plugin failures (a trap, spent fuel) reported as results with
 * their host codes, and expectations judged.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MeteringService } from '../../host/sandbox/metering-service.ts';
import { createMeteringService } from '../../host/sandbox/metering-service.ts';
import type { PluginModules } from '../../host/sandbox/session-plugins.ts';
import { DEMO_DOCUMENTS } from '../../host/tenants/demo.ts';
import { CliError } from '../../sdk/cli/errors.ts';
import { loadFixture } from '../../sdk/cli/fixture.ts';
import { openFixtureTenant } from '../../sdk/cli/fixture-tenant.ts';
import { runCase } from '../../sdk/cli/harness.ts';
import { builtinModules, vetModule } from '../../sdk/cli/modules.ts';
import { loadProject, type TestCase } from '../../sdk/cli/project.ts';
import { buildPlugin } from '../../scripts/build-plugins.ts';

const work = mkdtempSync(join(tmpdir(), 'ctx-harness-'));
let metering: MeteringService;
let builtins: PluginModules;

test.before(async () => {
  metering = createMeteringService();
  builtins = await builtinModules(metering);
});
test.after(async () => {
  await metering.close();
  rmSync(work, { recursive: true, force: true });
});

function cliError(run: () => unknown): CliError {
  try {
    run();
  } catch (error: unknown) {
    assert.instance(error, CliError);
    return error as CliError;
  }
  throw new Error('expected a CliError');
}

function projectWith(config: unknown): string {
  const dir = mkdtempSync(join(work, 'project-'));
  writeFileSync(join(dir, 'ctx-plugin.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

async function fixtureModule(name: string, slot: 'retrieval' | 'prompt') {
  const { outFile } = await buildPlugin(`test/fixtures/plugins/${name}.ts`, `build/test/plugins/${name}.wasm`);
  return (await vetModule(new Uint8Array(readFileSync(outFile)), slot, metering)).compiled;
}

const ask = (question: string, expect: TestCase['expect'] = {}): TestCase => ({ question, history: [], expect });

test('loadProject: defaults, and each refusal names the key', () => {
  const loaded = loadProject(projectWith({ slot: 'prompt' }));
  assert.is(loaded.slot, 'prompt');
  assert.ok(loaded.entry.endsWith('assembly/index.ts') && loaded.outFile.endsWith('build/plugin.wasm') && loaded.fixture.endsWith('fixture/documents.json'));
  assert.equal(loaded.tests, []);
  const cases: [unknown, RegExp][] = [
    ['{ not json', /ctx-plugin\.json: is not valid JSON/],
    [{ slot: 'ranking' }, /slot: must be "retrieval" or "prompt", got "ranking"/],
    [{ slot: 'retrieval', output: 'x' }, /ctx-plugin\.json: output: unknown key; known: slot, entry, outFile, fixture, settings, tests/],
    [{ slot: 'retrieval', settings: { model: {} } }, /settings\.model: unknown key; known: systemPrompt, topK, tokenBudget, pluginFuelPerCall/],
    [{ slot: 'retrieval', tests: [{ question: '' }] }, /tests\[0\]\.question: must be a non-empty string/],
    [{ slot: 'retrieval', tests: [{ question: 'q', history: [{ role: 'system', content: 'x' }] }] }, /tests\[0\]\.history\[0\]\.role: must be "user" or "assistant"/],
    [{ slot: 'retrieval', tests: [{ question: 'q', expect: { fuelMax: 1.5 } }] }, /tests\[0\]\.expect\.fuelMax: must be a positive integer/],
  ];
  for (const [config, message] of cases) {
    const error = cliError(() => loadProject(projectWith(config)));
    assert.is(error.code, 'CLI_PROJECT_INVALID');
    assert.match(error.message, message);
  }
  assert.is(cliError(() => loadProject(join(work, 'nowhere'))).code, 'CLI_PROJECT_NOT_FOUND');
});

test('loadFixture: a folder of Markdown files, a bare JSON array, and refusals', () => {
  const folder = join(work, 'docs');
  mkdirSync(folder);
  writeFileSync(join(folder, 'ferry.md'), '# Ferry timetable\n\nThe first ferry leaves at 06:40.\n');
  writeFileSync(join(folder, 'notes.txt'), 'Plain notes without a heading.');
  writeFileSync(join(folder, 'ignored.pdf'), 'binary');
  assert.equal(loadFixture(folder), [
    { id: 'ferry', title: 'Ferry timetable', text: 'The first ferry leaves at 06:40.' },
    { id: 'notes', title: 'notes', text: 'Plain notes without a heading.' },
  ]);
  writeFileSync(join(work, 'bare.json'), JSON.stringify([{ id: 'a', text: 'alpha' }]));
  assert.equal(loadFixture(join(work, 'bare.json')), [{ id: 'a', text: 'alpha' }]);
  assert.match(cliError(() => loadFixture(join(work, 'missing.json'))).message, /the fixture .*missing\.json does not exist/);
  writeFileSync(join(work, 'broken.json'), '{"documents": [');
  assert.is(cliError(() => loadFixture(join(work, 'broken.json'))).code, 'CLI_FIXTURE_INVALID');
});

test('runCase: the built-in plugins in the sandbox, with fuel, host calls and a judged expectation', async () => {
  const tenant = await openFixtureTenant(DEMO_DOCUMENTS, { topK: 3 });
  try {
    assert.is(tenant.chunks, 6);
    const result = await runCase(tenant, builtins, ask('How much does express delivery cost?', { first: 'shipping#0', chunks: ['warranty#0'] }), 'prompt');
    assert.is(result.ranked.length, 3);
    assert.equal(result.retrieval?.hostCalls, { index_search: 2 });
    assert.ok((result.retrieval?.fuel ?? 0) > 10_000 && (result.retrieval?.fuel ?? 0) < tenant.settings.pluginFuelPerCall);
    assert.ok((result.prompt?.fuel ?? 0) > 0);
    assert.is(result.prompt?.cacheable, true);
    assert.match(result.prompt?.messages[0]?.content ?? '', /\[shipping#0\] Shipping and delivery:\nOrders placed before 2 pm/, 'chunk text resolved by the guard');
    assert.equal(result.checks.map((check) => [check.name, check.ok]), [['first shipping#0', true], ['contains warranty#0', false]]);
    assert.match(result.checks[1]?.detail ?? '', /the result holds shipping#0, /);
    assert.not.ok(result.passed);
  } finally {
    await tenant.close();
  }
});

test('runCase: fresh instances per case, kv carried over; a trap and spent fuel are results with host codes', async () => {
  const tenant = await openFixtureTenant(DEMO_DOCUMENTS, { pluginFuelPerCall: 1_000_000 });
  try {
    const reporter = { ...builtins, prompt: await fixtureModule('state-reporter', 'prompt') };
    const first = await runCase(tenant, reporter, ask('one'), 'prompt');
    const second = await runCase(tenant, reporter, ask('two'), 'prompt');
    assert.is(first.prompt?.messages[0]?.content, 'global=1 kv=1 canary=none');
    assert.is(second.prompt?.messages[0]?.content, 'global=1 kv=2 canary=none');
    const failing = { ...builtins, retrieval: await fixtureModule('failures', 'retrieval') };
    const trapped = await runCase(tenant, failing, ask('unreachable', { first: 'x#0' }), 'retrieval');
    assert.is(trapped.failure?.code, 'PLUGIN_FAILED');
    assert.equal(trapped.checks, [], 'no checks on a failed call');
    assert.not.ok(trapped.passed);
    const hog = { ...builtins, retrieval: await fixtureModule('cpu-and-memory', 'retrieval') };
    const spent = await runCase(tenant, hog, ask('spin'), 'retrieval');
    assert.is(spent.failure?.code, 'PLUGIN_FUEL_EXHAUSTED');
    assert.match(spent.failure?.message ?? '', /budget of 1000000 per call/);
    const light = await runCase(tenant, hog, ask('work:10', { fuelMax: 10 }), 'retrieval');
    assert.is(light.checks[0]?.ok, false);
    assert.match(light.checks[0]?.detail ?? '', /^spent \d+$/);
  } finally {
    await tenant.close();
  }
});

test('openFixtureTenant: settings are validated by the host’s rules and the directory is removed', async () => {
  const fixtureDirs = (): string[] => readdirSync(tmpdir()).filter((name) => name.startsWith('ctx-plugin-test-'));
  const before = fixtureDirs();
  let refused: unknown;
  try {
    await openFixtureTenant(DEMO_DOCUMENTS, { topK: 99 });
  } catch (error: unknown) {
    refused = error;
  }
  assert.is((refused as { code?: string }).code, 'CONFIG_INVALID');
  assert.match((refused as Error).message, /^topK: /);
  assert.equal(fixtureDirs(), before, 'the refused tenant left no directory');
  const opened = await openFixtureTenant(DEMO_DOCUMENTS);
  assert.is(fixtureDirs().length, before.length + 1);
  await opened.close();
  await opened.close();
  assert.equal(fixtureDirs(), before, 'closing removed it (and closing twice is harmless)');
});

test.run();
