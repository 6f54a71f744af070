/**
 * The two example plugins in sdk/examples: each builds with the CLI's compiler, passes the cases
 * in its own ctx-plugin.json through the harness, and changes what it claims to change compared
 * with the built-in plugins — the keyword booster lifts title and keyword matches to the top; the
 * persona prompt sets the persona, keeps the token budget and trims the history.
 */
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createMeteringService, type MeteringService } from '../../host/sandbox/metering-service.ts';
import type { CompiledPlugin } from '../../host/sandbox/module-cache.ts';
import type { PluginModules } from '../../host/sandbox/session-plugins.ts';
import { compileProject } from '../../sdk/cli/compile.ts';
import { loadFixture } from '../../sdk/cli/fixture.ts';
import { openFixtureTenant, type FixtureTenant } from '../../sdk/cli/fixture-tenant.ts';
import { runCase, type CaseResult } from '../../sdk/cli/harness.ts';
import { builtinModules, vetModule } from '../../sdk/cli/modules.ts';
import { loadProject, type Project, type TestCase } from '../../sdk/cli/project.ts';

let metering: MeteringService;
let builtins: PluginModules;

test.before(async () => {
  metering = createMeteringService();
  builtins = await builtinModules(metering);
});
test.after(() => metering.close());

async function example(name: string): Promise<{ project: Project; compiled: CompiledPlugin }> {
  const project = loadProject(fileURLToPath(new URL(`../../sdk/examples/${name}`, import.meta.url)));
  await compileProject(project.dir, project.entry, project.outFile);
  const { compiled } = await vetModule(new Uint8Array(readFileSync(project.outFile)), project.slot, metering);
  return { project, compiled };
}

async function withTenant<T>(project: Project, settings: Project['settings'], work: (tenant: FixtureTenant) => Promise<T>): Promise<T> {
  const tenant = await openFixtureTenant(loadFixture(project.fixture), settings);
  try {
    return await work(tenant);
  } finally {
    await tenant.close();
  }
}

function failures(results: CaseResult[]): string[] {
  return results.filter((result) => !result.passed).map((result) => `${result.question}: ${JSON.stringify(result.failure ?? result.checks.filter((check) => !check.ok))}`);
}

const ask = (question: string, history: TestCase['history'] = []): TestCase => ({ question, history, expect: {} });

test('keyword-boost passes its own cases, and puts title and keyword matches first where the built-in does not', async () => {
  const { project, compiled } = await example('keyword-boost');
  assert.ok(project.tests.length >= 3);
  await withTenant(project, project.settings, async (tenant) => {
    const boosted = { ...builtins, retrieval: compiled };
    const results = [];
    for (const testCase of project.tests) results.push(await runCase(tenant, boosted, testCase, 'retrieval'));
    assert.equal(failures(results), []);
    for (const [question, expected] of [['How do I take care of my e-bike battery?', 'battery-care#0'], ['Can I get parcel tracking for my order?', 'shipping#0']] as const) {
      const mine = await runCase(tenant, boosted, ask(question), 'retrieval');
      const builtin = await runCase(tenant, builtins, ask(question), 'retrieval');
      assert.is(mine.ranked[0]?.chunkId, expected);
      assert.is.not(builtin.ranked[0]?.chunkId, expected, `the built-in already ranks ${expected} first for "${question}"`);
      assert.ok(mine.logs.some((line) => line.level === 'debug' && line.message.startsWith(`boost ${expected}`)));
      assert.ok((mine.retrieval?.hostCalls['chunk_get'] ?? 0) <= 64, 'bounded lookups');
    }
  });
});

test('persona-prompt passes its own cases: persona first, budget kept, only the last exchange of history', async () => {
  const { project, compiled } = await example('persona-prompt');
  assert.ok(project.tests.length >= 2);
  await withTenant(project, project.settings, async (tenant) => {
    const persona = { ...builtins, prompt: compiled };
    const results = [];
    for (const testCase of project.tests) results.push(await runCase(tenant, persona, testCase, 'prompt'));
    assert.equal(failures(results), []);
    const history: TestCase['history'] = [
      { role: 'user', content: 'Do you sell helmets?' },
      { role: 'assistant', content: 'Yes, in every store.' },
      { role: 'user', content: 'How much does express delivery cost?' },
      { role: 'assistant', content: 'It costs 15 euros.' },
    ];
    const followUp = await runCase(tenant, persona, ask('And standard delivery?', history), 'prompt');
    const messages = followUp.prompt?.messages ?? [];
    assert.match(messages[0]?.content ?? '', /^You are Pip, the friendly assistant/);
    assert.equal(messages.slice(1).map((message) => message.role), ['user', 'assistant', 'user']);
    assert.not.ok(messages.some((message) => message.content.includes('helmets?')), 'the older exchange is dropped');
    assert.is(followUp.prompt?.cacheable, false);
    assert.ok((followUp.prompt?.contextTokens ?? 0) <= tenant.settings.tokenBudget);
    assert.match(messages[0]?.content ?? '', /Source 1 \[shipping#0\] Shipping and delivery:\n/);
  });
  await withTenant(project, { ...project.settings, tokenBudget: 100 }, async (tenant) => {
    const tight = await runCase(tenant, { ...builtins, prompt: compiled }, ask('How much does express delivery cost?'), 'prompt');
    assert.equal(tight.prompt?.references, [], 'no source fits a 100-token budget after the persona');
  });
});

test.run();
