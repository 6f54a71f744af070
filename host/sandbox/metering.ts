/**
 * Compiles the sandbox's CPU and memory limits INTO a plugin module: the binaryen adapter (the only
 * file that imports `binaryen`). Extism's foreground mode has no time limit and its `maxPages`
 * does not cap a plugin's own linear memory (host/DESIGN.md, "The sandbox: measured facts"), so the
 * module itself must stop:
 *
 * - **Fuel.** An exported i64 global `__ctx_fuel` is charged at every function entry and every loop
 *   header, and the charge traps (`unreachable`) once it goes below zero. Every backward jump in
 *   wasm targets a loop header and every call enters a function, so no execution can run forever
 *   without being charged. A site charges the static cost of the straight-line code it covers
 *   (the function body outside its loops, or one iteration of a loop body outside nested loops),
 *   so a tight loop pays one charge per iteration instead of one per instruction. Instructions
 *   whose work grows with an operand (`memory.fill/copy/init`, `memory.grow`, `table.grow`) also
 *   charge that operand before they run.
 * - **Start function.** It is moved out of the start section and exported as `__ctx_start`, so the
 *   host runs it after instantiation like any call: with fuel set, under the watchdog, and with a
 *   failure it can classify (a trap inside `WebAssembly.instantiate` cannot be told apart).
 * - **Memory.** The one memory's maximum is rewritten to at most the cap; `memory.grow` past it
 *   returns -1 (the wasm rule) and sets the exported flag `__ctx_grow_refused`, so the host can
 *   report PLUGIN_MEMORY_LIMIT when the plugin then traps. Tables get a maximum the same way.
 *
 * Fail closed: a module using a feature outside {@link ALLOWED_FEATURES}, or an expression kind the
 * walker does not know, is refused rather than passed through partly metered; so is a function
 * nested deeper than LIMITS.pluginExpressionDepthMax, which binaryen's recursive passes could not
 * handle.
 */
import assert from 'node:assert/strict';
import { LIMITS } from '../limits.ts';

/** The exported fuel counter (i64). The host refills it before each call and reads it after. */
export const FUEL_EXPORT = '__ctx_fuel';
/** Exported i32 flag: 1 when `memory.grow` was refused at the cap during the current call. */
export const GROW_REFUSED_EXPORT = '__ctx_grow_refused';
/** The former start function, exported so the host can run it as a metered call. */
export const START_EXPORT = '__ctx_start';
/** Export names a plugin may not use itself. */
export const RESERVED_EXPORT_PREFIX = '__ctx_';

/** Why a module cannot be metered; `message` names what was wrong. Vetting turns it into PLUGIN_INVALID. */
export class MeteringRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MeteringRefusal';
  }
}

/** What metering found and did, for the vetting report. */
export interface MeteringResult {
  /** The rewritten module. */
  bytes: Uint8Array;
  /** The memory's initial pages and its maximum before and after the rewrite (null = none declared). */
  memory: { initialPages: number; declaredMaxPages: number | null; maxPages: number };
  /** Charge sites inserted: function entries, loop headers and operand-sized instructions. */
  sites: { functions: number; loops: number; dynamic: number };
  /** Whether the module had a start function (now exported as {@link START_EXPORT}). */
  hadStart: boolean;
}

/** Options of {@link meterModule}. */
export interface MeteringOptions {
  /** The memory cap in 64 KiB pages (default LIMITS.pluginMemoryBytesMax / 64 KiB). */
  memoryPagesMax?: number;
}

/** Fuel per unit of work for operand-sized instructions (see the constants' use below). */
const BYTES_PER_FUEL_SHIFT = 4; // one unit per 16 bytes filled or copied
const FUEL_PER_PAGE = 4096; // growing a 64 KiB page costs as much as filling it
const PAGE_BYTES = 64 * 1024;

type BinaryenDeclared = typeof import('binaryen').default;
type BinaryenModule = InstanceType<BinaryenDeclared['Module']>;
type Getter = (expr: number) => number;
type Setter = (expr: number, value: number) => void;
/**
 * What binaryen.js has at run time beyond its type declarations: the per-kind expression wrappers
 * with their getters and setters, the table accessors, the operation constants and the
 * feature-taking `readBinary`.
 */
