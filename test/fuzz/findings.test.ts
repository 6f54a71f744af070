/**
 * Regression tests for what the fuzz targets found, one per finding, each with the smallest input
 * that shows it.
 *
 * A finding that cannot be fixed at once gets a skipped test named `FINDING <id>` here and an entry
 * in test/fuzz/known-findings.ts (the targets then count it instead of failing); when the fix lands,
 * the test is un-skipped as a regression test and the entry removed. None is open now.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { encodeMsgpack } from '../../host/transport/codec.ts';
import { parseClientFrame } from '../../host/transport/frames.ts';
import { operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { importTenantFile, newExportKey } from '../../host/tenants/tenant-file.ts';
import { createMeteringService } from '../../host/sandbox/metering-service.ts';

const metering = createMeteringService();
import { openTestAuthority } from '../helpers/authority.ts';
import { KNOWN_FINDINGS } from './known-findings.ts';

function refusal(run: () => unknown): unknown {
  try {
    run();
  } catch (error: unknown) {
    return error;
  }
  return undefined;
}

async function rejection(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (error: unknown) {
    return error;
  }
  return undefined;
}

test('every known finding has its FINDING test in this file', async () => {
  const source = await import('node:fs').then((fs) => fs.readFileSync(new URL(import.meta.url), 'utf8'));
  for (const finding of KNOWN_FINDINGS) assert.ok(source.includes(`FINDING ${finding.id}`), `no test names FINDING ${finding.id}`);
});

// Fixed finding frames-type-not-a-primitive (host/transport/frames.ts): an ask whose type could not
// be turned into a string threw a TypeError out of parseClientFrame; the chat handler answered
// INTERNAL and logged an unexpected error, for any client with a key or ticket.
test('fixed: a frame whose type is an object without a usable toString is PROTOCOL_BAD_FRAME', () => {
  const frames: [Uint8Array, boolean][] = [
    [new TextEncoder().encode('{"type":{"toString":1}}'), false],
    [encodeMsgpack({ type: { toString: 1, valueOf: 1 } }), true],
  ];
  for (const [data, isBinary] of frames) {
    const error = refusal(() => parseClientFrame(data, isBinary));
    assert.instance(error, HostError);
    assert.is((error as HostError).code, 'PROTOCOL_BAD_FRAME');
  }
});

// Fixed finding tenant-file-header-null (host/tenants/tenant-file.ts): the header line `null` is
// valid JSON, and parseHeader read `.format` of it.
test('fixed: an export whose header line is `null` is TENANT_EXPORT_INVALID', async () => {
  const target = openTestAuthority();
  const dir = mkdtempSync(join(tmpdir(), 'ctx-finding-'));
  try {
    const file = join(dir, 'null.ctx');
    writeFileSync(file, 'null\n');
    const error = await rejection(() => importTenantFile(target.authority, operatorFromLocalAccess(), file, Buffer.from(newExportKey(), 'hex'), metering));
    assert.instance(error, HostError);
    assert.is((error as HostError).code, 'TENANT_EXPORT_INVALID');
  } finally {
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// Fixed finding tenant-file-sealed-records-unchecked (host/tenants/tenant-file.ts): a file sealed with
// the right key whose first record is a tenant record without its control fields. The importer
// trusted authenticated records, so a TypeError escaped instead of TENANT_EXPORT_INVALID; it now
// checks every record (tenants/import-check.ts). The input is built with the fuzz target's sealer.
test('fixed: an authentic file with a malformed tenant record is TENANT_EXPORT_INVALID', async () => {
  const { sealedFile } = await import('./targets/tenant-file.ts');
  const key = Buffer.from(newExportKey(), 'hex');
  const target = openTestAuthority();
  const dir = mkdtempSync(join(tmpdir(), 'ctx-finding-'));
  try {
    const file = join(dir, 'sealed.ctx');
    writeFileSync(file, sealedFile(key, [[{ kind: 'tenant' }], [{ kind: 'end', counts: {} }]]));
    const error = await rejection(() => importTenantFile(target.authority, operatorFromLocalAccess(), file, key, metering));
    assert.instance(error, HostError);
    assert.is((error as HostError).code, 'TENANT_EXPORT_INVALID');
    assert.is(target.authority.registry.listTenants().length, 0, 'nothing was imported');
  } finally {
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
