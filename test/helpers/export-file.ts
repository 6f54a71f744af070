/**
 * Opens and re-seals tenant export files the way an attacker holding the export key would: the
 * format (host/tenants/tenant-file.ts) re-implemented from its description — a clear JSON header
 * line, then frames of `u32 length ‖ AES-256-GCM(records) ‖ tag` under a key derived from the export
 * key and the header's salt, each frame's nonce and associated data binding its index, the header's
 * hash and whether it is the last. Records are `u32 length ‖ v8.serialize(record)`. Not a test file.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';

/** An export file opened: its header line (kept byte for byte) and every record of every frame. */
export interface OpenedExport {
  headerLine: Buffer;
  records: Record<string, unknown>[];
}

function keys(exportKey: Buffer, headerLine: Buffer): { key: Buffer; prefix: Buffer; headerHash: Buffer } {
  const header = JSON.parse(headerLine.toString('utf8')) as { salt: string; noncePrefix: string };
  return {
    key: Buffer.from(hkdfSync('sha256', exportKey, Buffer.from(header.salt, 'base64'), 'ctx-host/tenant-export', 32)),
    prefix: Buffer.from(header.noncePrefix, 'base64'),
    headerHash: createHash('sha256').update(headerLine).digest(),
  };
}

function nonceAndAad(prefix: Buffer, headerHash: Buffer, index: number, final: boolean): { nonce: Buffer; aad: Buffer } {
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0, 0, 8);
  nonce.writeUInt32BE(index, 8);
  const tail = Buffer.alloc(5);
  tail.writeUInt32BE(index, 0);
  tail.writeUInt8(final ? 1 : 0, 4);
  return { nonce, aad: Buffer.concat([headerHash, tail]) };
}

/** Decrypts every frame of `path`. */
export function openExport(path: string, exportKey: Buffer): OpenedExport {
  const bytes = readFileSync(path);
  const headerLine = bytes.subarray(0, bytes.indexOf(0x0a) + 1);
  const { key, prefix, headerHash } = keys(exportKey, headerLine);
  const records: Record<string, unknown>[] = [];
  let index = 0;
  for (let offset = headerLine.length; offset < bytes.length; index += 1) {
    const length = bytes.readUInt32BE(offset);
    const sealed = bytes.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    const { nonce, aad } = nonceAndAad(prefix, headerHash, index, offset >= bytes.length);
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
    for (let at = 0; at < plain.length; ) {
      const size = plain.readUInt32BE(at);
      records.push(deserialize(plain.subarray(at + 4, at + 4 + size)) as Record<string, unknown>);
      at += 4 + size;
    }
  }
  return { headerLine, records };
}

/** Seals `records` into `path` under the same header, one frame per group (all in one frame by default). */
export function sealExport(path: string, exportKey: Buffer, opened: OpenedExport, frames: Record<string, unknown>[][] = [opened.records]): void {
  const { key, prefix, headerHash } = keys(exportKey, opened.headerLine);
  const parts: Buffer[] = [opened.headerLine];
  frames.forEach((records, index) => {
    const plain = Buffer.concat(records.flatMap((record) => {
      const bytes = serialize(record);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return [length, bytes];
    }));
    const { nonce, aad } = nonceAndAad(prefix, headerHash, index, index === frames.length - 1);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(aad);
    const sealed = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(sealed.length);
    parts.push(length, sealed);
  });
  writeFileSync(path, Buffer.concat(parts));
}

/** The `entry` records of `table` (mutable: change them, then re-seal). */
export function entriesOf(opened: OpenedExport, table: string): { kind: 'entry'; table: string; key: string | number; value: any }[] {
  return opened.records.filter((record) => record['kind'] === 'entry' && record['table'] === table) as never;
}

/** Replaces the value of one entry (adding it when missing), keeping the end record's counts right. */
export function putEntry(opened: OpenedExport, table: string, key: string | number, value: unknown): void {
  const existing = entriesOf(opened, table).find((entry) => entry.key === key);
  if (existing !== undefined) {
    existing.value = value;
    return;
  }
  const end = opened.records.pop() as { kind: 'end'; counts: Record<string, number> };
  opened.records.push({ kind: 'entry', table, key, value });
  end.counts[table] = (end.counts[table] ?? 0) + 1;
  opened.records.push(end);
}

/** Removes one entry, keeping the end record's counts right. */
export function removeEntry(opened: OpenedExport, table: string, key: string | number): void {
  const at = opened.records.findIndex((record) => record['kind'] === 'entry' && record['table'] === table && record['key'] === key);
  if (at < 0) throw new Error(`no entry ${table}/${String(key)} in the export`);
  opened.records.splice(at, 1);
  const end = opened.records.at(-1) as { kind: 'end'; counts: Record<string, number> };
  end.counts[table] = (end.counts[table] ?? 1) - 1;
}