type Binaryen = BinaryenDeclared & {
  readBinary(bytes: Uint8Array, features: number): BinaryenModule;
  Loop: { getBody: Getter; setBody: Setter };
  Function: { setBody: Setter };
  MemoryFill: { getSize: Getter; setSize: Setter };
  MemoryCopy: { getSize: Getter; setSize: Setter };
  MemoryInit: { getSize: Getter; setSize: Setter };
  MemoryGrow: { getDelta: Getter; setDelta: Setter };
  TableGrow: { getDelta: Getter; setDelta: Setter };
  Table: { getInitial: Getter; hasMax(table: number): boolean; getMax: Getter; setMax: Setter };
} & Record<`${'Div' | 'Rem'}${'S' | 'U'}Int${32 | 64}` | `DivFloat${32 | 64}`, number>;

let loading: Promise<Binaryen> | undefined;

/**
 * binaryen, loaded on first use: importing it takes ~0.3 s and 100 MiB of address space, which a
 * host that never meters (a CLI command, say) should not pay.
 */
function loadBinaryen(): Promise<Binaryen> {
  loading ??= import('binaryen').then((imported) => imported.default as Binaryen);
  return loading;
}

/**
 * The wasm features a plugin may use. Left out on purpose: threads/atomics (a shared memory lets
 * `memory.atomic.wait` block the host thread), GC, strings and stack switching (allocations
 * outside linear memory, beyond the memory cap), exception handling, memory64 and multi-memory
 * (Extism expects one 32-bit memory). Rust's and Go's current wasm targets stay within this set.
 */
function allowedFeatures(binaryen: Binaryen): number {
  const f = binaryen.Features;
  return (
    f.MutableGlobals | f.NontrappingFPToInt | f.SIMD128 | f.BulkMemory | f.BulkMemoryOpt | f.SignExt | f.TailCall |
    f.ReferenceTypes | f.Multivalue | f.ExtendedConst | f.CallIndirectOverlong
  );
}

/**
 * Rewrites `bytes` into a metered, memory-capped module. The input must already be a valid module
 * whose imports were vetted (no imported memory, table or global).
 *
 * @example
 * ```ts
 * const { bytes: metered } = await meterModule(upload);
 * ```
 * @throws {MeteringRefusal} when the module uses a feature or construct that cannot be metered, has
 *   no single exported memory, needs more memory or table space than the caps allow, or nests its
 *   expressions deeper than LIMITS.pluginExpressionDepthMax.
 */
export async function meterModule(bytes: Uint8Array, options: MeteringOptions = {}): Promise<MeteringResult> {
  const memoryPagesMax = options.memoryPagesMax ?? LIMITS.pluginMemoryBytesMax / PAGE_BYTES;
  assert.ok(Number.isInteger(memoryPagesMax) && memoryPagesMax >= 1 && memoryPagesMax <= LIMITS.pluginMemoryBytesMax / PAGE_BYTES, `memoryPagesMax ${memoryPagesMax} is outside 1..${LIMITS.pluginMemoryBytesMax / PAGE_BYTES}`);
  const binaryen = await loadBinaryen();
  let module: BinaryenModule;
  try {
    module = binaryen.readBinary(bytes, allowedFeatures(binaryen));
  } catch (error: unknown) {
    if (isStackOverflow(error)) throw tooDeep('the module');
    // binaryen throws its own objects (with a message), not Errors.
    const reason = (error as { message?: unknown } | null)?.message ?? String(error);
    throw new MeteringRefusal(`the module uses a wasm feature plugins may not use (allowed: ${featureNames(binaryen).join(', ')}): ${String(reason)}`);
  }
  try {
    const memory = checkMemory(binaryen, module, memoryPagesMax);
    capTables(binaryen, module);
    const rewriter = new FuelRewriter(binaryen, module, memoryPagesMax);
    const hadStart = rewriter.exportStart();
    rewriter.instrumentAll();
    if (!module.validate()) throw new MeteringRefusal('the module does not validate after metering');
    const emitted = module.emitBinary();
    return {
      bytes: patchBinary(emitted, memoryPagesMax),
      memory: { ...memory, maxPages: Math.min(memory.declaredMaxPages ?? memoryPagesMax, memoryPagesMax) },
      sites: rewriter.sites,
      hadStart,
    };
  } catch (error: unknown) {
    // Defense in depth behind the depth limit: binaryen's validator and writer recurse per level.
    if (isStackOverflow(error)) throw tooDeep('the module');
    throw error;
  } finally {
    module.dispose();
  }
}

