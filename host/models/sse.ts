/**
 * A Server-Sent Events decoder (the WHATWG `text/event-stream` format) for model provider streams.
 * It takes bytes exactly as they arrive from the network: a read may end anywhere, inside a line,
 * between `\r` and `\n`, or inside a UTF-8 sequence, and the decoded events are the same as if the
 * whole stream had arrived at once.
 */
import { HostError } from '../errors.ts';

/** One dispatched event: its `event:` name (`message` when absent) and its `data:` lines joined by `\n`. */
export interface SseEvent {
  event: string;
  data: string;
}

/** Feeds bytes in, gets complete events out. */
export interface SseDecoder {
  /** Decodes the next piece of the stream; returns the events it completed (often none). */
  push(bytes: Uint8Array): SseEvent[];
  /** Ends the stream; returns the last event if its lines were complete. */
  end(): SseEvent[];
}

/**
 * Characters one line, or the data of one event (its data lines joined), may hold. A provider that
 * never sends a line break would otherwise make the host buffer without bound; the largest real
 * event is one delta of a few tokens, and the whole answer is capped far below this anyway.
 */
export const SSE_EVENT_CHARS_MAX = 1024 * 1024;

/**
 * Creates a decoder for one stream.
 * @throws never; `push` and `end` throw {@link HostError} MODEL_FAILED when a line or an event's
 * data is longer than {@link SSE_EVENT_CHARS_MAX}.
 */
export function createSseDecoder(): SseDecoder {
  // `stream: true` keeps an incomplete UTF-8 sequence until its remaining bytes arrive.
  const utf8 = new TextDecoder('utf-8');
  // CRLF, LF or a lone CR: the format allows all three. Per decoder because a /g regex has state.
  const lineBreak = /\r\n|\r|\n/g;
  // The unterminated line so far, kept as pieces: joining on every read would make a long line
  // arriving in tiny reads cost quadratic time.
  let tailPieces: string[] = [];
  let tailChars = 0;
  let skipLeadingLf = false;
  let eventName = '';
  let dataLines: string[] = [];
  let dataChars = 0;

  function takeLine(line: string, events: SseEvent[]): void {
    if (line.length > SSE_EVENT_CHARS_MAX) throw tooLong();
    if (line === '') {
      // A blank line dispatches; an event without data is discarded, as the format says.
      if (dataLines.length > 0) events.push({ event: eventName === '' ? 'message' : eventName, data: dataLines.join('\n') });
      eventName = '';
      dataLines = [];
      dataChars = 0;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      // Counts the data as it will be dispatched: the values plus the `\n` between them.
      dataChars += value.length + (dataLines.length > 0 ? 1 : 0);
      if (dataChars > SSE_EVENT_CHARS_MAX) throw tooLong();
      dataLines.push(value);
    } else if (field === 'event') {
      eventName = value;
    }
    // `id`, `retry` and unknown fields do not matter for a one-shot completion stream.
  }

  function takeText(text: string, events: SseEvent[]): void {
    if (skipLeadingLf && text !== '') {
      // The previous piece ended in `\r`; a `\n` right after it belongs to the same CRLF.
      if (text.startsWith('\n')) text = text.slice(1);
      skipLeadingLf = false;
    }
    let start = 0;
    lineBreak.lastIndex = 0;
    for (let match = lineBreak.exec(text); match !== null; match = lineBreak.exec(text)) {
      let line = text.slice(start, match.index);
      if (tailChars > 0) {
        line = tailPieces.join('') + line;
        tailPieces = [];
        tailChars = 0;
      }
      takeLine(line, events);
      start = match.index + match[0].length;
      if (match[0] === '\r' && start === text.length) skipLeadingLf = true;
    }
    const rest = text.slice(start);
    if (rest === '') return;
    tailPieces.push(rest);
    tailChars += rest.length;
    if (tailChars > SSE_EVENT_CHARS_MAX) throw tooLong();
  }

  return {
    push(bytes) {
      const events: SseEvent[] = [];
      takeText(utf8.decode(bytes, { stream: true }), events);
      return events;
    },
    end() {
      const events: SseEvent[] = [];
      takeText(utf8.decode(), events);
      // An unterminated last line may be a cut-off one, so it is dropped. A complete event that
      // merely lacks its closing blank line is still dispatched: some servers omit it at the end.
      tailPieces = [];
      tailChars = 0;
      takeLine('', events);
      return events;
    },
  };
}

function tooLong(): HostError {
  return new HostError('MODEL_FAILED', `model stream line or event exceeds ${SSE_EVENT_CHARS_MAX} characters (SSE_EVENT_CHARS_MAX)`);
}
