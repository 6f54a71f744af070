/**
 * Which status a plugin reads when a host function fails is the catalog's decision, not a guess from
 * a code's name: every code in host/errors.ts carries an explicit `abi` entry, the host functions
 * answer with exactly that status, and a code no host function should raise reads `internal` and
 * reaches the host's log. The SDK README lists the same mapping.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ERROR_CATALOG, HostError, type ErrorCode } from '../../host/errors.ts';
import { AbiWriter, HostStatus } from '../../host/sandbox/abi.ts';
import type { PluginCapabilities } from '../../host/sandbox/capabilities.ts';
import type { GuestMemory } from '../../host/sandbox/extism.ts';
import { createHostFunctions } from '../../host/sandbox/host-functions.ts';

const STATUS_NAMES = new Set(['badRequest', 'notFound', 'limit', 'internal']);

/** A guest memory holding one request block; the response block is kept for the test to read. */
function memoryWith(request: Uint8Array): GuestMemory & { response(): Uint8Array } {
  let stored: Uint8Array = new Uint8Array();
  return {
    readBlock: () => ({ ok: true, bytes: request }),
    storeBlock: (bytes) => {
      stored = bytes;
      return 1n;
    },
    response: () => stored,
  };
}

/** Calls kv_get on capabilities whose kvGet throws `error`; returns the status byte and what the host logged. */
function statusFor(error: unknown): { status: number; logged: unknown[] } {
  const logged: unknown[] = [];
  const capabilities = {
    kvGet: () => {
      throw error;
    },
  } as unknown as PluginCapabilities;
  const functions = createHostFunctions(capabilities, {
    budget: { calls: 0, failure: null, deadlineAt: Number.POSITIVE_INFINITY },
    hostCallsPerCallMax: 10,
    hostCallInputBytesMax: 1024,
    onInternalError: (_name, internal) => logged.push(internal),
  });
  const memory = memoryWith(new AbiWriter().str('key').finish());
  functions.kv_get(memory, 1n);
  return { status: memory.response()[0] as number, logged };
}

test('every catalog code names its plugin status explicitly (or none)', () => {
  for (const [code, spec] of Object.entries(ERROR_CATALOG)) {
    assert.ok('abi' in spec, `${code} has an abi entry`);
    const abi = (spec as { abi: unknown }).abi;
    assert.ok(abi === null || STATUS_NAMES.has(abi as string), `${code}: abi ${String(abi)} is a status name or null`);
  }
});

test('a host function answers each code with the status its catalog entry names', () => {
  for (const [code, spec] of Object.entries(ERROR_CATALOG) as [ErrorCode, { abi: keyof typeof HostStatus | null }][]) {
    const { status, logged } = statusFor(new HostError(code, `failed with ${code}`));
    const expected = spec.abi === null ? HostStatus.internal : HostStatus[spec.abi];
    assert.is(status, expected, `${code} → ${spec.abi ?? 'none (internal)'}`);
    assert.is(logged.length, spec.abi === null ? 1 : 0, `${code}: ${spec.abi === null ? 'a code no host function raises is logged' : 'not logged'}`);
  }
});

test('the codes a plugin can meet are the ones the catalog gives a status, e.g. a full kv quota reads limit', () => {
  assert.is(statusFor(new HostError('STORAGE_QUOTA', 'kv total over')).status, HostStatus.limit);
  // A remote embedder cannot embed during a call: the request cannot be served, now or on retry.
  assert.is(statusFor(new HostError('EMBED_FAILED', 'not in the embedding cache')).status, HostStatus.badRequest);
  // A name that merely looks like a not-found (HTTP_NOT_FOUND) is not one a host function can raise.
  assert.is(statusFor(new HostError('HTTP_NOT_FOUND', 'no route')).status, HostStatus.internal);
  assert.is(statusFor(new Error('disk on fire')).status, HostStatus.internal);
});

test('the SDK README lists every code that reaches a plugin, with its status', () => {
  const readme = readFileSync('sdk/README.md', 'utf8');
  const table = readme.slice(readme.indexOf('<!-- host-status-table:start -->'), readme.indexOf('<!-- host-status-table:end -->'));
  const rows = [...table.matchAll(/^\| `([A-Z_]+)` \| `([a-zA-Z]+)` \|$/gm)].map((match) => [match[1], match[2]]);
  const expected = Object.entries(ERROR_CATALOG).filter(([, spec]) => spec.abi !== null).map(([code, spec]) => [code, spec.abi]);
  assert.equal(rows, expected);
});

test.run();
