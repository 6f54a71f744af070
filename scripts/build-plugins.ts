/**
 * `npm run build`: compiles every built-in plugin (`plugins/<name>/index.ts`, AssemblyScript) to
 * `build/plugins/<name>.wasm`, skipping any whose output is newer than all of its sources so
 * `npm test` and `npm start` stay fast. Tests use {@link buildPlugin} to compile fixture plugins.
 *
 * Every plugin is built with the incremental GC runtime: a session's plugin instance serves many
 * asks, and the stub runtime never frees, so its memory would only grow. The SDK's `abortPlugin`
 * replaces AssemblyScript's `env.abort` import, which Extism does not provide.
 *
 * It also compiles the host's own compute kernels (trusted AssemblyScript, no Extism), listed in
 * {@link KERNELS}, to `build/kernels/<name>.wasm` with {@link KERNEL_FLAGS}, skipped the same way,
 * and bundles the browser chat client (scripts/build-client.ts).
 */
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PLUGINS_DIR = join(ROOT, 'plugins');
const OUT_DIR = join(ROOT, 'build', 'plugins');
const KERNELS_OUT_DIR = join(ROOT, 'build', 'kernels');
/** The host's kernels: name → entry file; each is built to `build/kernels/<name>.wasm`. */
const KERNELS: Readonly<Record<string, string>> = {
  dot: join(ROOT, 'host', 'retrieval', 'kernels', 'dot.ts'),
};
/** Sources every plugin depends on besides its own directory (the manifests change on upgrades). */
const SHARED_SOURCES = [
  join(ROOT, 'sdk', 'as'),
  fileURLToPath(import.meta.url),
  join(ROOT, 'node_modules', 'assemblyscript', 'package.json'),
  join(ROOT, 'node_modules', '@extism', 'as-pdk', 'package.json'),
];

/**
 * The asc flags of every Extism plugin built with the SDK; `abortPath` names the SDK's
 * `abortPlugin` as the compiler sees it (`sdk/as/index/abortPlugin` from this repository's root;
 * `~lib/@ctx-host/plugin-sdk/index/abortPlugin` in a vendor project, see sdk/cli/compile.ts).
 *
 * @example
 * ```ts
 * const flags = pluginAscFlags('sdk/as/index/abortPlugin');
 * ```
 */
export function pluginAscFlags(abortPath: string): string[] {
  return ['--optimizeLevel', '3', '--shrinkLevel', '0', '--runtime', 'incremental', '--use', `abort=${abortPath}`, '--noColors'];
}

const ASC_FLAGS = pluginAscFlags('sdk/as/index/abortPlugin');

/**
 * Kernels allocate nothing and are called with pointers into a memory their host object owns: so no
 * GC runtime, no abort import (they have no checks to fail), and an imported memory that the host
 * creates and grows. SIMD is what they are for, and asc leaves it off by default.
 */
const KERNEL_FLAGS = [
  '--optimizeLevel', '3',
  '--shrinkLevel', '0',
  '--runtime', 'stub',
  '--use', 'abort=',
  '--enable', 'simd',
  '--importMemory',
  '--noExportMemory',
  '--noColors',
];

/** Options of {@link buildPlugin}. */
export interface BuildOptions {
  /** asc flags besides the entry and output (default: the plugin flags, for Extism). */
  flags?: readonly string[];
}

/** What {@link buildPlugin} did. */
export interface BuildResult {
  outFile: string;
  /** Size of the module in bytes. */
  bytes: number;
  /** `false` when the output was already newer than every source. */
  built: boolean;
  /** Compile time in milliseconds (0 when skipped). */
  ms: number;
}

/**
 * Compiles one AssemblyScript plugin to `outFile`, unless `outFile` is newer than the entry's
 * directory, the SDK and this script. The write is atomic (temp file + rename), so a failed
 * build never leaves a fresh-looking broken module behind.
 *
 * @example
 * ```ts
 * const { outFile } = await buildPlugin('test/fixtures/plugins/trap.ts', 'build/test/trap.wasm');
 * ```
 * @throws Error with the compiler's diagnostics when compilation fails.
 */
export async function buildPlugin(entryFile: string, outFile: string, options: BuildOptions = {}): Promise<BuildResult> {
  const entry = resolve(ROOT, entryFile);
  const out = resolve(ROOT, outFile);
  const outMtime = await mtimeMs(out);
  if (outMtime !== null && outMtime > await newestMtimeMs([dirname(entry), ...SHARED_SOURCES])) {
    return { outFile: out, bytes: (await stat(out)).size, built: false, ms: 0 };
  }
  const started = performance.now();
  const binary = await compile(entry, options.flags ?? ASC_FLAGS);
  await mkdir(dirname(out), { recursive: true });
  const temp = `${out}.${process.pid}.tmp`;
  await writeFile(temp, binary);
  await rename(temp, out);
  return { outFile: out, bytes: binary.byteLength, built: true, ms: Math.round(performance.now() - started) };
}

