/**
 * Deterministic synthetic documents for benchmarks: each is one chunk of ~80 words drawn from a
 * fixed vocabulary by a seeded generator, so runs are comparable and nothing is downloaded.
 */

const VOCABULARY = (
  'battery charge motor frame wheel brake chain gear saddle pedal warranty invoice shipping delivery refund ' +
  'customer account password login server cluster backup restore deploy release version feature pricing plan ' +
  'contract invoice schedule meeting office policy leave travel expense budget report quarter revenue margin ' +
  'sensor firmware update network router cable storage disk memory processor thread latency throughput cache ' +
  'index search query vector token model prompt answer source document chunk tenant session plugin sandbox'
).split(' ');

/** A small deterministic PRNG (mulberry32). */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` documents with ids `doc-<n>`. */
export function syntheticDocuments(count: number): { id: string; title: string; text: string }[] {
  const random = generator(42);
  const documents = [];
  for (let n = 0; n < count; n += 1) {
    const words: string[] = [];
    for (let i = 0; i < 80; i += 1) words.push(VOCABULARY[Math.floor(random() * VOCABULARY.length)] as string);
    // A unique code per document gives every lexical search a single right answer to find.
    words.splice(10, 0, `code${n.toString(36)}`);
    documents.push({ id: `doc-${n}`, title: `Record ${n}`, text: `${words.join(' ')}.` });
  }
  return documents;
}
