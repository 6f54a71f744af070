/**
 * Example prompt plugin: a support persona. The model is told who it is ("Pip", the shop's
 * assistant), how to sound and how long to answer, before the tenant's own system prompt (kept
 * as house rules) and the context. Context chunks become numbered sources, best score first,
 * while they fit the token budget; only the last exchange of the history is kept, because older
 * turns cost budget that sources use better. Cacheable on a first turn only.
 *
 * Shows: reading every field of the assemble input, mixing literal text and chunk references in
 * one message, a token budget, trimming history, and the cacheable flag.
 */
import { AssembleInput, ContextChunk, Message, Role, Turn, readAssembleInput, writeAssembleOutput } from "@ctx-host/plugin-sdk";

const PERSONA =
  "You are Pip, the friendly assistant of a bicycle shop. Speak plainly and warmly, in at most three " +
  "sentences. Answer only from the numbered sources below and cite each one you use as [chunkId]. " +
  "If the sources do not answer the question, say so and suggest asking the shop.";
/** Turns of history kept: the last question and its answer. */
const HISTORY_TURNS_KEPT: i32 = 2;

/** Estimated tokens: UTF-8 bytes / 4, rounded up. */
function tokens(text: string): i32 {
  return (String.UTF8.byteLength(text) + 3) / 4;
}

/** The last `HISTORY_TURNS_KEPT` turns, oldest first. */
function recentHistory(history: Turn[]): Turn[] {
  const from = max(0, history.length - HISTORY_TURNS_KEPT);
  return history.slice(from);
}

class Ranked {
  constructor(public chunk: ContextChunk, public order: i32) {}
}

/** Chunks best score first; equal scores keep retrieval's order (AssemblyScript has no closures, so the order rides along). */
function bestFirst(chunks: ContextChunk[]): ContextChunk[] {
  const ranked = new Array<Ranked>(0);
  for (let i = 0; i < chunks.length; i++) ranked.push(new Ranked(chunks[i], i));
  ranked.sort((a: Ranked, b: Ranked): i32 => {
    if (a.chunk.score != b.chunk.score) return a.chunk.score > b.chunk.score ? -1 : 1;
    return a.order - b.order;
  });
  const sorted = new Array<ContextChunk>(0);
  for (let i = 0; i < ranked.length; i++) sorted.push(ranked[i].chunk);
  return sorted;
}

function systemMessage(input: AssembleInput, history: Turn[]): Message {
  let intro = PERSONA + "\n\n";
  if (input.systemPrompt.length > 0) intro += "House rules: " + input.systemPrompt + "\n\n";
  const system = new Message(Role.System).text(intro);
  let used = tokens(intro) + tokens(input.query);
  for (let i = 0; i < history.length; i++) used += tokens(history[i].content);
  const chunks = bestFirst(input.chunks);
  for (let i = 0; i < chunks.length; i++) {
    const header = "Source " + (i + 1).toString() + " [" + chunks[i].chunkId + "] " + chunks[i].title + ":\n";
    const cost = tokens(header) + tokens(chunks[i].text);
    if (used + cost > <i32>input.tokenBudget) break;
    used += cost;
    system.text(header).ref(chunks[i].chunkId).text("\n\n");
  }
  return system;
}

/** The `assemble` export. */
export function assemble(): i32 {
  const input = readAssembleInput();
  const history = recentHistory(input.history);
  const messages: Message[] = [systemMessage(input, history)];
  for (let i = 0; i < history.length; i++) messages.push(new Message(history[i].role).text(history[i].content));
  messages.push(new Message(Role.User).text(input.query));
  writeAssembleOutput(messages, input.history.length == 0);
  return 0;
}
