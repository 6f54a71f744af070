/**
 * The wire encoding of chat frames on the client side: msgpack for binary frames, JSON for text
 * frames (both carry the same shapes; host/DESIGN.md, "Wire protocol"). The one place the client imports
 * msgpackr, so the browser build bundles exactly this.
 */
import { Packr } from 'msgpackr';
import type { ClientFrame } from '../../host/protocol.ts';

// Plain maps, no msgpackr records: the host decodes with the same settings.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/**
 * Encodes a client frame as msgpack.
 *
 * @example
 * ```ts
 * socket.send(encodeFrame({ type: 'ping' }));
 * ```
 */
export function encodeFrame(frame: ClientFrame): Uint8Array {
  return packr.pack(frame);
}

/**
 * Decodes a host frame (an ArrayBuffer or bytes of msgpack, or a JSON string), or returns
 * `undefined` when it is not an object.
 *
 * @example
 * ```ts
 * const frame = decodeFrame(event.data);
 * if (frame?.['type'] === 'token') render(frame['text']);
 * ```
 */
export function decodeFrame(data: unknown): Record<string, unknown> | undefined {
  try {
    let value: unknown;
    if (typeof data === 'string') value = JSON.parse(data);
    else if (data instanceof ArrayBuffer) value = packr.unpack(new Uint8Array(data));
    else if (data instanceof Uint8Array) value = packr.unpack(data);
    else return undefined;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
