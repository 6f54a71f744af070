/**
 * Writes test/fixtures/data/hard-negatives.json: questions that differ from a cached one by a single
 * fact (a name, a number, a negation, a direction), made from the origins of
 * test/fixtures/data/paraphrase-pairs.json. The semantic cache must NOT serve the cached answer for
 * any of them, however similar their embeddings are; bench/cache-quality.ts counts how often it does.
 *
 *   node --import tsx scripts/make-hard-negatives.ts
 *
 * Deterministic: one seeded PRNG (mulberry32, SEED below) makes every choice, the origins are read in
 * file order, and the same input always gives the same file. Each item:
 *   { kind, pair, cached, asked, expect }
 * `pair` is the index in paraphrase-pairs.json of the first pair with that origin; `cached` is the
 * question whose answer is cached; `asked` the one asked; `expect` is "miss" (a different question:
 * any hit on it is wrong) or "hit" (the same question written differently: a hit is right).
 *
 * Kinds (each tried once per distinct origin, skipped where the origin offers nothing to change):
 * - entity: one name swapped for another of its kind (a catalogue of libraries, frameworks, file
 *   formats, classes, storage services, modalities, models, benchmarks, languages, companies; else an
 *   all-capitals identifier for another one of the set). Every fourth is then written in lower
 *   case, as people type, so that capitals are no clue.
 * - number: one number changed (digits, versions, "50k", written numbers, ordinals).
 * - negation: a negation removed ("doesn't" → "does", "not" dropped, "No," → "Yes,", "never" →
 *   "always", "without" → "with", "cannot" → "can") or, where there is none, added after the first
 *   auxiliary verb ("is" → "is not") for every third origin (so that additions, the easy kind to
 *   make, do not outnumber everything else).
 * - comparative: one word of an opposed pair flipped ("faster" → "slower", "before" → "after").
 * - ordinal (every fourth origin): the origin is qualified on both sides, "Part III: …" cached and
 *   "Part 2: …" asked (the "CFA level I" vs "CFA level 3" case), each value written as digits, a
 *   roman numeral, a written number or an ordinal ("Third part: …").
 * - same-number (every fourth origin, expect "hit"): the same qualifier with the same value written
 *   another way ("Part III:" cached, "Part 3:" asked).
 * An item whose asked text equals (normalised) any origin or its own cached text is dropped.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const SEED = 0x5eed_2026;
const SOURCE = new URL('../test/fixtures/data/paraphrase-pairs.json', import.meta.url);
const OUT = new URL('../test/fixtures/data/hard-negatives.json', import.meta.url);

/** Names by kind: a name is swapped only for another of its own kind. Longer names are matched first. */
const CATALOGUE: Readonly<Record<string, readonly string[]>> = {
  framework: ['PyTorch', 'TensorFlow', 'JAX', 'NumPy', 'Pandas', 'Flax', 'Keras', 'ONNX', 'Spark', 'Apache Beam', 'Polars', 'Dask'],
  format: ['CSV', 'JSON', 'JSONL', 'Parquet', 'Arrow', 'SQL', 'TAR', 'YAML', 'SQLite', 'PostgreSQL', 'ZIP', 'XML', 'Avro'],
  library: ['Transformers', 'Datasets', 'Diffusers', 'Tokenizers', 'Accelerate', 'Evaluate', 'Gradio', 'Optimum', 'PEFT', 'Safetensors', 'Kornia', 'Albumentations'],
  class: ['IterableDataset', 'DatasetDict', 'DatasetInfo', 'DatasetBuilder', 'GeneratorBasedBuilder', 'BuilderConfig', 'DownloadManager', 'SplitGenerator', 'DataLoader', 'DataFrame', 'RecordBatch', 'DataType'],
  storage: ['Amazon S3', 'Google Cloud Storage', 'Azure Blob Storage', 'Dropbox', 'Google Drive', 'SageMaker', 'ElasticSearch', 'FAISS', 'S3', 'Azure', 'GCS'],
  modality: ['Audio', 'Vision', 'Image', 'Text', 'Tabular', 'Video'],
  model: ['BERT', 'GPT-2', 'T5', 'RoBERTa', 'DistilBERT', 'BART', 'DPR', 'CLIP', 'Whisper', 'ViT'],
  benchmark: ['SuperGLUE', 'GLUE', 'MRPC', 'SQuAD', 'IMDb', 'MNIST', 'CIFAR-10', 'Common Voice'],
  language: ['Python', 'Rust', 'JavaScript', 'Java', 'Julia'],
  company: ['Google', 'Amazon', 'Microsoft', 'Meta', 'Hugging Face', 'GitHub', 'Kaggle', 'OpenAI'],
};

