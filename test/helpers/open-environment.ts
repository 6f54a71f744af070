/**
 * Run as a child process: tries to open the LMDB environment at argv[2] with the 32-character key
 * in argv[3] and read the tenant store's check value and its documents. Prints
 * `{"check": ..., "documents": [...]}` and exits 0 when it can; any other outcome (an error, garbage,
 * or LMDB aborting the process on pages it cannot decrypt) is a failure to read. A child, because a
 * wrong key can make LMDB abort natively, which must not take the test runner with it.
 */
import { openKvEnvironment } from '../../host/storage/lmdb.ts';

const [path, key] = process.argv.slice(2);
const env = openKvEnvironment({ path: path as string, encryptionKey: key as string });
const check = env.table<unknown>('meta', 'structured').get('check');
const documents = [...env.table<unknown>('documents', 'structured').entries()].map((entry) => entry.key);
process.stdout.write(JSON.stringify({ check, documents }));
await env.close();
