/**
 * Key material: the operator's master key, per-tenant data keys wrapped by it, and salted hashes of
 * API keys. Secrets never leave this module in plaintext except where a caller needs them once
 * (an API key printed at creation, a tenant data key handed to the LMDB adapter).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { HostError } from '../errors.ts';

/** The operator's 32-byte master key. Opaque outside this module. */
export interface MasterKey {
  readonly bytes: Buffer;
  /** Where it came from, for start-up messages ("CTX_MASTER_KEY" or the key file path). */
  readonly source: string;
}

/** A tenant data key wrapped (AES-256-GCM) by the master key, as stored in the registry. */
export interface WrappedKey {
  iv: Uint8Array;
  tag: Uint8Array;
  sealed: Uint8Array;
}

const MASTER_KEY_BYTES = 32;

/**
 * Parses a master key given as 64 hex characters or base64/base64url of 32 bytes.
 * @throws {HostError} STORAGE_MASTER_KEY naming the observed length when it does not decode to 32 bytes.
 */
export function parseMasterKey(text: string, source: string): MasterKey {
  const trimmed = text.trim();
  let bytes: Buffer;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) bytes = Buffer.from(trimmed, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) bytes = Buffer.from(trimmed, 'base64');
  else {
    throw new HostError(
      'STORAGE_MASTER_KEY',
      `${source}: master key must be 64 hex characters or base64 of 32 bytes (got ${trimmed.length} characters)`,
    );
  }
  if (bytes.length !== MASTER_KEY_BYTES) {
    throw new HostError('STORAGE_MASTER_KEY', `${source}: master key decodes to ${bytes.length} bytes, expected 32`);
  }
  return { bytes, source };
}

/**
 * Loads the master key from `CTX_MASTER_KEY` when given, else from `keyFile`, creating that file
 * (mode 0600) with a fresh random key when it does not exist yet.
 * @throws {HostError} STORAGE_MASTER_KEY when the key is malformed or the file is readable by others.
 */
export function loadMasterKey(options: { fromEnv: string | undefined; keyFile: string }): { key: MasterKey; created: boolean } {
  if (options.fromEnv !== undefined && options.fromEnv !== '') {
    return { key: parseMasterKey(options.fromEnv, 'CTX_MASTER_KEY'), created: false };
  }
  if (existsSync(options.keyFile)) {
    return { key: parseMasterKey(readFileSync(options.keyFile, 'utf8'), options.keyFile), created: false };
  }
  mkdirSync(dirname(options.keyFile), { recursive: true });
  const bytes = randomBytes(MASTER_KEY_BYTES);
  writeFileSync(options.keyFile, bytes.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(options.keyFile, 0o600);
  return { key: { bytes, source: options.keyFile }, created: true };
}

/** Derives a purpose-bound subkey so one master key never encrypts two kinds of thing. */
export function deriveKey(master: MasterKey, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master.bytes, Buffer.alloc(0), `ctx-host/${purpose}`, 32));
}

/** A fingerprint of the master key that can be stored to recognise a wrong key at start. */
export function masterKeyCheck(master: MasterKey): string {
  return createHmac('sha256', deriveKey(master, 'check')).update('master-key-check').digest('hex');
}

/** Returns a fresh tenant data key as lmdb-js wants it: a 32-character string (192 random bits). */
export function newTenantDataKey(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * The wrapping key of a master key, derived once per MasterKey object: a master key rotation wraps
 * and unwraps every tenant's key, and deriving it each time was a third of that work.
 */
const wrapKeys = new WeakMap<MasterKey, Buffer>();
function wrapKeyOf(master: MasterKey): Buffer {
  let key = wrapKeys.get(master);
  if (key === undefined) {
    key = deriveKey(master, 'wrap');
    wrapKeys.set(master, key);
  }
  return key;
}

/** Wraps a tenant data key with the master key (AES-256-GCM, the tenant id as associated data). */
export function wrapTenantKey(master: MasterKey, tenantId: string, dataKey: string): WrappedKey {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', wrapKeyOf(master), iv);
  cipher.setAAD(Buffer.from(tenantId));
  const sealed = Buffer.concat([cipher.update(dataKey, 'utf8'), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), sealed };
}

/**
 * Unwraps a tenant data key.
 * @throws {HostError} STORAGE_MASTER_KEY when the master key (or the tenant id) does not match.
 */
export function unwrapTenantKey(master: MasterKey, tenantId: string, wrapped: WrappedKey): string {
  try {
    const decipher = createDecipheriv('aes-256-gcm', wrapKeyOf(master), Buffer.from(wrapped.iv));
    decipher.setAAD(Buffer.from(tenantId));
    decipher.setAuthTag(Buffer.from(wrapped.tag));
    return Buffer.concat([decipher.update(Buffer.from(wrapped.sealed)), decipher.final()]).toString('utf8');
  } catch {
    throw new HostError('STORAGE_MASTER_KEY', `the master key does not unwrap the data key of tenant ${tenantId}`);
  }
}

/** A salted hash of a secret, as stored. */
export interface SecretHash {
  salt: Uint8Array;
  hash: Uint8Array;
}

/**
 * Hashes a high-entropy secret (an API key's secret part) with a per-key salt. API keys carry 256
 * random bits, so a fast keyed hash is enough: brute force is out of reach without stretching.
 */
export function hashSecret(secret: string, salt: Uint8Array = randomBytes(16)): SecretHash {
  return { salt, hash: createHmac('sha256', salt).update(secret, 'utf8').digest() };
}

/** Compares a presented secret with a stored hash in constant time. */
export function verifySecret(secret: string, stored: SecretHash): boolean {
  const candidate = createHmac('sha256', stored.salt).update(secret, 'utf8').digest();
  return candidate.length === stored.hash.length && timingSafeEqual(candidate, Buffer.from(stored.hash));
}

/** Random url-safe token of `bytes` random bytes. */
export function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** `bytes` random bytes as lower-case hex. */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** SHA-256 hex digest. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Where a master key rotation writes the new key before the registry swap: beside the key file. */
export function pendingKeyFile(keyFile: string): string {
  return `${keyFile}.next`;
}

/**
 * The new master key a rotation left beside the key file, if a crash cut it short after writing it.
 * @throws {HostError} STORAGE_MASTER_KEY when that file is malformed.
 */
export function loadPendingMasterKey(keyFile: string): MasterKey | undefined {
  const pending = pendingKeyFile(keyFile);
  return existsSync(pending) ? parseMasterKey(readFileSync(pending, 'utf8'), pending) : undefined;
}

/**
 * After the registry opened: when the pending key opened it, it becomes the key file (the rotation's
 * last step); otherwise a pending key is a leftover of a rotation that never swapped, and goes.
 */
export function settleMasterKeyFile(keyFile: string, opened: MasterKey): void {
  const pending = pendingKeyFile(keyFile);
  if (!existsSync(pending)) return;
  if (opened.source === pending) renameSync(pending, keyFile);
  else rmSync(pending, { force: true });
}
