/**
 * Vetting of an uploaded plugin: every check a module must pass before the host stores it, in the
 * order that gives the most useful refusal, then the rewrite that compiles its limits in (fuel,
 * memory cap; metering.ts). Each refusal is PLUGIN_INVALID naming exactly what was wrong; the
 * report lists what the module imports and exports and which limits now apply to it.
 */
import { createHash } from 'node:crypto';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import { MeteringRefusal, RESERVED_EXPORT_PREFIX } from './metering.ts';
import type { MeteringService } from './metering-service.ts';
import { forbiddenImports, HOST_NAMESPACE, SLOT_EXPORTS } from './module-cache.ts';
import type { PluginSlot } from './slots.ts';

/** Import modules of the WASI preview 1 ABI: refused as a group, with the imports listed. */
const WASI_MODULES = new Set(['wasi_snapshot_preview1', 'wasi_unstable']);

/** What the host tells the uploader about an accepted plugin. */
export interface VettingReport {
  slot: PluginSlot;
  /** SHA-256 of the upload as sent. */
  sha256: string;
  bytes: number;
  imports: { module: string; name: string; kind: string }[];
  exports: { name: string; kind: string }[];
  /** SHA-256 and size of the module as stored and run (metered, memory capped). */
  module: { sha256: string; bytes: number };
  memory: { initialPages: number; declaredMaxPages: number | null; maxPages: number };
  metering: { functions: number; loops: number; dynamic: number; startFunction: boolean };
  /** The per-call limits every instance of it runs under. */
  limits: {
    fuelPerCallDefault: number;
    fuelPerCallMax: number;
    memoryBytesMax: number;
    outputBytesMax: number;
    hostCallsPerCallMax: number;
    hostBytesPerCallMax: number;
    wallMsMax: number;
  };
}

/** An accepted plugin: the report and the bytes to store. */
export interface VettedPlugin {
  report: VettingReport;
  /** The metered module (what the plugin store keeps and sessions run). */
  module: Uint8Array;
}

function invalid(message: string): HostError {
  return new HostError('PLUGIN_INVALID', message);
}

/**
 * Vets `bytes` as a plugin for `slot` and meters it (in the metering worker's turn of `tenantId`).
 *
 * @example
 * ```ts
 * const { report, module } = await vetPlugin(upload, 'retrieval', metering);
 * ```
 * @throws {HostError} PLUGIN_INVALID naming the refused property; PLUGIN_BUSY when the metering
 *   queue (or the tenant's share of it) is full.
 */
export async function vetPlugin(bytes: Uint8Array, slot: PluginSlot, metering: MeteringService, tenantId?: string): Promise<VettedPlugin> {
  if (bytes.byteLength > LIMITS.pluginUploadBytesMax) {
    throw invalid(`the module is ${bytes.byteLength} bytes, over the limit of ${LIMITS.pluginUploadBytesMax}`);
  }
  let compiled: WebAssembly.Module;
  try {
    // Compiled asynchronously: V8 does it off the event loop.
    compiled = await WebAssembly.compile(bytes);
  } catch (error: unknown) {
    throw invalid(`the body is not a valid WebAssembly module: ${error instanceof Error ? error.message : String(error)}`);
  }
  const imports = WebAssembly.Module.imports(compiled).map(({ module, name, kind }) => ({ module, name, kind }));
  const exports = WebAssembly.Module.exports(compiled).map(({ name, kind }) => ({ name, kind }));
  checkImports(compiled, imports);
  checkExports(exports, slot);
  let metered;
  try {
    metered = await metering.meter(bytes, tenantId === undefined ? {} : { tenantId });
  } catch (error: unknown) {
    if (error instanceof MeteringRefusal) throw invalid(error.message);
    throw error;
  }
  const report: VettingReport = {
    slot,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    bytes: bytes.byteLength,
    imports,
    exports,
    module: { sha256: createHash('sha256').update(metered.bytes).digest('hex'), bytes: metered.bytes.byteLength },
    memory: metered.memory,
    metering: { ...metered.sites, startFunction: metered.hadStart },
    limits: {
      fuelPerCallDefault: LIMITS.pluginFuelPerCallDefault,
      fuelPerCallMax: LIMITS.pluginFuelPerCallMax,
      memoryBytesMax: metered.memory.maxPages * 64 * 1024,
      outputBytesMax: LIMITS.pluginOutputBytesMax,
      hostCallsPerCallMax: LIMITS.hostCallsPerPluginCallMax,
      hostBytesPerCallMax: LIMITS.extismHostPagesMax * 64 * 1024,
      wallMsMax: LIMITS.pluginCallWallMsMax,
    },
  };
  return { report, module: metered.bytes };
}

function checkImports(compiled: WebAssembly.Module, imports: VettingReport['imports']): void {
  const wasi = imports.filter((entry) => WASI_MODULES.has(entry.module)).map((entry) => `${entry.module}.${entry.name}`);
  if (wasi.length > 0) {
    throw invalid(`WASI is not available to plugins (no filesystem, environment, clock or network); the module imports ${wasi.join(', ')}`);
  }
  const refused = forbiddenImports(compiled);
  if (refused.length > 0) {
    throw invalid(`the module imports ${refused.join(', ')}; plugins may import only functions of extism:host/env (no HTTP) and ${HOST_NAMESPACE}`);
  }
}

function checkExports(exports: VettingReport['exports'], slot: PluginSlot): void {
  const name = SLOT_EXPORTS[slot];
  if (!exports.some((entry) => entry.name === name && entry.kind === 'function')) {
    throw invalid(`a ${slot} plugin must export a function "${name}"; this one does not`);
  }
  if (!exports.some((entry) => entry.kind === 'memory')) throw invalid('the module exports no memory; Extism plugins export their memory');
  const reserved = exports.find((entry) => entry.name.startsWith(RESERVED_EXPORT_PREFIX));
  if (reserved !== undefined) throw invalid(`the export "${reserved.name}" uses the prefix ${RESERVED_EXPORT_PREFIX}, which the host reserves`);
}