/** Whether `error` is V8's stack overflow (a RangeError, also when binaryen's own stack runs out). */
function isStackOverflow(error: unknown): boolean {
  return error instanceof RangeError && /call stack size/i.test(error.message);
}

/** The refusal of a module nested deeper than LIMITS.pluginExpressionDepthMax; `depth` when it was measured. */
function tooDeep(what: string, depth?: number): MeteringRefusal {
  const how = depth === undefined ? 'too deeply to be metered' : `${depth} levels deep`;
  return new MeteringRefusal(`${what} nests its expressions ${how}, over the limit of ${LIMITS.pluginExpressionDepthMax} (pluginExpressionDepthMax)`);
}

function featureNames(binaryen: Binaryen): string[] {
  const allowed = allowedFeatures(binaryen);
  return Object.entries(binaryen.Features)
    .filter(([name, bit]) => typeof bit === 'number' && bit !== 0 && name !== 'All' && (allowed & bit) === bit)
    .map(([name]) => name);
}

/** One memory, defined here, exported, not shared, and starting within the cap. */
function checkMemory(binaryen: Binaryen, module: BinaryenModule, memoryPagesMax: number): { initialPages: number; declaredMaxPages: number | null } {
  let info: ReturnType<BinaryenModule['getMemoryInfo']>;
  try {
    info = module.getMemoryInfo();
  } catch {
    throw new MeteringRefusal('the module defines no memory; a plugin must define and export one');
  }
  if (info.module !== '') throw new MeteringRefusal(`the memory is imported from "${info.module}" "${info.base}"; a plugin must define its own`);
  if (info.shared) throw new MeteringRefusal('the memory is shared; shared memories are refused (memory.atomic.wait could block the host)');
  if (info.initial > memoryPagesMax) {
    throw new MeteringRefusal(`the memory starts at ${info.initial} pages (${info.initial * 64} KiB), over the cap of ${memoryPagesMax} pages (${memoryPagesMax * 64} KiB)`);
  }
  let exported = false;
  for (let i = 0; i < module.getNumExports(); i += 1) {
    const entry = binaryen.getExportInfo(module.getExportByIndex(i));
    if (entry.kind === binaryen.ExternalMemory) exported = true;
    if (entry.name.startsWith(RESERVED_EXPORT_PREFIX)) throw new MeteringRefusal(`the export "${entry.name}" uses the prefix ${RESERVED_EXPORT_PREFIX}, which the host reserves`);
  }
  if (!exported) throw new MeteringRefusal('the memory is not exported; Extism plugins export their memory');
  return { initialPages: info.initial, declaredMaxPages: 'max' in info && typeof info.max === 'number' ? info.max : null };
}

/** Gives every table a maximum of at most LIMITS.pluginTableElementsMax (table.grow is charged too). */
function capTables(binaryen: Binaryen, module: BinaryenModule): void {
  const max = LIMITS.pluginTableElementsMax;
  for (let i = 0; i < module.getNumTables(); i += 1) {
    const table = module.getTableByIndex(i);
    const initial = binaryen.Table.getInitial(table);
    if (initial > max) throw new MeteringRefusal(`a table starts with ${initial} elements, over the cap of ${max}`);
    if (!binaryen.Table.hasMax(table) || binaryen.Table.getMax(table) > max) binaryen.Table.setMax(table, max);
  }
}

/**
 * The field names of each expression kind that hold child expressions. A kind missing here is
 * refused: metering must never skip a subtree it does not understand.
 */
