/**
 * A prompt plugin for ctx-host, made by `ctx-plugin init`.
 *
 * The host calls `assemble` once per question with the tenant's system prompt, the question, the
 * chat history and the chunks retrieval found. It returns the chat messages for the model. A
 * message mixes literal text with *references* to chunks (`.ref(chunkId)`): the host puts the
 * chunk's text in, after checking it belongs to this tenant, so a plugin never copies text itself.
 *
 * This one writes a system message (the tenant's prompt, an instruction to cite, then the context
 * blocks while they fit the token budget), the history, and the question. Change the wording, the
 * layout or the budget rule; `ctx-plugin test` prints the messages the model would see.
 */
import { Message, Role, readAssembleInput, writeAssembleOutput } from "@ctx-host/plugin-sdk";

const INSTRUCTION = "Answer from the context below and cite the chunks you used as [chunkId]. " +
  "If the context does not hold the answer, say so.";

/** Tokens are estimated as UTF-8 bytes / 4, the usual rule of thumb for English text. */
function tokens(text: string): i32 {
  return (String.UTF8.byteLength(text) + 3) / 4;
}

/** The `assemble` export: the host calls it by this name. */
export function assemble(): i32 {
  const input = readAssembleInput();
  const intro = input.systemPrompt + "\n\n" + INSTRUCTION + "\n\n";
  const system = new Message(Role.System).text(intro);
  let used = tokens(intro) + tokens(input.query);
  // Chunks arrive best first; stop at the first one that would overrun the budget.
  for (let i = 0; i < input.chunks.length; i++) {
    const chunk = input.chunks[i];
    const header = "[" + chunk.chunkId + "] " + chunk.title + ":\n";
    const cost = tokens(header) + tokens(chunk.text);
    if (used + cost > <i32>input.tokenBudget) break;
    used += cost;
    system.text(header).ref(chunk.chunkId).text("\n\n");
  }
  const messages: Message[] = [system];
  for (let i = 0; i < input.history.length; i++) {
    messages.push(new Message(input.history[i].role).text(input.history[i].content));
  }
  messages.push(new Message(Role.User).text(input.query));
  // Without history the question alone decides the answer, so the host may cache it.
  writeAssembleOutput(messages, input.history.length == 0);
  return 0;
}
