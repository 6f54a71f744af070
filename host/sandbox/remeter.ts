/**
 * Modules that come back from outside the host — a tenant export being imported — are not trusted
 * to be what this host's metering made of an upload: anyone with the export key can put any bytes
 * there. They are vetted and metered again, like an upload. A module this host did meter still
 * carries that metering's exports (`__ctx_fuel`, `__ctx_grow_refused`, `__ctx_start`), which vetting
 * refuses as reserved; {@link unwrapHostMetering} takes them off first, so the module can go through
 * vetting and metering like any upload.
 *
 * The old charges stay in the code (removing them would mean rewriting every function): their
 * counter is no longer exported, so the host never refills it, and it starts at the largest i64
 * instead, so it cannot run out in any instance's lifetime. Only the new metering's counter limits
 * the module. Nothing here needs to be right for the host to be safe — the metering that follows
 * charges the whole module whatever this left in it — only for an honest module to keep working.
 */
import { FUEL_EXPORT, GROW_REFUSED_EXPORT, START_EXPORT } from './metering.ts';

/** Thrown inside this module when the bytes are not the shape it expects; the module then goes on unchanged. */
class NotHostMetered extends Error {}

const SECTION_IMPORT = 2;
const SECTION_GLOBAL = 6;
const SECTION_EXPORT = 7;
const SECTION_START = 8;
const KIND_FUNCTION = 0;
const KIND_GLOBAL = 3;
const I64 = 0x7e;
const I64_CONST = 0x42;
const END = 0x0b;
const I64_MAX = (1n << 63n) - 1n;

/** A cursor over a byte range that refuses to read past it. */
class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public at: number,
    readonly end: number,
  ) {}

  byte(): number {
    if (this.at >= this.end) throw new NotHostMetered('runs past its section');
    return this.bytes[this.at++] as number;
  }

  u32(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.byte();
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw new NotHostMetered('a LEB128 is too long');
  }

  /** Skips a signed LEB128 of any width. */
  skipSigned(): void {
    for (let i = 0; i < 10; i += 1) if ((this.byte() & 0x80) === 0) return;
    throw new NotHostMetered('a LEB128 is too long');
  }

  skip(count: number): void {
    if (this.at + count > this.end) throw new NotHostMetered('runs past its section');
    this.at += count;
  }

  name(): string {
    const length = this.u32();
    const start = this.at;
    this.skip(length);
    return new TextDecoder().decode(this.bytes.subarray(start, this.at));
  }
}

interface Section {
  id: number;
  start: number;
  end: number;
}

interface Export {
  name: string;
  kind: number;
  index: number;
  start: number;
  end: number;
}

/**
 * The module with this host's metering exports taken off (see the module comment): the fuel
 * counter's export removed and its start value set to the largest i64, the grow flag's export
 * removed, and the exported start function made the start function again. Bytes that do not carry
 * those exports in the shape this host writes them come back unchanged, for vetting to judge.
 * @throws never: bytes it cannot read come back unchanged.
 */
export function unwrapHostMetering(bytes: Uint8Array): Uint8Array {
  try {
    return unwrap(bytes);
  } catch (error: unknown) {
    if (error instanceof NotHostMetered) return bytes;
    throw error;
  }
}

function unwrap(bytes: Uint8Array): Uint8Array {
  const sections = readSections(bytes);
  const exportSection = sections.find((section) => section.id === SECTION_EXPORT);
  if (exportSection === undefined) return bytes;
  const exports = readExports(bytes, exportSection);
  const fuel = exports.find((entry) => entry.name === FUEL_EXPORT);
  const grow = exports.find((entry) => entry.name === GROW_REFUSED_EXPORT);
  const start = exports.find((entry) => entry.name === START_EXPORT);
  if (fuel === undefined && grow === undefined && start === undefined) return bytes;
  if (fuel === undefined || fuel.kind !== KIND_GLOBAL || grow?.kind !== KIND_GLOBAL) throw new NotHostMetered('not the exports metering writes');
  if (start !== undefined && (start.kind !== KIND_FUNCTION || sections.some((section) => section.id === SECTION_START))) throw new NotHostMetered('two start functions');
  const globalSection = sections.find((section) => section.id === SECTION_GLOBAL);
  if (globalSection === undefined) throw new NotHostMetered('no global section');
  checkFunctionImportsOnly(bytes, sections);
  const replaced = new Map<number, Uint8Array>([
    [SECTION_EXPORT, exportContent(bytes, exports.filter((entry) => entry !== fuel && entry !== grow && entry !== start))],
    [SECTION_GLOBAL, globalContent(bytes, globalSection, fuel.index)],
  ]);
  const out: number[] = Array.from(bytes.subarray(0, 8));
  for (const section of sections) {
    const content = replaced.get(section.id) ?? bytes.subarray(section.start, section.end);
    out.push(section.id, ...writeU32(content.length), ...content);
    if (section.id === SECTION_EXPORT && start !== undefined) {
      const startContent = writeU32(start.index);
      out.push(SECTION_START, ...writeU32(startContent.length), ...startContent);
    }
  }
  return Uint8Array.from(out);
}