function childFields(binaryen: Binaryen): Map<number, readonly string[]> {
  const b = binaryen;
  const entries: [number, readonly string[]][] = [
    [b.BlockId, ['children']], [b.IfId, ['condition', 'ifTrue', 'ifFalse']], [b.LoopId, ['body']],
    [b.BreakId, ['condition', 'value']], [b.SwitchId, ['condition', 'value']], [b.CallId, ['operands']],
    [b.CallIndirectId, ['target', 'operands']], [b.LocalGetId, []], [b.LocalSetId, ['value']], [b.GlobalGetId, []],
    [b.GlobalSetId, ['value']], [b.LoadId, ['ptr']], [b.StoreId, ['ptr', 'value']], [b.ConstId, []],
    [b.UnaryId, ['value']], [b.BinaryId, ['left', 'right']], [b.SelectId, ['ifTrue', 'ifFalse', 'condition']],
    [b.DropId, ['value']], [b.ReturnId, ['value']], [b.MemorySizeId, []], [b.MemoryGrowId, ['delta']], [b.NopId, []],
    [b.UnreachableId, []], [b.SIMDExtractId, ['vec']], [b.SIMDReplaceId, ['vec', 'value']], [b.SIMDShuffleId, ['left', 'right']],
    [b.SIMDTernaryId, ['a', 'b', 'c']], [b.SIMDShiftId, ['vec', 'shift']], [b.SIMDLoadId, ['ptr']],
    [b.SIMDLoadStoreLaneId, ['ptr', 'vec']], [b.MemoryInitId, ['dest', 'offset', 'size']], [b.DataDropId, []],
    [b.MemoryCopyId, ['dest', 'source', 'size']], [b.MemoryFillId, ['dest', 'value', 'size']], [b.RefNullId, []],
    [b.RefIsNullId, ['value']], [b.RefFuncId, []], [b.RefEqId, ['left', 'right']], [b.TableGetId, ['index']],
    [b.TableSetId, ['index', 'value']], [b.TableSizeId, []], [b.TableGrowId, ['value', 'delta']],
    [b.TupleMakeId, ['operands']], [b.TupleExtractId, ['tuple']],
  ];
  return new Map(entries);
}

/** Static cost of one expression node; calls and divisions cost more than an add. */
function nodeCost(binaryen: Binaryen, id: number, info: Record<string, unknown>): number {
  if (id === binaryen.CallId || id === binaryen.CallIndirectId) return 4;
  if (id === binaryen.BinaryId) {
    const op = info['op'];
    const b = binaryen;
    const slow = [b.DivSInt32, b.DivUInt32, b.RemSInt32, b.RemUInt32, b.DivSInt64, b.DivUInt64, b.RemSInt64, b.RemUInt64, b.DivFloat32, b.DivFloat64];
    if (slow.includes(op as number)) return 4;
  }
  return 1;
}

/** Inserts the fuel charges. One instance per module. */
class FuelRewriter {
  readonly sites = { functions: 0, loops: 0, dynamic: 0 };
  readonly #b: Binaryen;
  readonly #module: BinaryenModule;
  readonly #children: Map<number, readonly string[]>;
  readonly #fuel: string;
  readonly #growRefused: string;
  readonly #helpers: { bytes: string; pages: string; elements: string };
  readonly #memoryPagesMax: number;

