/**
 * The `ctx-plugin` commands, one function each; main.ts parses the command line and maps their
 * errors to exit codes. Results go to stdout (as JSON with `--json`), progress to stderr.
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { MeteringService } from '../../host/sandbox/metering-service.ts';
import type { PluginModules } from '../../host/sandbox/session-plugins.ts';
import type { PluginSlot } from '../../host/sandbox/slots.ts';
import { hostRequest } from '../client/http.ts';
import { connect } from '../client/node.ts';
import { compileProject, isUpToDate, type CompileResult } from './compile.ts';
import { CliError } from './errors.ts';
import { loadFixture } from './fixture.ts';
import { openFixtureTenant } from './fixture-tenant.ts';
import { formatBuild, formatBytes, formatCase, formatReport } from './format.ts';
import { runCase, type CaseResult } from './harness.ts';
import { initProject } from './init.ts';
import { builtinModules, readModule, vetModule, withMetering } from './modules.ts';
import { createProgress, type Progress } from './progress.ts';
import { loadProject, PROJECT_FILE, type Project, type TestCase } from './project.ts';

/** Options every command that works on a module takes. */
export interface ModuleOptions {
  /** The project directory (default: the working directory). */
  dir: string;
  /** A module to use instead of the project's build (any Extism PDK's output). */
  wasm?: string;
  /** The slot of `wasm`. */
  slot?: PluginSlot;
  json?: boolean;
}

/** The module a command works on. */
interface ModuleSource {
  bytes: Uint8Array;
  slot: PluginSlot;
  /** Its path as the user would write it. */
  shown: string;
  project: Project | undefined;
}

const SLOT_EXPORTS: Readonly<Record<PluginSlot, string>> = { retrieval: 'retrieve', prompt: 'assemble' };

function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel;
}

function print(json: boolean | undefined, value: unknown, text: () => string): void {
  process.stdout.write(json === true ? `${JSON.stringify(value, null, 2)}\n` : text());
}

/**
 * `init <dir> --slot <slot>`.
 *
 * @example
 * ```ts
 * runInit('my-retriever', 'retrieval');
 * ```
 * @throws {CliError} CLI_INIT_TARGET_EXISTS.
 */
export function runInit(dir: string, slot: PluginSlot): void {
  const { dir: created, files } = initProject(dir, slot);
  process.stdout.write(
    `created a ${slot} plugin project in ${shown(created)}:\n${files.map((file) => `  ${file}`).join('\n')}\n\n` +
      `next:\n  cd ${shown(created)}\n  ctx-plugin build\n  ctx-plugin test\n`,
  );
}

/** Compiles the project when its build is missing or older than its sources. */
async function ensureBuilt(project: Project, progress: Progress, options: { debug?: boolean; force?: boolean } = {}): Promise<CompileResult> {
  const entry = shown(project.entry);
  const fresh = options.force !== true && (await isUpToDate(project.dir, project.entry, project.outFile));
  const compile = () => compileProject(project.dir, project.entry, project.outFile, options);
  const result = fresh ? await compile() : await progress.step(`compiling ${entry}`, compile, (built) => `compiled ${entry} (${formatBytes(built.bytes)})`);
  const wanted = SLOT_EXPORTS[project.slot];
  if (!result.exports.includes(wanted)) {
    throw new CliError('CLI_BUILD_FAILED', `${entry} compiled, but a ${project.slot} plugin must export a function "${wanted}" and this one does not`, `add \`export function ${wanted}(): i32 { … }\` to ${entry}`);
  }
  return result;
}

/**
 * `build`.
 *
 * @example
 * ```ts
 * await runBuild({ dir: process.cwd(), debug: false, force: false });
 * ```
 * @throws {CliError} CLI_PROJECT_NOT_FOUND, CLI_BUILD_FAILED.
 */
export async function runBuild(options: { dir: string; debug?: boolean; force?: boolean; json?: boolean }): Promise<void> {
  const project = loadProject(options.dir);
  const progress = createProgress({ silent: options.json === true });
  const result = await ensureBuilt(project, progress, { ...(options.debug === true ? { debug: true } : {}), ...(options.force === true ? { force: true } : {}) });
  print(options.json, { ...result, slot: project.slot }, () => formatBuild(result, shown(result.outFile), project.slot));
}