function readSections(bytes: Uint8Array): Section[] {
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  if (bytes.length < 8 || magic.some((byte, i) => bytes[i] !== byte)) throw new NotHostMetered('not a wasm module');
  const reader = new Reader(bytes, 8, bytes.length);
  const sections: Section[] = [];
  while (reader.at < bytes.length) {
    const id = reader.byte();
    const size = reader.u32();
    const start = reader.at;
    reader.skip(size);
    sections.push({ id, start, end: reader.at });
  }
  return sections;
}

function readExports(bytes: Uint8Array, section: Section): Export[] {
  const reader = new Reader(bytes, section.start, section.end);
  const count = reader.u32();
  const exports: Export[] = [];
  for (let i = 0; i < count; i += 1) {
    const start = reader.at;
    const name = reader.name();
    const kind = reader.byte();
    const index = reader.u32();
    exports.push({ name, kind, index, start, end: reader.at });
  }
  if (reader.at !== section.end) throw new NotHostMetered('trailing bytes in the export section');
  return exports;
}

function exportContent(bytes: Uint8Array, kept: Export[]): Uint8Array {
  const out = writeU32(kept.length);
  for (const entry of kept) out.push(...bytes.subarray(entry.start, entry.end));
  return Uint8Array.from(out);
}

/**
 * Imported globals would come first in the global index space; a module this host metered imports
 * functions only, so a global's index is its place in the global section.
 */
function checkFunctionImportsOnly(bytes: Uint8Array, sections: Section[]): void {
  const section = sections.find((candidate) => candidate.id === SECTION_IMPORT);
  if (section === undefined) return;
  const reader = new Reader(bytes, section.start, section.end);
  const count = reader.u32();
  for (let i = 0; i < count; i += 1) {
    reader.name();
    reader.name();
    const kind = reader.byte();
    if (kind !== KIND_FUNCTION) throw new NotHostMetered('imports something other than functions');
    reader.u32();
  }
}

/** The global section with global `index`'s start value set to the largest i64; it must be a mutable i64 starting at a constant. */
function globalContent(bytes: Uint8Array, section: Section, index: number): Uint8Array {
  const reader = new Reader(bytes, section.start, section.end);
  const count = reader.u32();
  if (index < 0 || index >= count) throw new NotHostMetered('the fuel export names no global of the module');
  const out = writeU32(count);
  for (let i = 0; i < count; i += 1) {
    const start = reader.at;
    const type = reader.byte();
    if (type === 0x63 || type === 0x64) reader.skipSigned();
    const mutable = reader.byte();
    const initStart = reader.at;
    skipConstExpression(reader);
    if (i !== index) {
      out.push(...bytes.subarray(start, reader.at));
      continue;
    }
    if (type !== I64 || mutable !== 1 || bytes[initStart] !== I64_CONST) throw new NotHostMetered('the fuel counter is not a mutable i64 starting at a constant');
    out.push(I64, 1, I64_CONST, ...writeI64(I64_MAX), END);
  }
  if (reader.at !== section.end) throw new NotHostMetered('trailing bytes in the global section');
  return Uint8Array.from(out);
}

/** Skips a constant expression up to and including its `end`, reading each instruction's immediates. */
function skipConstExpression(reader: Reader): void {
  for (;;) {
    const op = reader.byte();
    if (op === END) return;
    if (op === 0x41 || op === 0x42 || op === 0xd0) reader.skipSigned(); // i32.const, i64.const, ref.null
    else if (op === 0x43) reader.skip(4); // f32.const
    else if (op === 0x44) reader.skip(8); // f64.const
    else if (op === 0x23 || op === 0xd2) reader.u32(); // global.get, ref.func
    else if (op === 0xfd) {
      if (reader.u32() !== 12) throw new NotHostMetered('an instruction a constant expression cannot hold');
      reader.skip(16); // v128.const
    } else if (![0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e].includes(op)) throw new NotHostMetered('an instruction a constant expression cannot hold'); // extended-const add, sub, mul
  }
}

function writeU32(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  do {
    let byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
    if (rest !== 0) byte |= 0x80;
    out.push(byte);
  } while (rest !== 0);
  return out;
}

function writeI64(value: bigint): number[] {
  const out: number[] = [];
  let rest = value;
  for (;;) {
    const byte = Number(rest & 0x7fn);
    rest >>= 7n;
    const done = (rest === 0n && (byte & 0x40) === 0) || (rest === -1n && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}
