/**
 * The binary codec of ABI `ctx:host/v1`, plugin side (AssemblyScript).
 *
 * Every message is little-endian: u8, u32, f32; `str` = u32 byteLength + UTF-8 bytes;
 * `bytes` = u32 length + raw bytes. WebAssembly memory is little-endian too, so plain
 * `load<T>`/`store<T>` already produce the wire order.
 */

/** The smallest buffer a Writer starts with; doubling from 0 would never grow. */
const WRITER_CAPACITY_MIN: i32 = 16;

/**
 * Appends primitives to a growable buffer.
 *
 * @example
 * ```ts
 * const bytes = new Writer().str("hello").u32(3).finish();
 * ```
 */
export class Writer {
  private buffer: Uint8Array;
  private length: i32 = 0;

  constructor(capacity: i32 = 256) {
    this.buffer = new Uint8Array(max(capacity, WRITER_CAPACITY_MIN));
  }

  /** Reserves `extra` bytes and returns the address where they start. */
  private reserve(extra: i32): usize {
    const needed = this.length + extra;
    if (needed > this.buffer.length) {
      let capacity = this.buffer.length << 1;
      while (capacity < needed) capacity <<= 1;
      const grown = new Uint8Array(capacity);
      memory.copy(grown.dataStart, this.buffer.dataStart, <usize>this.length);
      this.buffer = grown;
    }
    const at = this.buffer.dataStart + <usize>this.length;
    this.length = needed;
    return at;
  }

  /** Appends one byte. */
  u8(value: u8): Writer {
    store<u8>(this.reserve(1), value);
    return this;
  }

  /** Appends a little-endian u32. */
  u32(value: u32): Writer {
    store<u32>(this.reserve(4), value);
    return this;
  }

  /** Appends a little-endian f32. */
  f32(value: f32): Writer {
    store<f32>(this.reserve(4), value);
    return this;
  }

  /** Appends bytes without a length prefix. */
  raw(value: Uint8Array): Writer {
    const at = this.reserve(value.length);
    memory.copy(at, value.dataStart, <usize>value.length);
    return this;
  }

  /** Appends `bytes`: a u32 length, then the bytes. */
  bytes(value: Uint8Array): Writer {
    this.u32(<u32>value.length);
    return this.raw(value);
  }

  /** Appends `str`: a u32 UTF-8 byte length, then the UTF-8 bytes. */
  str(value: string): Writer {
    const encoded = Uint8Array.wrap(String.UTF8.encode(value));
    this.u32(<u32>encoded.length);
    return this.raw(encoded);
  }

  /** Bytes written so far. */
  get byteLength(): i32 {
    return this.length;
  }

  /** A fresh array holding exactly what was written (offset 0, as the PDK's store requires). */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

/**
 * Reads primitives from a message, refusing to read past its end (a truncated message aborts
 * the plugin call with a message naming the position, never reads foreign memory).
 *
 * @example
 * ```ts
 * const reader = new Reader(bytes);
 * const query = reader.str();
 * const k = reader.u32();
 * ```
 */
export class Reader {
  private message: Uint8Array;
  private position: i32 = 0;

  constructor(message: Uint8Array) {
    this.message = message;
  }

  /** Bytes not read yet. */
  get remaining(): i32 {
    return this.message.length - this.position;
  }

  /** Consumes `size` bytes and returns the address where they start. */
  private take(size: i32): usize {
    if (size < 0 || size > this.remaining) {
      throw new Error("codec: message truncated at byte " + this.position.toString());
    }
    const at = this.message.dataStart + <usize>this.position;
    this.position += size;
    return at;
  }

  /** Reads one byte. */
  u8(): u8 {
    return load<u8>(this.take(1));
  }

  /** Reads a little-endian u32. */
  u32(): u32 {
    return load<u32>(this.take(4));
  }

  /** Reads a little-endian f32. */
  f32(): f32 {
    return load<f32>(this.take(4));
  }

  /** Reads `str`. */
  str(): string {
    const size = <i32>this.u32();
    const at = this.take(size);
    return String.UTF8.decodeUnsafe(at, <usize>size);
  }

  /** Reads `bytes` into a fresh array. */
  bytes(): Uint8Array {
    const size = <i32>this.u32();
    const at = this.take(size);
    const out = new Uint8Array(size);
    memory.copy(out.dataStart, at, <usize>size);
    return out;
  }

  /**
   * Reads an item count and checks that `count` items of at least `itemBytesMin` bytes each can
   * still follow, so a corrupt count cannot make the plugin allocate a huge array.
   */
  count(itemBytesMin: i32): i32 {
    const count = this.u32();
    if (<u64>count * <u64>itemBytesMin > <u64>this.remaining) {
      throw new Error("codec: count " + count.toString() + " exceeds the message at byte " + this.position.toString());
    }
    return <i32>count;
  }
}