/** The project's build, or the `--wasm` module. */
async function moduleSource(options: ModuleOptions, progress: Progress): Promise<ModuleSource> {
  const hasProject = existsSync(join(options.dir, PROJECT_FILE));
  if (options.wasm !== undefined) {
    const project = hasProject ? loadProject(options.dir) : undefined;
    const slot = options.slot ?? project?.slot;
    if (slot === undefined) throw new CliError('CLI_USAGE', '--wasm needs --slot retrieval|prompt (there is no ctx-plugin.json to take it from)', 'add --slot retrieval or --slot prompt');
    return { bytes: await readModule(options.wasm), slot, shown: shown(options.wasm), project };
  }
  const project = loadProject(options.dir);
  if (options.slot !== undefined && options.slot !== project.slot) {
    throw new CliError('CLI_USAGE', `--slot ${options.slot} contradicts ${PROJECT_FILE}, which says "${project.slot}"`, 'drop --slot (it is for --wasm modules)');
  }
  await ensureBuilt(project, progress);
  return { bytes: await readModule(project.outFile), slot: project.slot, shown: shown(project.outFile), project };
}

/**
 * `check`: the host's vetting, locally.
 *
 * @example
 * ```ts
 * await runCheck({ dir: process.cwd() });
 * ```
 * @throws {HostError} PLUGIN_INVALID when a host would refuse the module.
 */
export async function runCheck(options: ModuleOptions): Promise<void> {
  const progress = createProgress({ silent: options.json === true });
  const source = await moduleSource(options, progress);
  const { report } = await withMetering((metering) => progress.step('vetting and metering the module as a host would', () => vetModule(source.bytes, source.slot, metering)));
  print(options.json, report, () => `${formatReport(report, source.shown)}✔ a host would accept this module\n`);
}

/** Options of {@link runTest}. */
export interface TestOptions extends ModuleOptions {
  /** Fixture documents (a JSON file or a folder); default: the project's. */
  fixture?: string;
  /** A module for the other slot (default: the built-in plugin). */
  pair?: string;
  /** Print chunks and messages whole. */
  full?: boolean;
}

/**
 * `test [questions...]`: runs the plugin in the host's sandbox against a throw-away fixture tenant.
 *
 * @example
 * ```ts
 * await runTest(['How much does express delivery cost?'], { dir: process.cwd() });
 * ```
 * @throws {CliError} CLI_TEST_FAILED when a case fails; {HostError} PLUGIN_INVALID when vetting refuses the module.
 */
export async function runTest(questions: string[], options: TestOptions): Promise<void> {
  const progress = createProgress({ silent: options.json === true });
  const source = await moduleSource(options, progress);
  const cases = testCases(questions, source.project);
  const fixture = options.fixture ?? source.project?.fixture;
  if (fixture === undefined) throw new CliError('CLI_USAGE', 'there are no fixture documents to test against', 'pass --fixture <documents.json | folder>');
  const documents = loadFixture(fixture);
  const results = await withMetering(async (metering) => {
    const modules = await slotModules(source, options.pair, metering, progress);
    const tenant = await progress.step(
      `loading ${documents.length} fixture documents into a throw-away tenant`,
      () => openFixtureTenant(documents, source.project?.settings ?? {}),
      (opened) => `fixture tenant: ${opened.documents} documents, ${opened.chunks} chunks`,
    );
    try {
      const done: CaseResult[] = [];
      for (const testCase of cases) {
        const result = await runCase(tenant, modules, testCase, source.slot);
        if (options.json !== true) {
          process.stdout.write(formatCase(result, { full: options.full === true, tokenBudget: tenant.settings.tokenBudget, other: options.pair === undefined ? 'built-in' : 'paired' }));
        }
        done.push(result);
      }
      return done;
    } finally {
      await tenant.close();
    }
  });
  if (options.json === true) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  const failed = results.filter((result) => !result.passed).length;
  if (options.json !== true) process.stdout.write(`${results.length - failed} of ${results.length} cases passed\n`);
  if (failed > 0) throw new CliError('CLI_TEST_FAILED', `${failed} of ${results.length} cases failed`, 'read the ✖ lines above: each names what it expected and what it saw');
}

