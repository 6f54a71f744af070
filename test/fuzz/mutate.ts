/**
 * Byte-level mutations for the fuzz targets: a valid input (an ABI message, an export file, a wasm
 * module) changed in a few places — a bit flipped, a byte set, bytes inserted, deleted, duplicated,
 * or the tail cut off — is the input most likely to get past a decoder's first checks and reach the
 * code behind them. Positions are taken modulo the length, so every generated value applies.
 */
import fc from 'fast-check';

/** One edit of a byte string. */
export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'duplicate'; at: number; count: number }
  | { kind: 'truncate'; at: number };

/** Any one {@link Mutation}. */
export const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(0, 1, 0x7f, 0x80, 0xff), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

/** Applies `mutations` in order to a copy of `base`. */
export function applyMutations(base: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes: Uint8Array = Uint8Array.from(base);
  for (const mutation of mutations) bytes = applyOne(bytes, mutation);
  return bytes;
}

function applyOne(bytes: Uint8Array, mutation: Mutation): Uint8Array {
  const length = bytes.byteLength;
  const at = length === 0 ? 0 : mutation.at % length;
  switch (mutation.kind) {
    case 'flip': {
      if (length === 0) return bytes;
      const copy = Uint8Array.from(bytes);
      copy[at] = (copy[at] ?? 0) ^ (1 << mutation.bit);
      return copy;
    }
    case 'set': {
      if (length === 0) return bytes;
      const copy = Uint8Array.from(bytes);
      copy[at] = mutation.value;
      return copy;
    }
    case 'insert':
      return concat(bytes.subarray(0, at), mutation.bytes, bytes.subarray(at));
    case 'delete':
      return concat(bytes.subarray(0, at), bytes.subarray(at + mutation.count));
    case 'duplicate':
      return concat(bytes.subarray(0, at + mutation.count), bytes.subarray(at));
    case 'truncate':
      return bytes.slice(0, at);
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** `base` changed by one to `maxMutations` mutations. */
export function mutatedFrom(base: Uint8Array, maxMutations = 4): fc.Arbitrary<Uint8Array> {
  return fc.array(mutationArbitrary, { minLength: 1, maxLength: maxMutations }).map((mutations) => applyMutations(base, mutations));
}

/** Whether two byte strings are equal. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
