/**
 * The msgpack adapter: the only file that imports `msgpackr`. Binary WebSocket frames are msgpack;
 * text frames carry the same shapes as JSON, for debugging.
 */
import { Packr } from 'msgpackr';

// Plain maps in, plain objects out; no records extension, so any msgpack client can talk to us.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/** Encodes a host → client frame as msgpack. */
export function encodeMsgpack(value: unknown): Uint8Array {
  return packr.pack(value);
}

/**
 * Decodes one msgpack value.
 * @throws {Error} when the bytes are not exactly one valid msgpack value.
 */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