/** The modules a test runs: the project's in its slot, the other slot's paired module or built-in. */
async function slotModules(source: ModuleSource, pairPath: string | undefined, metering: MeteringService, progress: Progress): Promise<PluginModules> {
  const vetted = await progress.step(`vetting and metering ${source.shown}`, () => vetModule(source.bytes, source.slot, metering));
  const modules = await progress.step('loading the built-in plugins', () => builtinModules(metering));
  const other: PluginSlot = source.slot === 'retrieval' ? 'prompt' : 'retrieval';
  if (pairPath !== undefined) modules[other] = (await vetModule(await readModule(pairPath), other, metering)).compiled;
  modules[source.slot] = vetted.compiled;
  return modules;
}

function testCases(questions: string[], project: Project | undefined): TestCase[] {
  if (questions.length > 0) return questions.map((question) => ({ question, history: [], expect: {} }));
  const cases = project?.tests ?? [];
  if (cases.length === 0) {
    throw new CliError('CLI_USAGE', 'there is nothing to test', `give a question (ctx-plugin test "How much does express delivery cost?") or add "tests" to ${PROJECT_FILE}`);
  }
  return cases;
}

/** Options of {@link runPublish}. */
export interface PublishOptions extends ModuleOptions {
  url: string;
  key: string;
  /** Vet locally before uploading (default true): a refusal then costs no round trip. */
  check?: boolean;
}

/**
 * `publish --url --key`: uploads the module; new sessions of the tenant run it.
 *
 * @example
 * ```ts
 * await runPublish({ dir: process.cwd(), url: 'http://127.0.0.1:8787', key: process.env.CTX_API_KEY! });
 * ```
 * @throws {ChatError} the host's code (AUTH_INVALID_KEY, PLUGIN_INVALID, STORAGE_QUOTA, …) or CLIENT_CONNECT_FAILED.
 */
export async function runPublish(options: PublishOptions): Promise<void> {
  const progress = createProgress({ silent: options.json === true });
  const source = await moduleSource(options, progress);
  if (options.check !== false) {
    await withMetering((metering) => progress.step('vetting locally first', () => vetModule(source.bytes, source.slot, metering)));
  }
  const upload = () => hostRequest(options.url, `/v1/plugins/${source.slot}`, { method: 'PUT', apiKey: options.key, body: source.bytes, contentType: 'application/wasm' });
  const report = (await progress.step(`uploading ${source.shown} to ${options.url}`, upload)) as { version: number; sha256: string; module: { sha256: string } };
  print(options.json, report, () =>
    `published ${source.shown} as ${source.slot} version ${report.version}; new sessions run it\n` +
      `  sha256  ${report.sha256}  (as uploaded)\n  module  ${report.module.sha256}  (as run: a session's ready frame names this hash)\n`,
  );
}

/**
 * `ask <question>`: asks a host one question with the client library, streaming the answer.
 *
 * @example
 * ```ts
 * await runAsk('How much does express delivery cost?', { url, key });
 * ```
 * @throws {ChatError} AUTH_INVALID_KEY, CLIENT_CONNECT_FAILED, or the ask's error code.
 */
export async function runAsk(question: string, options: { url: string; key: string; json?: boolean }): Promise<void> {
  const client = await connect({ url: options.url, apiKey: options.key, reconnect: false });
  try {
    const ask = client.ask(question);
    if (options.json !== true) for await (const token of ask.tokens) process.stdout.write(token);
    const result = await ask.result;
    print(options.json, { ...result, session: client.session, plugins: client.plugins }, () => {
      const sources = result.sources.map((source) => `  [${source.chunkId}] ${source.title}  score ${source.score.toFixed(3)}`);
      const total = result.timings['totalMs'] ?? 0;
      return `\n\nsources (cache ${result.cache}, ${total.toFixed(1)} ms):\n${sources.join('\n') || '  none'}\n` +
        `session plugins: retrieval ${client.plugins.retrieval}, prompt ${client.plugins.prompt}\n`;
    });
  } finally {
    client.close();
  }
}
