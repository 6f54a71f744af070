/**
 * The project's documents stand alone: the design lives in the repository (host/DESIGN.md), every
 * pointer to it names a path that exists and a section or invariant it has, its links lead to files
 * and headings that exist, and nothing points outside the repository to the team's shared folder,
 * which a fresh clone does not have.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, normalize, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = process.cwd();
const DESIGN = 'host/DESIGN.md';
/** Folders that are not the project's own text: installed anywhere; built, run-time data, generated or scratch at the top. */
const SKIPPED_ANYWHERE = new Set(['.git', 'node_modules']);
const SKIPPED_AT_TOP = new Set(['build', 'data', 'test-artifacts', 'scratch']);
const TEXT_EXTENSIONS = new Set(['.ts', '.mts', '.mjs', '.js', '.md', '.json', '.html', '.css', '.wat', '.sh', '.yml', '.yaml', '']);
/** The design file's name, spelled so that this file's own source does not match the searches below. */
const DESIGN_NAME = ['DESIGN', 'md'].join('.');
/** A path to the shared folder beside the repository, in the two spellings seen. */
const OUTSIDE = new RegExp(`(?:\\.\\./)+${'shared'}\\b|/work/${'shared'}\\b`);

function projectFiles(dir = ROOT): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      const skipped = SKIPPED_ANYWHERE.has(entry.name) || (dir === ROOT && SKIPPED_AT_TOP.has(entry.name));
      if (!skipped) files.push(...projectFiles(join(dir, entry.name)));
    } else if (entry.isFile() && TEXT_EXTENSIONS.has(extname(entry.name)) && entry.name !== 'package-lock.json') {
      files.push(relative(ROOT, join(dir, entry.name)));
    }
  }
  return files;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

function headingsOf(markdown: string): string[] {
  return [...markdown.matchAll(/^#{1,6} (.+)$/gm)].map((match) => (match[1] ?? '').trim());
}

const files = projectFiles();
const design = readFileSync(DESIGN, 'utf8');
const designHeadings = headingsOf(design);
const designAnchors = new Set(designHeadings.map(slug));

test('host/DESIGN.md holds the design: the product, the architecture, seven invariants, the sandbox, the interfaces, the process model', () => {
  for (const heading of ['What the product is', 'Architecture', 'The isolation invariants', 'The sandbox: measured facts', 'Plugin ABI', 'Wire protocol', 'HTTP API', 'Process model']) {
    assert.ok(designHeadings.includes(heading), `host/DESIGN.md has no section "${heading}"`);
  }
  const invariants = designHeadings.filter((heading) => /^\d\. /.test(heading));
  assert.equal(invariants.map((heading) => heading.slice(0, 2)), ['1.', '2.', '3.', '4.', '5.', '6.', '7.']);
  // Each invariant says where it is enforced and which tests attack it, naming files that exist.
  for (const block of design.split(/^### \d\. /m).slice(1)) {
    assert.ok(block.includes('**Enforced in**') && block.includes('**Attacked by**'), `invariant "${block.split('\n')[0]}" lacks where it is enforced or what attacks it`);
    for (const [, path] of block.matchAll(/`((?:host|test|sdk|plugins)\/[\w./-]+\.(?:ts|wat|md))`/g)) {
      assert.ok(existsSync(path ?? ''), `host/DESIGN.md names ${path}, which does not exist`);
    }
  }
});

test(`every pointer to the design names ${DESIGN}, and a section or invariant it has`, () => {
  const pointers: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(new RegExp(`([\\w./-]*)${DESIGN_NAME.replace('.', '\\.')}(#[\\w-]+)?(?:,? (?:"([^"]+)"|invariant (\\d+)))?`, 'g'))) {
      const [whole, prefix = '', anchor, section, invariant] = match;
      const where = `${file}: ${whole}`;
      pointers.push(where);
      const target = [join(dirname(file), prefix + DESIGN_NAME), prefix + DESIGN_NAME].map((path) => normalize(path));
      assert.ok(target.some((path) => path === normalize(DESIGN) && existsSync(path) && statSync(path).isFile()), `${where}: no such design file (the design is ${DESIGN})`);
      if (anchor !== undefined) assert.ok(designAnchors.has(anchor.slice(1)), `${where}: ${DESIGN} has no heading for ${anchor}`);
      if (section !== undefined) assert.ok(designHeadings.includes(section), `${where}: ${DESIGN} has no section "${section}"`);
      if (invariant !== undefined) assert.ok(designHeadings.some((heading) => heading.startsWith(`${invariant}. `)), `${where}: ${DESIGN} has no invariant ${invariant}`);
    }
  }
  assert.ok(pointers.length >= 15, `found only ${pointers.length} pointers to the design:\n${pointers.join('\n')}`);
});

test('no file points outside the repository to the shared folder', () => {
  const outside = files.filter((file) => OUTSIDE.test(readFileSync(file, 'utf8')));
  assert.equal(outside, [], 'these files refer to the shared folder, which a fresh clone does not have');
});

test('the links of host/DESIGN.md lead to files and headings that exist', () => {
  const links = [...design.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] ?? '');
  assert.ok(links.length > 0);
  for (const link of links) {
    const [path = '', anchor] = link.split('#');
    const file = path === '' ? DESIGN : normalize(join(dirname(DESIGN), path));
    assert.ok(existsSync(file), `host/DESIGN.md links to ${link}: no ${file}`);
    if (anchor !== undefined && file.endsWith('.md')) {
      const anchors = new Set(headingsOf(readFileSync(file, 'utf8')).map(slug));
      assert.ok(anchors.has(anchor), `host/DESIGN.md links to ${link}: ${file} has no such heading`);
    }
  }
});

test.run();
