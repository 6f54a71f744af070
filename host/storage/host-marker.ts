/**
 * A marker file (`DATA_DIR/host.pid`) saying a host process has this data directory open. The CLI's
 * offline-only commands (master key rotation swaps the registry directory under whoever has it
 * open) refuse while it names a live process. A crashed host leaves a stale marker naming a dead
 * process, which counts as not running.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MARKER = 'host.pid';

/** Marks the data directory as held by this process. @returns a function that removes the marker. */
export function markHostRunning(dataDir: string): () => void {
  const path = join(dataDir, MARKER);
  writeFileSync(path, `${process.pid}\n`, { mode: 0o600 });
  return () => {
    if (existsSync(path) && readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path, { force: true });
  };
}

/** The pid of a live host process holding the data directory, if any (never this process). */
export function runningHostPid(dataDir: string): number | undefined {
  const path = join(dataDir, MARKER);
  if (!existsSync(path)) return undefined;
  const pid = Number(readFileSync(path, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else; it is still running.
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}
