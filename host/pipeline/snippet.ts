/**
 * Source snippets: the start of a cited chunk's text, sent with each source of a `done` frame so a
 * chat page can show the passage an answer rests on. The text is the asking tenant's own chunk,
 * resolved for this ask (or re-validated for a cache hit), so it crosses no partition; the limit
 * only keeps the frame small.
 */
import { LIMITS } from '../limits.ts';

/**
 * The snippet of a chunk's text: whitespace collapsed, whole when it fits `maxChars`, else cut at
 * the last word boundary that leaves room for an ellipsis (mid-word only for one very long word).
 */
export function sourceSnippet(text: string, maxChars: number = LIMITS.sourceSnippetCharsMax): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= maxChars) return flat;
  const room = flat.slice(0, maxChars - 1);
  const space = room.lastIndexOf(' ');
  // A boundary in the first half would waste most of the room; cut the word instead.
  const cut = space > maxChars / 2 ? room.slice(0, space) : room;
  return `${cut.trimEnd()}…`;
}
