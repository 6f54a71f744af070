/**
 * The built pages (`npm run build` → `build/web/`), read once at start into memory: a handful of
 * files, a few hundred KiB. Serving from memory means a request can name only a file that was
 * there at start — no path from the URL ever reaches the filesystem.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `npm run build` puts the pages (scripts/build-web.ts). */
export const WEB_ASSETS_DIR = resolve(fileURLToPath(new URL('../../build/web', import.meta.url)));

/** Content types of what the build emits. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** One servable file. */
export interface WebAsset {
  readonly body: Buffer;
  readonly contentType: string;
  /** A strong validator: the SHA-256 of the body, quoted. */
  readonly etag: string;
}

/** The pages and their scripts, by file name. */
export type WebAssets = ReadonlyMap<string, WebAsset>;

/** The pages every host serves; the start fails without them. */
const REQUIRED = ['chat.html', 'console.html', 'operator.html', 'chat.js', 'console.js', 'operator.js', 'style.css'];

/**
 * Reads every file of the build's web folder.
 * @throws Error naming `npm run build` when the folder or a page is missing: a host without its
 *   pages fails at start rather than on the first visit.
 */
export function loadWebAssets(dir: string = WEB_ASSETS_DIR): WebAssets {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error: unknown) {
    throw new Error(`the web pages are missing at ${dir}; run \`npm run build\``, { cause: error });
  }
  const missing = REQUIRED.filter((name) => !names.includes(name));
  if (missing.length > 0) throw new Error(`the web pages at ${dir} lack ${missing.join(', ')}; run \`npm run build\``);
  const assets = new Map<string, WebAsset>();
  for (const name of names) {
    const contentType = CONTENT_TYPES[extname(name)];
    if (contentType === undefined) continue;
    const body = readFileSync(join(dir, name));
    assets.set(name, { body, contentType, etag: `"${createHash('sha256').update(body).digest('base64url')}"` });
  }
  return assets;
}