  constructor(binaryen: Binaryen, module: BinaryenModule, memoryPagesMax: number) {
    this.#b = binaryen;
    this.#module = module;
    this.#children = childFields(binaryen);
    this.#memoryPagesMax = memoryPagesMax;
    this.#fuel = this.#uniqueName('global', '__ctx_fuel');
    this.#growRefused = this.#uniqueName('global', '__ctx_grow_refused');
    // The start function runs with this much fuel; the host sets the per-call budget before calls.
    module.addGlobal(this.#fuel, binaryen.i64, true, module.i64.const(BigInt(LIMITS.pluginFuelPerCallMax)));
    module.addGlobalExport(this.#fuel, FUEL_EXPORT);
    module.addGlobal(this.#growRefused, binaryen.i32, true, module.i32.const(0));
    module.addGlobalExport(this.#growRefused, GROW_REFUSED_EXPORT);
    this.#helpers = {
      bytes: this.#uniqueName('function', '__ctx_meter_bytes'),
      pages: this.#uniqueName('function', '__ctx_meter_pages'),
      elements: this.#uniqueName('function', '__ctx_meter_elements'),
    };
  }

  #uniqueName(kind: 'global' | 'function', base: string): string {
    const exists = (name: string) => (kind === 'global' ? this.#module.getGlobal(name) : this.#module.getFunction(name)) !== 0;
    let name = base;
    for (let n = 1; exists(name); n += 1) name = `${base}_${n}`;
    return name;
  }

  /** Exports the start function (if any) as START_EXPORT; the binary patch removes the start section. */
  exportStart(): boolean {
    const start = this.#module.getStart();
    if (start === 0) return false;
    this.#module.addFunctionExport(this.#b.getFunctionInfo(start).name, START_EXPORT);
    return true;
  }

  /** `fuel -= amount; if (fuel < 0) unreachable` — `amount` an i64 expression. */
  #charge(amount: number): number {
    const m = this.#module;
    return m.block(null, [
      m.global.set(this.#fuel, m.i64.sub(m.global.get(this.#fuel, this.#b.i64), amount)),
      m.if(m.i64.lt_s(m.global.get(this.#fuel, this.#b.i64), m.i64.const(BigInt(0))), m.unreachable()),
    ], this.#b.none);
  }

  #chargeConst(cost: number): number {
    return this.#charge(this.#module.i64.const(BigInt(cost)));
  }

  /** Instruments every defined function, then adds the helpers (which must not be instrumented). */
  instrumentAll(): void {
    const functions: { fn: number; index: number }[] = [];
    for (let i = 0; i < this.#module.getNumFunctions(); i += 1) {
      const fn = this.#module.getFunctionByIndex(i);
      if (this.#b.getFunctionInfo(fn).module === '') functions.push({ fn, index: i });
    }
    for (const { fn, index } of functions) this.#instrumentFunction(fn, index);
    this.#addHelpers();
  }

  /**
   * Walks one body iteratively (bodies can nest deeper than the JS stack), summing node costs into
   * regions: region 0 is the function outside loops, each loop body opens its own region. It also
   * measures how deep the body nests: binaryen's validator and writer recurse once per level, so a
   * body deeper than LIMITS.pluginExpressionDepthMax is refused here, before they run.
   */
  #instrumentFunction(fn: number, index: number): void {
    const b = this.#b;
    const body = b.getFunctionInfo(fn).body;
    const costs: number[] = [0];
    const loops: { loop: number; region: number }[] = [];
    const stack: [number, number, number][] = [[body, 0, 1]];
    while (stack.length > 0) {
      const [expr, region, depth] = stack.pop() as [number, number, number];
      if (depth > LIMITS.pluginExpressionDepthMax) throw tooDeep(`function ${index}`, this.#depthOf(body));
      const id = b.getExpressionId(expr);
      const fields = this.#children.get(id);
      if (fields === undefined) throw new MeteringRefusal(`the module uses an instruction the metering does not know (binaryen expression id ${id})`);
      // Leaf kinds (nop, unreachable, ref.null, ...) have no info wrapper in binaryen.js; they need none.
      const info = fields.length === 0 ? {} : (b.getExpressionInfo(expr) as unknown as Record<string, unknown>);
      costs[region] = (costs[region] ?? 0) + nodeCost(b, id, info);
      let childRegion = region;
      if (id === b.LoopId) {
        childRegion = costs.length;
        costs.push(0);
        loops.push({ loop: expr, region: childRegion });
      }
      for (const field of fields) {
        const value = info[field];
        for (const child of Array.isArray(value) ? (value as number[]) : [value as number]) {
          if (child !== 0) stack.push([child, childRegion, depth + 1]);
        }
      }
      this.#chargeOperand(id, expr);
    }
    for (const { loop, region } of loops) {
      const old = b.Loop.getBody(loop);
      b.Loop.setBody(loop, this.#module.block(null, [this.#chargeConst(costs[region] ?? 1), old], b.getExpressionType(old)));
      this.sites.loops += 1;
    }
    b.Function.setBody(fn, this.#module.block(null, [this.#chargeConst(costs[0] ?? 1), body], b.getExpressionType(body)));
    this.sites.functions += 1;
  }

  /** The depth of the deepest expression under `body` (1 for a leaf), walked without recursion. */
  #depthOf(body: number): number {
    const b = this.#b;
    let deepest = 0;
    const stack: [number, number][] = [[body, 1]];
    while (stack.length > 0) {
      const [expr, depth] = stack.pop() as [number, number];
      deepest = Math.max(deepest, depth);
      const fields = this.#children.get(b.getExpressionId(expr)) ?? [];
      const info = fields.length === 0 ? {} : (b.getExpressionInfo(expr) as unknown as Record<string, unknown>);
      for (const field of fields) {
        const value = info[field];
        for (const child of Array.isArray(value) ? (value as number[]) : [value as number]) if (child !== 0) stack.push([child, depth + 1]);
      }
    }
    return deepest;
  }

  /** Wraps the size operand of operand-sized instructions in a helper that charges it first. */
  #chargeOperand(id: number, expr: number): void {
    const b = this.#b;
    const m = this.#module;
    const wrap = (helper: string, operand: number) => m.call(helper, [operand], b.i32);
    if (id === b.MemoryFillId) b.MemoryFill.setSize(expr, wrap(this.#helpers.bytes, b.MemoryFill.getSize(expr)));
    else if (id === b.MemoryCopyId) b.MemoryCopy.setSize(expr, wrap(this.#helpers.bytes, b.MemoryCopy.getSize(expr)));
    else if (id === b.MemoryInitId) b.MemoryInit.setSize(expr, wrap(this.#helpers.bytes, b.MemoryInit.getSize(expr)));
    else if (id === b.MemoryGrowId) b.MemoryGrow.setDelta(expr, wrap(this.#helpers.pages, b.MemoryGrow.getDelta(expr)));
    else if (id === b.TableGrowId) b.TableGrow.setDelta(expr, wrap(this.#helpers.elements, b.TableGrow.getDelta(expr)));
    else return;
    this.sites.dynamic += 1;
  }

  #addHelpers(): void {
    const b = this.#b;
    const m = this.#module;
    const n = () => m.local.get(0, b.i32);
    const unsigned = () => m.i64.extend_u(n());
    m.addFunction(this.#helpers.bytes, b.i32, b.i32, [], m.block(null, [this.#charge(m.i64.shr_u(unsigned(), m.i64.const(BigInt(BYTES_PER_FUEL_SHIFT)))), n()], b.i32));
    m.addFunction(this.#helpers.elements, b.i32, b.i32, [], m.block(null, [this.#charge(unsigned()), n()], b.i32));
    // Growing past the cap returns -1 by the wasm rules; the flag lets the host name the cause
    // when the plugin then traps (an allocator's "out of memory" abort).
    const overCap = m.i64.gt_u(m.i64.add(m.i64.extend_u(m.memory.size()), unsigned()), m.i64.const(BigInt(this.#memoryPagesMax)));
    m.addFunction(this.#helpers.pages, b.i32, b.i32, [], m.block(null, [
      this.#charge(m.i64.mul(unsigned(), m.i64.const(BigInt(FUEL_PER_PAGE)))),
      m.if(overCap, m.global.set(this.#growRefused, m.i32.const(1))),
      n(),
    ], b.i32));
  }
}

/**
 * Post-processing on the binary, where it is simplest: drops the start section (the start
 * function is exported instead) and rewrites the memory's limits to `initial..min(max, cap)`.
 */
function patchBinary(bytes: Uint8Array, memoryPagesMax: number): Uint8Array {
  const out: number[] = Array.from(bytes.subarray(0, 8));
  let at = 8;
  while (at < bytes.length) {
    const id = bytes[at] as number;
    const [size, sizeBytes] = readLeb(bytes, at + 1);
    const start = at + 1 + sizeBytes;
    const content = bytes.subarray(start, start + size);
    at = start + size;
    if (id === 8) continue; // start section
    const patched = id === 5 ? patchMemorySection(content, memoryPagesMax) : content;
    out.push(id, ...writeLeb(patched.length));
    for (const byte of patched) out.push(byte);
  }
  return Uint8Array.from(out);
}

function patchMemorySection(content: Uint8Array, memoryPagesMax: number): Uint8Array {
  const [count, countBytes] = readLeb(content, 0);
  assert.ok(count === 1, `metering checked for exactly one memory, the binary has ${count}`);
  const flags = content[countBytes] as number;
  assert.ok(flags === 0 || flags === 1, `metering refused shared and 64-bit memories, the binary has limits flags ${flags}`);
  const [initial, initialBytes] = readLeb(content, countBytes + 1);
  let max = memoryPagesMax;
  if (flags === 1) max = Math.min(readLeb(content, countBytes + 1 + initialBytes)[0], memoryPagesMax);
  return Uint8Array.from([...writeLeb(1), 1, ...writeLeb(initial), ...writeLeb(max)]);
}

/** Reads an unsigned LEB128 (u32) at `at`; returns the value and its length in bytes. */
function readLeb(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  let length = 0;
  for (;;) {
    const byte = bytes[at + length];
    assert.ok(byte !== undefined && length < 5, 'a LEB128 in binaryen output runs past its section');
    value += (byte & 0x7f) * 2 ** shift;
    length += 1;
    if ((byte & 0x80) === 0) return [value, length];
    shift += 7;
  }
}

function writeLeb(value: number): number[] {
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
