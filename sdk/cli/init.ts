/**
 * `ctx-plugin init <dir> --slot retrieval|prompt`: scaffolds a plugin project that builds and
 * passes its own test as it is. The plugin source comes from sdk/templates/<slot>.ts; the fixture
 * is the demo tenant's documents (the Larkspur Cycles shop a host creates on first start), so the
 * project's test cases and a question asked of a demo host agree.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PluginSlot } from '../../host/sandbox/slots.ts';
import { DEMO_DOCUMENTS } from '../../host/tenants/demo.ts';
import { SDK_PACKAGE } from './compile.ts';
import { CliError } from './errors.ts';
import { PROJECT_FILE } from './project.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TEMPLATES = join(ROOT, 'sdk', 'templates');

/** The question every new project tests, and the demo chunk that answers it. */
const STARTER_QUESTION = 'How much does express delivery cost?';
const STARTER_CHUNK = 'shipping#0';

/** What {@link initProject} wrote. */
export interface InitResult {
  dir: string;
  /** Paths relative to `dir`. */
  files: string[];
}

/**
 * Creates the project in `dir` (which must not exist, or be empty).
 *
 * @example
 * ```ts
 * const { files } = initProject('my-retriever', 'retrieval');
 * ```
 * @throws {CliError} CLI_INIT_TARGET_EXISTS when `dir` holds files already.
 */
export function initProject(dir: string, slot: PluginSlot): InitResult {
  const target = resolve(dir);
  if (existsSync(target) && readdirSync(target).length > 0) {
    throw new CliError('CLI_INIT_TARGET_EXISTS', `${target} exists and is not empty`, 'choose a new directory name (init never overwrites files)');
  }
  const files = scaffold(basename(target), slot, target);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(target, path)), { recursive: true });
    writeFileSync(join(target, path), content);
  }
  return { dir: target, files: Object.keys(files) };
}

function scaffold(name: string, slot: PluginSlot, target: string): Record<string, string> {
  const expect = slot === 'retrieval' ? { first: STARTER_CHUNK } : { first: STARTER_CHUNK, text: ['costs 15 euros'], cacheable: true };
  const project = {
    slot,
    entry: 'assembly/index.ts',
    outFile: 'build/plugin.wasm',
    fixture: 'fixture/documents.json',
    settings: { topK: 4 },
    tests: [{ question: STARTER_QUESTION, expect }],
  };
  return {
    [PROJECT_FILE]: json(project),
    'assembly/index.ts': readFileSync(join(TEMPLATES, `${slot}.ts`), 'utf8'),
    'fixture/documents.json': json({ documents: DEMO_DOCUMENTS }),
    'tsconfig.json': json(editorConfig(target)),
    'package.json': json({ name: packageName(name), private: true, scripts: { build: 'ctx-plugin build', test: 'ctx-plugin test', check: 'ctx-plugin check' } }),
    '.gitignore': 'build/\n',
    'README.md': readme(name, slot),
  };
}

/**
 * For editors only (`ctx-plugin build` does not read it): AssemblyScript's types and the SDK's
 * location, relative to this checkout, so completion and go-to-definition work.
 */
function editorConfig(target: string): unknown {
  const fromProject = (path: string): string => relative(target, path).split(sep).join('/');
  return {
    extends: fromProject(join(ROOT, 'node_modules', 'assemblyscript', 'std', 'assembly.json')),
    compilerOptions: { baseUrl: '.', paths: { [SDK_PACKAGE]: [fromProject(join(ROOT, 'sdk', 'as', 'index.ts'))] } },
    include: ['assembly/**/*.ts'],
  };
}

function packageName(name: string): string {
  const cleaned = name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+/, '');
  return cleaned === '' ? 'ctx-plugin-project' : cleaned;
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function readme(name: string, slot: PluginSlot): string {
  return `# ${name}

A ${slot} plugin for ctx-host, written in AssemblyScript with the SDK (\`${SDK_PACKAGE}\`).

\`\`\`sh
ctx-plugin build                       # compile to build/plugin.wasm
ctx-plugin test                        # run the tests in ${PROJECT_FILE} against fixture/documents.json
ctx-plugin test "Your question?"       # or ask anything and look at the result
ctx-plugin check                       # the vetting report a host would return
ctx-plugin publish --url "$CTX_URL" --key "$CTX_API_KEY"
\`\`\`

The SDK reference and the limits a plugin runs under are in ctx-host's sdk/README.md.
`;
}
