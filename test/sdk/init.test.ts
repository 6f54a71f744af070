/**
 * `ctx-plugin init` scaffolds: the files a project needs, an editor config whose paths point at
 * real files of this checkout, a refusal to touch a non-empty directory, and — for the prompt slot
 * (the tutorial test covers the retrieval slot end to end) — a project that builds and passes its
 * own test case as it is.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createMeteringService } from '../../host/sandbox/metering-service.ts';
import { compileProject } from '../../sdk/cli/compile.ts';
import { CliError } from '../../sdk/cli/errors.ts';
import { loadFixture } from '../../sdk/cli/fixture.ts';
import { openFixtureTenant } from '../../sdk/cli/fixture-tenant.ts';
import { runCase } from '../../sdk/cli/harness.ts';
import { initProject } from '../../sdk/cli/init.ts';
import { builtinModules, vetModule } from '../../sdk/cli/modules.ts';
import { loadProject } from '../../sdk/cli/project.ts';

const work = mkdtempSync(join(tmpdir(), 'ctx-init-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

test('init writes a complete project and refuses a directory that is not empty', () => {
  const { dir, files } = initProject(join(work, 'My Retriever'), 'retrieval');
  assert.equal(files.sort(), ['.gitignore', 'README.md', 'assembly/index.ts', 'ctx-plugin.json', 'fixture/documents.json', 'package.json', 'tsconfig.json']);
  const project = loadProject(dir);
  assert.is(project.slot, 'retrieval');
  assert.equal(project.tests.map((testCase) => testCase.expect), [{ first: 'shipping#0' }]);
  assert.is(loadFixture(project.fixture).length, 6);
  assert.is(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name, 'my-retriever');
  const editor = JSON.parse(readFileSync(join(dir, 'tsconfig.json'), 'utf8'));
  assert.ok(existsSync(resolve(dir, editor.extends)), 'extends AssemblyScript’s config in this checkout');
  assert.ok(existsSync(resolve(dir, editor.compilerOptions.paths['@ctx-host/plugin-sdk'][0])), 'maps the SDK to sdk/as/index.ts');
  let refused: unknown;
  try {
    initProject(dir, 'prompt');
  } catch (error: unknown) {
    refused = error;
  }
  assert.instance(refused, CliError);
  assert.is((refused as CliError).code, 'CLI_INIT_TARGET_EXISTS');
});

test('a new prompt project builds and passes its own test', async () => {
  const { dir } = initProject(join(work, 'my-prompt'), 'prompt');
  const project = loadProject(dir);
  const built = await compileProject(project.dir, project.entry, project.outFile);
  assert.ok(built.built && built.exports.includes('assemble'));
  assert.ok(built.imports.every((name) => name.startsWith('extism:host/env.') || name.startsWith('ctx:host/v1.')));
  const metering = createMeteringService();
  const tenant = await openFixtureTenant(loadFixture(project.fixture), project.settings);
  try {
    const { compiled } = await vetModule(new Uint8Array(readFileSync(project.outFile)), 'prompt', metering);
    const modules = { ...(await builtinModules(metering)), prompt: compiled };
    const [testCase] = project.tests;
    assert.ok(testCase !== undefined);
    const result = await runCase(tenant, modules, testCase, 'prompt');
    assert.ok(result.passed, JSON.stringify(result.checks));
    assert.equal(result.checks.map((check) => check.name), ['first shipping#0', 'text "costs 15 euros"', 'cacheable true']);
  } finally {
    await tenant.close();
    await metering.close();
  }
  const again = await compileProject(project.dir, project.entry, project.outFile);
  assert.not.ok(again.built, 'an up-to-date build is not compiled again');
});

test.run();
