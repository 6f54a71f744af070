/**
 * `npm run build` (after the plugins): bundles the browser pages — the chat page, the tenant
 * console and the operator view — with esbuild into `build/web/`, beside copies of their HTML and
 * CSS. Each page's script is one self-contained ES module (the SDK's chat client and msgpackr
 * included), so the host serves everything itself and the pages work with no network beyond it.
 * esbuild takes well under a second, so this always rebuilds: a stale page is never served.
 */
import { build } from 'esbuild';
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Where the page sources live: `client/` is TypeScript for the browser, `static/` is copied as is. */
const WEB_DIR = join(ROOT, 'host', 'web');
/** What the host serves (host/web/assets.ts reads it at start). */
export const WEB_OUT_DIR = join(ROOT, 'build', 'web');
/** One bundle per page: `client/<name>.ts` → `build/web/<name>.js`. */
const ENTRIES = ['chat', 'console', 'operator'] as const;

/** What {@link buildWeb} wrote. */
export interface WebBuildResult {
  files: string[];
  bytes: number;
  ms: number;
}

/**
 * Bundles the page scripts and copies the static files into `outDir`, then removes any other
 * file there, so a file removed from the sources is not served on. (Files are overwritten in place
 * rather than the folder emptied first, so a host starting meanwhile does not find it empty.)
 *
 * @example
 * ```ts
 * const { files } = await buildWeb();
 * ```
 * @throws Error with esbuild's diagnostics when a page does not compile.
 */
export async function buildWeb(outDir: string = WEB_OUT_DIR): Promise<WebBuildResult> {
  const started = performance.now();
  await mkdir(outDir, { recursive: true });
  const result = await build({
    entryPoints: ENTRIES.map((name) => join(WEB_DIR, 'client', `${name}.ts`)),
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // Chromium, Firefox and Safari releases of 2023 on: top-level await, class fields, `??=`.
    target: ['es2022'],
    minify: true,
    // Shared code (the chat client, msgpackr) is inlined in each page rather than split into
    // chunks: three small pages, and each loads with exactly one script request.
    splitting: false,
    legalComments: 'none',
    logLevel: 'silent',
    metafile: true,
  });
  const staticDir = join(WEB_DIR, 'static');
  const statics = await readdir(staticDir);
  for (const name of statics) await copyFile(join(staticDir, name), join(outDir, name));
  const files = [...ENTRIES.map((name) => `${name}.js`), ...statics].sort();
  for (const name of await readdir(outDir)) if (!files.includes(name)) await rm(join(outDir, name), { recursive: true, force: true });
  const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
  return { files, bytes, ms: Math.round(performance.now() - started) };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const { files, bytes, ms } = await buildWeb();
    console.log(`web: built ${files.length} files in build/web (scripts ${(bytes / 1024).toFixed(1)} KiB, ${ms} ms)`);
  } catch (error: unknown) {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  }
}
