/**
 * Compiling a vendor's AssemblyScript plugin project. A project imports the SDK as the package
 * `@ctx-host/plugin-sdk`; there is nothing to install: the compiler's file reads for that package
 * are answered from this repository's `sdk/as/`, and `@extism/as-pdk` from its node_modules. So a
 * fresh project builds offline, and always against the SDK of the checkout whose CLI runs.
 *
 * The flags are the built-in plugins' (scripts/build-plugins.ts: optimised, incremental GC, the
 * SDK's abort) plus the memory maximum a host would impose anyway, so a plugin that outgrows it
 * fails here first. An `asconfig.json` in the project is ignored on purpose: what `build` makes
 * must be what `check` vetted and `publish` uploads.
 */
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LIMITS } from '../../host/limits.ts';
import { newestMtimeMs, pluginAscFlags } from '../../scripts/build-plugins.ts';
import { CliError } from './errors.ts';

/** The package name plugin sources import the SDK by. */
export const SDK_PACKAGE = '@ctx-host/plugin-sdk';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SDK_DIR = resolve(ROOT, 'sdk', 'as');
/**
 * A package root that exists only in the compiler's view: reads under it are mapped to SDK_DIR.
 * Inside the repository (so no real directory of that name can collide with a vendor's files).
 */
const VIRTUAL_PACKAGES = resolve(ROOT, 'sdk', '.virtual-packages');
const VIRTUAL_SDK = `${resolve(VIRTUAL_PACKAGES, ...SDK_PACKAGE.split('/'))}${sep}`;
/** Sources every project build depends on besides the project's own directory. */
const SHARED_SOURCES = [SDK_DIR, fileURLToPath(import.meta.url), resolve(ROOT, 'node_modules', 'assemblyscript', 'package.json')];
const PAGE_BYTES = 64 * 1024;

/** Options of {@link compileProject}. */
export interface CompileOptions {
  /** A debug build: no optimisation, names and debug info kept (larger and slower; not for publishing). */
  debug?: boolean;
  /** Rebuild even when the output is newer than every source. */
  force?: boolean;
}

/** What {@link compileProject} did. */
export interface CompileResult {
  outFile: string;
  bytes: number;
  /** `false` when the output was already up to date. */
  built: boolean;
  /** Function exports of the module (besides the memory). */
  exports: string[];
  /** Imports, as `module.name`. */
  imports: string[];
}

/**
 * Compiles `entry` (a file in `projectDir`) to `outFile`, unless `outFile` is newer than the
 * project's sources, the SDK and the compiler. The write is atomic (temp file + rename).
 *
 * @example
 * ```ts
 * const { outFile, bytes, exports } = await compileProject('/src/my-plugin', '/src/my-plugin/assembly/index.ts', '/src/my-plugin/build/plugin.wasm');
 * ```
 * @throws {CliError} CLI_BUILD_FAILED with the compiler's diagnostics.
 */
export async function compileProject(projectDir: string, entry: string, outFile: string, options: CompileOptions = {}): Promise<CompileResult> {
  if (options.force !== true && (await isUpToDate(projectDir, entry, outFile))) {
    return { outFile, built: false, ...(await describeModule(await readFile(outFile))) };
  }
  const binary = await runCompiler(projectDir, entry, options.debug === true);
  await mkdir(dirname(outFile), { recursive: true });
  const temp = `${outFile}.${process.pid}.tmp`;
  await writeFile(temp, binary);
  await rename(temp, outFile);
  return { outFile, built: true, ...(await describeModule(binary)) };
}

/**
 * Whether `outFile` exists and is newer than every source it depends on: the entry's directory,
 * ctx-plugin.json, the SDK and the compiler.
 *
 * @example
 * ```ts
 * if (!(await isUpToDate(project.dir, project.entry, project.outFile))) await compileProject(...);
 * ```
 */
export async function isUpToDate(projectDir: string, entry: string, outFile: string): Promise<boolean> {
  let outMtime: number;
  try {
    outMtime = (await stat(outFile)).mtimeMs;
  } catch {
    return false;
  }
  const sources = [dirname(entry), resolve(projectDir, 'ctx-plugin.json'), ...SHARED_SOURCES];
  const existing = [];
  for (const source of sources) {
    if (await stat(source).then(() => true, () => false)) existing.push(source);
  }
  return outMtime > (await newestMtimeMs(existing));
}

async function runCompiler(projectDir: string, entry: string, debug: boolean): Promise<Uint8Array> {
  // Imported lazily: loading the compiler takes seconds, and an up-to-date build needs none of it.
  const { default: asc } = await import('assemblyscript/asc');
  const optimisation = debug ? ['--optimizeLevel', '0', '--shrinkLevel', '0', '--debug'] : [];
  const flags = [
    ...pluginAscFlags(`~lib/${SDK_PACKAGE}/index/abortPlugin`),
    ...optimisation,
    '--maximumMemory', String(LIMITS.pluginMemoryBytesMax / PAGE_BYTES),
    '--path', VIRTUAL_PACKAGES,
    '--path', resolve(ROOT, 'node_modules'),
  ];
  let binary: Uint8Array | null = null;
  const stderr = asc.createMemoryStream();
  const result = await asc.main([relative(projectDir, entry).split(sep).join('/'), '--outFile', 'plugin.wasm', '--baseDir', projectDir, ...flags], {
    stdout: asc.createMemoryStream(),
    stderr,
    readFile: (name: string, baseDir: string) => readSource(resolve(baseDir, name), projectDir),
    writeFile(name: string, contents: Uint8Array | string) {
      if (name.endsWith('.wasm') && contents instanceof Uint8Array) binary = contents;
    },
  });
  if (result.error !== null || binary === null) {
    throw new CliError(
      'CLI_BUILD_FAILED',
      `cannot compile ${relative(projectDir, entry)}: ${result.error?.message ?? 'no output'}\n${stderr.toString().trimEnd()}`,
      `fix the errors above; the SDK's API is in sdk/README.md (import it as "${SDK_PACKAGE}")`,
    );
  }
  return binary;
}

/** The compiler's file reads: the virtual SDK package maps to sdk/as; the project's asconfig.json is hidden. */
async function readSource(path: string, projectDir: string): Promise<string | null> {
  if (path === resolve(projectDir, 'asconfig.json')) return null;
  const mapped = path.startsWith(VIRTUAL_SDK) ? resolve(SDK_DIR, path.slice(VIRTUAL_SDK.length)) : path;
  try {
    return await readFile(mapped, 'utf8');
  } catch {
    return null;
  }
}

async function describeModule(bytes: Uint8Array): Promise<Omit<CompileResult, 'outFile' | 'built'>> {
  const module = await WebAssembly.compile(bytes);
  return {
    bytes: bytes.byteLength,
    exports: WebAssembly.Module.exports(module).filter((entry) => entry.kind === 'function').map((entry) => entry.name),
    imports: WebAssembly.Module.imports(module).map((entry) => `${entry.module}.${entry.name}`),
  };
}
