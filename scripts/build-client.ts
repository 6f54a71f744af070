/**
 * `npm run build` (with the plugins): bundles the chat client library for browsers into one ES
 * module, `build/sdk/client.js`, msgpackr included, which the host serves at `GET /sdk/client.js`.
 * A chat app imports it straight from the host: no bundler, no CDN, nothing fetched at run time
 * but that one file. esbuild takes a fraction of a second, so the bundle is always rebuilt and
 * never stale.
 */
import { build } from 'esbuild';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The bundle the host serves (host/transport/sdk-routes.ts reads it). */
export const BROWSER_CLIENT_FILE = join(ROOT, 'build', 'sdk', 'client.js');

/** What {@link buildBrowserClient} wrote. */
export interface ClientBuildResult {
  outFile: string;
  bytes: number;
  ms: number;
}

/**
 * Bundles `sdk/client/browser.ts` into `outFile`.
 *
 * @example
 * ```ts
 * const { bytes } = await buildBrowserClient();
 * ```
 * @throws Error with esbuild's diagnostics when the client does not compile.
 */
export async function buildBrowserClient(outFile: string = BROWSER_CLIENT_FILE): Promise<ClientBuildResult> {
  const started = performance.now();
  await mkdir(dirname(outFile), { recursive: true });
  const result = await build({
    entryPoints: [join(ROOT, 'sdk', 'client', 'browser.ts')],
    outfile: outFile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // Browsers of 2023 on (class private fields and methods, `??=`), the same as the host's pages.
    target: ['es2022'],
    minify: true,
    // Readable names in stack traces are worth the few bytes: developers debug against this file.
    keepNames: true,
    legalComments: 'inline',
    logLevel: 'silent',
    metafile: true,
  });
  const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
  return { outFile, bytes, ms: Math.round(performance.now() - started) };
}
