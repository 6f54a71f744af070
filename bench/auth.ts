/**
 * Key checks cost the same whatever the reason for refusal, so response time does not tell an
 * attacker whether a key id exists: malformed, unknown-id, wrong-secret and valid keys are timed
 * through the registry's `authenticate` in the same run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMasterKey } from '../host/storage/keys.ts';
import { Registry } from '../host/storage/registry.ts';
import { summarise, type LatencySummary } from './stats.ts';

/** p50/p99 of `authenticate` for each kind of presented key. */
export async function measureAuthTiming(rounds: number): Promise<Record<string, LatencySummary>> {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-bench-auth-'));
  const registry = Registry.open(dir, parseMasterKey('33'.repeat(32), 'bench'));
  try {
    const { apiKey } = registry.createTenant('timing');
    const kinds: Record<string, string> = {
      valid: apiKey,
      'wrong secret': `${apiKey.slice(0, -6)}AAAAAA`,
      'unknown key id': `ctx_0123456789abcdef_${apiKey.slice(-43)}`,
      malformed: 'not-a-key-at-all',
    };
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(kinds).map((kind) => [kind, []]));
    // Interleave the kinds so drift in machine load hits them alike.
    for (let i = 0; i < rounds + 200; i += 1) {
      for (const [kind, key] of Object.entries(kinds)) {
        const started = performance.now();
        registry.authenticate(key);
        if (i >= 200) samples[kind]?.push(performance.now() - started);
      }
    }
    return Object.fromEntries(Object.entries(samples).map(([kind, values]) => [kind, summarise(values)]));
  } finally {
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
