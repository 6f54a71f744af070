/**
 * The built-in prompt plugin.
 *
 * Message layout: one system message (the tenant's system prompt, the grounding instruction, then
 * one context block per chunk: literal `[chunkId] title:\n` followed by a reference the host
 * resolves to the chunk's text), then the history turns, then the user's question. Chunks are
 * added best score first while the estimated size of the whole prompt still fits the token
 * budget; the first chunk that does not fit ends the context (no smaller chunk jumps ahead, so
 * the context stays a prefix of the ranking). The result is cacheable only on a first turn,
 * where the question alone determines the answer.
 */
import {
  AssembleInput,
  ContextChunk,
  Message,
  Role,
  readAssembleInput,
  writeAssembleOutput,
} from "../../sdk/as/index";

const GROUNDING_INSTRUCTION =
  "Answer only from the context below. If the context does not contain the answer, say that you " +
  "do not know. Cite the sources you used as [chunkId].";

/** Tokens are estimated as ceil(UTF-8 bytes / 4), the usual rule of thumb for English text. */
function estimateTokens(utf8Bytes: i64): i64 {
  return (utf8Bytes + 3) / 4;
}

function utf8Bytes(text: string): i64 {
  return <i64>String.UTF8.byteLength(text);
}

function header(chunk: ContextChunk): string {
  return chunk.title.length > 0 ? "[" + chunk.chunkId + "] " + chunk.title + ":\n" : "[" + chunk.chunkId + "]:\n";
}

/** Chunks by score, best first; equal scores keep the order the retrieval plugin gave. */
function byScore(chunks: ContextChunk[]): ContextChunk[] {
  const indexed = new Array<IndexedChunk>(0);
  for (let i = 0; i < chunks.length; i++) indexed.push(new IndexedChunk(chunks[i], i));
  indexed.sort((a: IndexedChunk, b: IndexedChunk): i32 => {
    if (a.chunk.score != b.chunk.score) return a.chunk.score > b.chunk.score ? -1 : 1;
    return a.index - b.index;
  });
  const sorted = new Array<ContextChunk>(0);
  for (let i = 0; i < indexed.length; i++) sorted.push(indexed[i].chunk);
  return sorted;
}

class IndexedChunk {
  constructor(public chunk: ContextChunk, public index: i32) {}
}

/** Bytes of everything but the context blocks: these are always sent. */
function fixedBytes(input: AssembleInput, systemText: string): i64 {
  let bytes = utf8Bytes(systemText) + utf8Bytes(input.query);
  for (let i = 0; i < input.history.length; i++) bytes += utf8Bytes(input.history[i].content);
  return bytes;
}

/** The `assemble` export. */
export function assemble(): i32 {
  const input = readAssembleInput();
  const systemText = input.systemPrompt.length > 0
    ? input.systemPrompt + "\n\n" + GROUNDING_INSTRUCTION + "\n\n"
    : GROUNDING_INSTRUCTION + "\n\n";
  const system = new Message(Role.System).text(systemText);
  let used = fixedBytes(input, systemText);
  const chunks = byScore(input.chunks);
  for (let i = 0; i < chunks.length; i++) {
    const block = header(chunks[i]);
    const cost = utf8Bytes(block) + utf8Bytes(chunks[i].text) + 2;
    if (estimateTokens(used + cost) > <i64>input.tokenBudget) break;
    used += cost;
    system.text(block).ref(chunks[i].chunkId).text("\n\n");
  }
  const messages: Message[] = [system];
  for (let i = 0; i < input.history.length; i++) {
    messages.push(new Message(input.history[i].role).text(input.history[i].content));
  }
  messages.push(new Message(Role.User).text(input.query));
  writeAssembleOutput(messages, input.history.length == 0);
  return 0;
}