const WRITTEN = ['two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'twenty'];
const ORDINAL_WORDS = ['first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth', 'ninth', 'tenth', 'eleventh', 'twelfth'];
const CARDINAL_WORDS = ['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve'];
const ROMAN = ['I', 'II', 'III', 'IV', 'V', 'VI', 'VII', 'VIII', 'IX', 'X', 'XI', 'XII'];
const QUALIFIERS = ['part', 'level', 'chapter', 'step', 'stage', 'tier', 'grade', 'phase', 'season', 'volume'];

/**
 * Opposed words for the comparative kind. Broader than the verifier's own list (host/cache/verify.ts)
 * on purpose: pairs it does not know show up as wrong hits in the benchmark instead of being hidden.
 */
const FLIPS: readonly [string, string][] = [
  ['more', 'less'], ['faster', 'slower'], ['larger', 'smaller'], ['bigger', 'smaller'], ['better', 'worse'], ['higher', 'lower'],
  ['before', 'after'], ['increase', 'decrease'], ['most', 'least'], ['best', 'worst'], ['easier', 'harder'], ['earlier', 'later'],
  ['longer', 'shorter'], ['maximum', 'minimum'], ['upload', 'download'], ['enable', 'disable'], ['import', 'export'],
  ['encode', 'decode'], ['public', 'private'], ['input', 'output'], ['add', 'remove'], ['local', 'remote'], ['online', 'offline'],
  ['stronger', 'weaker'], ['wider', 'narrower'], ['deeper', 'shallower'], ['supervised', 'unsupervised'], ['multilingual', 'monolingual'],
  ['left', 'right'], ['above', 'below'], ['inside', 'outside'], ['train', 'test'], ['start', 'end'], ['open', 'close'],
];

const NEGATED: readonly [RegExp, string][] = [
  [/\bdoesn['’]t\b/, 'does'], [/\bdon['’]t\b/, 'do'], [/\bisn['’]t\b/, 'is'], [/\baren['’]t\b/, 'are'], [/\bcan['’]t\b/, 'can'],
  [/\bwon['’]t\b/, 'will'], [/\bdidn['’]t\b/, 'did'], [/\bwasn['’]t\b/, 'was'], [/\bshouldn['’]t\b/, 'should'], [/\bcouldn['’]t\b/, 'could'],
  [/\bwouldn['’]t\b/, 'would'], [/\bhasn['’]t\b/, 'has'], [/\bhaven['’]t\b/, 'have'], [/\bcannot\b/, 'can'], [/\bnot /, ''],
  [/^No, /, 'Yes, '], [/\bnever\b/, 'always'], [/\bwithout\b/, 'with'],
];
const AUXILIARIES = /\b(is|are|was|were|can|will|should|could|would|must|does|do)\b/;

interface Pair {
  origin: string;
  similar: string;
}

/** One generated question pair. */
interface Item {
  kind: 'entity' | 'number' | 'negation' | 'comparative' | 'ordinal' | 'same-number';
  pair: number;
  cached: string;
  asked: string;
  expect: 'miss' | 'hit';
}

/** mulberry32: a small, well-mixed 32-bit PRNG; enough for reproducible choices. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const normalise = (text: string): string => text.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim();

/** Replaces the occurrence of `match` at `index` in `text`. */
function replaceAt(text: string, index: number, length: number, replacement: string): string {
  return text.slice(0, index) + replacement + text.slice(index + length);
}

/** All-capitals identifiers of the whole set (doc page ids like LOAD_HU): swapped among themselves. */
function identifierPool(origins: readonly string[]): string[] {
  const pool = new Set<string>();
  for (const origin of origins) for (const match of origin.matchAll(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\b[A-Z]{4,}\b/g)) pool.add(match[0]);
  return [...pool].sort();
}

function swapEntity(origin: string, identifiers: readonly string[], lowerCase: boolean): string | undefined {
  const found: { index: number; name: string; kind: string }[] = [];
  const taken: boolean[] = [];
  const names = Object.entries(CATALOGUE).flatMap(([kind, list]) => list.map((name) => ({ kind, name }))).sort((a, b) => b.name.length - a.name.length);
  for (const { kind, name } of names) {
    for (const match of origin.matchAll(new RegExp(`(?<![\\w-])${escape(name)}(?![\\w-])`, 'g'))) {
      if (taken.slice(match.index, match.index + name.length).some(Boolean)) continue;
      for (let i = match.index; i < match.index + name.length; i++) taken[i] = true;
      found.push({ index: match.index, name, kind });
    }
  }
  if (found.length === 0) {
    for (const match of origin.matchAll(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\b[A-Z]{4,}\b/g)) {
      if (identifiers.includes(match[0])) found.push({ index: match.index, name: match[0], kind: 'identifier' });
    }
  }
  if (found.length === 0) return undefined;
  found.sort((a, b) => a.index - b.index);
  const target = pick(found);
  const pool = (target.kind === 'identifier' ? identifiers : (CATALOGUE[target.kind] as readonly string[])).filter(
    (name) => name.toLowerCase() !== target.name.toLowerCase() && !origin.toLowerCase().includes(name.toLowerCase()),
  );
  if (pool.length === 0) return undefined;
  const swapped = replaceAt(origin, target.index, target.name.length, pick(pool));
  return lowerCase ? swapped.toLowerCase() : swapped;
}

function changeNumber(origin: string): string | undefined {
  const found: { index: number; text: string; next: () => string }[] = [];
  for (const match of origin.matchAll(/(?<![\w.])(v?)(\d+(?:,\d{3})*(?:\.\d+)*)(k|st|nd|rd|th)?(?![\w])/g)) {
    const [text, prefix, digits, suffix = ''] = match as unknown as [string, string, string, string | undefined];
    found.push({
      index: match.index,
      text,
      next: () => {
        const parts = digits.split('.');
        if (parts.length > 2) {
          const at = Math.floor(random() * parts.length);
          parts[at] = String(Number(parts[at]) + 1);
          return `${prefix}${parts.join('.')}${suffix}`;
        }
        const value = Number(digits.replaceAll(',', ''));
        const options = [value + 1, value * 2, value + 10, value > 1 ? value - 1 : value + 2].filter((option) => option !== value);
        const chosen = pick(options);
        const formatted = digits.includes(',') ? chosen.toLocaleString('en-US') : parts.length === 2 ? chosen.toFixed(parts[1]?.length ?? 0) : String(chosen);
        const ordinal = suffix === 'st' || suffix === 'nd' || suffix === 'rd' || suffix === 'th' ? ordinalSuffix(chosen) : suffix;
        return `${prefix}${formatted}${ordinal}`;
      },
    });
  }
  for (const [words, label] of [[WRITTEN, 'written'], [ORDINAL_WORDS, 'ordinal']] as const) {
    for (const match of origin.matchAll(new RegExp(`\\b(${words.join('|')})\\b`, 'gi'))) {
      const word = match[0];
      found.push({
        index: match.index,
        text: word,
        next: () => {
          const others = words.filter((other) => other !== word.toLowerCase());
          const chosen = pick(others);
          void label;
          return word[0] === word[0]?.toUpperCase() ? chosen[0]?.toUpperCase() + chosen.slice(1) : chosen;
        },
      });
    }
  }
  if (found.length === 0) return undefined;
  found.sort((a, b) => a.index - b.index);
  const target = pick(found);
  return replaceAt(origin, target.index, target.text.length, target.next());
}

function ordinalSuffix(value: number): string {
  const tens = value % 100;
  if (tens >= 11 && tens <= 13) return 'th';
  return ['th', 'st', 'nd', 'rd'][value % 10] ?? 'th';
}

function flipNegation(origin: string, mayAdd: boolean): string | undefined {
  for (const [pattern, replacement] of NEGATED) {
    const match = pattern.exec(origin);
    if (match !== null) return replaceAt(origin, match.index, match[0].length, replacement).replace(/ {2,}/g, ' ');
  }
  if (!mayAdd) return undefined;
  const auxiliary = AUXILIARIES.exec(origin);
  if (auxiliary === null) return undefined;
  const word = auxiliary[0];
  return replaceAt(origin, auxiliary.index, word.length, word === 'can' ? 'cannot' : `${word} not`);
}

function flipComparative(origin: string): string | undefined {
  const found: { index: number; text: string; to: string }[] = [];
  for (const [a, b] of FLIPS) {
    for (const [from, to] of [[a, b], [b, a]] as const) {
      for (const match of origin.matchAll(new RegExp(`\\b${from}\\b`, 'gi'))) {
        const text = match[0];
        found.push({ index: match.index, text, to: text[0] === text[0]?.toUpperCase() ? to[0]?.toUpperCase() + to.slice(1) : to });
      }
    }
  }
  if (found.length === 0) return undefined;
  found.sort((a, b) => a.index - b.index);
  const target = pick(found);
  return replaceAt(origin, target.index, target.text.length, target.to);
}

/** "Part III: …", "Third part: …", "Part three: …" or "Part 3: …" for value `value` (1..12). */
function qualify(origin: string, qualifier: string, value: number, form: number): string {
  const noun = qualifier[0]?.toUpperCase() + qualifier.slice(1);
  switch (form) {
    case 0:
      return `${noun} ${value}: ${origin}`;
    case 1:
      return `${noun} ${ROMAN[value - 1]}: ${origin}`;
    case 2:
      return `${noun} ${CARDINAL_WORDS[value - 1]}: ${origin}`;
    default: {
      const ordinal = ORDINAL_WORDS[value - 1] as string;
      return `${ordinal[0]?.toUpperCase()}${ordinal.slice(1)} ${qualifier}: ${origin}`;
    }
  }
}

function main(): void {
  const pairs = JSON.parse(readFileSync(SOURCE, 'utf8')) as Pair[];
  const firstIndex = new Map<string, number>();
  pairs.forEach((pair, index) => {
    if (!firstIndex.has(pair.origin)) firstIndex.set(pair.origin, index);
  });
  const origins = [...firstIndex.keys()];
  const known = new Set(origins.map(normalise));
  const identifiers = identifierPool(origins);
  const items: Item[] = [];
  const add = (item: Item): void => {
    if (known.has(normalise(item.asked)) || normalise(item.asked) === normalise(item.cached)) return;
    items.push(item);
  };
  let entities = 0;
  origins.forEach((origin, n) => {
    const pair = firstIndex.get(origin) as number;
    const entity = swapEntity(origin, identifiers, entities % 4 === 3);
    if (entity !== undefined) {
      entities++;
      add({ kind: 'entity', pair, cached: origin, asked: entity, expect: 'miss' });
    }
    const number = changeNumber(origin);
    if (number !== undefined) add({ kind: 'number', pair, cached: origin, asked: number, expect: 'miss' });
    const negation = flipNegation(origin, n % 3 === 0);
    if (negation !== undefined) add({ kind: 'negation', pair, cached: origin, asked: negation, expect: 'miss' });
    const comparative = flipComparative(origin);
    if (comparative !== undefined) add({ kind: 'comparative', pair, cached: origin, asked: comparative, expect: 'miss' });
    if (n % 4 === 0) {
      const qualifier = pick(QUALIFIERS);
      const value = 1 + Math.floor(random() * ROMAN.length);
      let other = 1 + Math.floor(random() * (ROMAN.length - 1));
      if (other >= value) other++;
      const form = Math.floor(random() * 4);
      const cached = qualify(origin, qualifier, value, form);
      add({ kind: 'ordinal', pair, cached, asked: qualify(origin, qualifier, other, Math.floor(random() * 4)), expect: 'miss' });
      add({ kind: 'same-number', pair, cached, asked: qualify(origin, qualifier, value, (form + 1 + Math.floor(random() * 3)) % 4), expect: 'hit' });
    }
  });
  writeFileSync(OUT, `[\n${items.map((item) => JSON.stringify(item)).join(',\n')}\n]\n`);
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item.kind, (counts.get(item.kind) ?? 0) + 1);
  process.stdout.write(`wrote ${items.length} items (${[...counts].map(([kind, count]) => `${kind} ${count}`).join(', ')}) to ${OUT.pathname}\n`);
}

main();