/** Runs the AssemblyScript compiler in memory and returns the module bytes. */
async function compile(entry: string, flags: readonly string[]): Promise<Uint8Array> {
  // Imported lazily: loading the compiler (and binaryen) takes seconds, and most runs build nothing.
  const { default: asc } = await import('assemblyscript/asc');
  let binary: Uint8Array | null = null;
  const stderr = asc.createMemoryStream();
  const result = await asc.main([relative(ROOT, entry).split(sep).join('/'), '--outFile', 'plugin.wasm', '--baseDir', ROOT, ...flags], {
    stdout: asc.createMemoryStream(),
    stderr,
    writeFile(name: string, contents: Uint8Array | string) {
      if (name.endsWith('.wasm') && contents instanceof Uint8Array) binary = contents;
    },
  });
  if (result.error !== null || binary === null) {
    throw new Error(`cannot compile ${relative(ROOT, entry)}: ${result.error?.message ?? 'no output'}\n${stderr.toString()}`);
  }
  return binary;
}

async function mtimeMs(path: string): Promise<number | null> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return null;
  }
}

/**
 * The newest modification time of any file under the given files or directories.
 *
 * @example
 * ```ts
 * const stale = (await newestMtimeMs(['plugins/retrieval'])) > outputMtime;
 * ```
 * @throws Error (ENOENT) when a path does not exist.
 */
export async function newestMtimeMs(paths: readonly string[]): Promise<number> {
  let newest = 0;
  for (const path of paths) {
    const info = await stat(path);
    newest = Math.max(newest, info.mtimeMs);
    if (!info.isDirectory()) continue;
    const entries = await readdir(path);
    newest = Math.max(newest, await newestMtimeMs(entries.map((name) => join(path, name))));
  }
  return newest;
}

/**
 * Builds every `plugins/<name>/index.ts` to `build/plugins/<name>.wasm`.
 *
 * @example
 * ```ts
 * for (const result of await buildAllPlugins()) console.log(result.outFile, result.built);
 * ```
 */
export async function buildAllPlugins(): Promise<BuildResult[]> {
  const names = (await readdir(PLUGINS_DIR, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const results: BuildResult[] = [];
  // Sequential on purpose: the compiler is CPU-bound and its module state is not documented as
  // safe to share between concurrent runs.
  for (const name of names) {
    results.push(await buildPlugin(join(PLUGINS_DIR, name, 'index.ts'), join(OUT_DIR, `${name}.wasm`)));
  }
  return results;
}

/**
 * Builds every kernel in {@link KERNELS} to `build/kernels/<name>.wasm`.
 *
 * @example
 * ```ts
 * await buildAllKernels(); // before constructing a VectorIndex in a fresh checkout
 * ```
 * @throws Error with the compiler's diagnostics when compilation fails.
 */
export async function buildAllKernels(): Promise<BuildResult[]> {
  const results: BuildResult[] = [];
  for (const [name, entry] of Object.entries(KERNELS)) {
    results.push(await buildPlugin(entry, join(KERNELS_OUT_DIR, `${name}.wasm`), { flags: KERNEL_FLAGS }));
  }
  return results;
}

/**
 * Meters the built-in plugins ahead of time (`build/plugins/<slot>.metered.wasm` with its manifest),
 * so a cell starting — or replacing a crashed one — does not spend binaryen's seconds on them.
 * Skipped when the manifest already matches the module and the metering code.
 */
export async function meterBuiltins(): Promise<{ slot: string; built: boolean; ms: number }[]> {
  const { meterModule } = await import('../host/sandbox/metering.ts');
  const { expectedBuiltinManifest } = await import('../host/sandbox/session-plugins.ts');
  const { readFile } = await import('node:fs/promises');
  const results: { slot: string; built: boolean; ms: number }[] = [];
  for (const slot of ['retrieval', 'prompt']) {
    const source = await readFile(join(OUT_DIR, `${slot}.wasm`));
    const expected = await expectedBuiltinManifest(source);
    const manifestFile = join(OUT_DIR, `${slot}.metered.json`);
    const current = await readFile(manifestFile, 'utf8').then((text) => JSON.parse(text) as unknown, () => null);
    if (JSON.stringify(current) === JSON.stringify(expected) && (await mtimeMs(join(OUT_DIR, `${slot}.metered.wasm`))) !== null) {
      results.push({ slot, built: false, ms: 0 });
      continue;
    }
    const started = performance.now();
    const metered = await meterModule(source, { memoryPagesMax: expected.memoryPagesMax });
    const temp = join(OUT_DIR, `${slot}.metered.wasm.${process.pid}.tmp`);
    await writeFile(temp, metered.bytes);
    await rename(temp, join(OUT_DIR, `${slot}.metered.wasm`));
    await writeFile(manifestFile, JSON.stringify(expected));
    results.push({ slot, built: true, ms: Math.round(performance.now() - started) });
  }
  return results;
}

function describe(result: BuildResult): string {
  const size = `${(result.bytes / 1024).toFixed(1)} KiB`;
  const name = relative(ROOT, result.outFile);
  return result.built ? `built ${name} (${size}, ${result.ms} ms)` : `${name} up to date (${size})`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    for (const result of await buildAllPlugins()) console.log(`plugins: ${describe(result)}`);
    for (const metered of await meterBuiltins()) console.log(`plugins: ${metered.built ? `metered ${metered.slot} (${metered.ms} ms)` : `metered ${metered.slot} up to date`}`);
    for (const result of await buildAllKernels()) console.log(`kernels: ${describe(result)}`);
    // Imported here, not at the top: modules that only compile plugins need no bundler.
    const { buildBrowserClient } = await import('./build-client.ts');
    const client = await buildBrowserClient();
    console.log(`client: built ${relative(ROOT, client.outFile)} (${(client.bytes / 1024).toFixed(1)} KiB, ${client.ms} ms)`);
  } catch (error: unknown) {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  }
}
