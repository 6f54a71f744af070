/**
 * What ingest computes from a document before anything is stored: its chunks, their lexical
 * entries and (with the local embedder) their vectors. Pure computation over the text; the ingest
 * worker runs it off the cell's event loop, and tools without a cell (the CLI, the demo seed) run
 * it in place.
 */
import { termFrequencies } from './bm25.ts';
import { chunkText } from './chunker.ts';
import type { Embedder } from './embedder.ts';
import { embeddedText } from './tenant-index.ts';
import { tokenize } from './tokenize.ts';

/** One document prepared: its chunks, each with its terms and (maybe) its vector. */
export interface PreparedText {
  pieces: string[];
  terms: { terms: [string, number][]; length: number }[];
  /** The chunks' vectors one after another (`dim` floats each), or null without a local embedder. */
  vectors: Float32Array | null;
}

/** Prepares one document; `local` embeds the chunks (undefined: the caller embeds them itself). */
export function prepareText(document: { title: string; text: string }, local: Embedder | undefined): PreparedText {
  const pieces = chunkText(document.text).map((piece) => piece.text);
  const terms = pieces.map((piece) => {
    const tokens = tokenize(`${document.title} ${piece}`);
    return { terms: [...termFrequencies(tokens)], length: tokens.length };
  });
  let vectors: Float32Array | null = null;
  if (local !== undefined) {
    const out = new Float32Array(pieces.length * local.dim);
    pieces.forEach((piece, index) => out.set(local.embed(embeddedText(document.title, piece)), index * local.dim));
    vectors = out;
  }
  return { pieces, terms, vectors };
}
