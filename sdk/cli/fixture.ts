/**
 * Fixture documents for `ctx-plugin test`: a JSON file in the shape `POST /v1/documents` takes (so
 * the same file can be posted to a host), or a folder of Markdown/text files, one document each.
 * Either way they pass the host's own document validation, so a fixture that loads here would be
 * accepted by a host too.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { HostError } from '../../host/errors.ts';
import { validateDocuments, type DocumentInput } from '../../host/retrieval/ingest.ts';
import { CliError } from './errors.ts';

/** Extensions a fixture folder's documents may have. */
const TEXT_EXTENSIONS = new Set(['.md', '.markdown', '.txt']);

/**
 * Loads fixture documents from a `.json` file or a folder.
 *
 * @example
 * ```ts
 * const documents = loadFixture('fixture/documents.json');
 * ```
 * @throws {CliError} CLI_FIXTURE_INVALID naming the file and what is wrong with it.
 */
export function loadFixture(path: string): DocumentInput[] {
  let isFolder: boolean;
  try {
    isFolder = statSync(path).isDirectory();
  } catch {
    throw new CliError('CLI_FIXTURE_INVALID', `the fixture ${path} does not exist`, 'set "fixture" in ctx-plugin.json to a documents JSON file or a folder of .md/.txt files, or pass --fixture');
  }
  try {
    return validateDocuments(isFolder ? { documents: readFolder(path) } : readJson(path));
  } catch (error: unknown) {
    if (error instanceof HostError || error instanceof SyntaxError) {
      throw new CliError('CLI_FIXTURE_INVALID', `the fixture ${path} is not valid: ${error.message}`, 'fix the fixture (the same rules as POST /v1/documents apply)');
    }
    throw error;
  }
}

function readJson(path: string): unknown {
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  // A bare array is accepted too: it is what people write first.
  return Array.isArray(parsed) ? { documents: parsed } : parsed;
}

/** One document per text file: the id is the file name, the title its first `# ` heading. */
function readFolder(dir: string): DocumentInput[] {
  const names = readdirSync(dir).filter((name) => TEXT_EXTENSIONS.has(extname(name).toLowerCase())).sort();
  if (names.length === 0) throw new HostError('DOCUMENT_INVALID', `the folder holds no ${[...TEXT_EXTENSIONS].join(', ')} files`);
  return names.map((name) => {
    const text = readFileSync(join(dir, name), 'utf8');
    const heading = /^#\s+(.+)\r?\n/.exec(text);
    const id = basename(name, extname(name));
    return heading === null ? { id, title: id, text } : { id, title: (heading[1] ?? id).trim(), text: text.slice(heading[0].length).trim() };
  });
}
