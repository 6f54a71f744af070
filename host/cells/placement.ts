/**
 * Which cell serves a tenant: rendezvous (highest random weight) hashing of the tenant id over the
 * cell slots, so that adding a slot moves only the tenants it now wins (about 1/N of them), plus
 * the supervisor's overrides (a tenant moved to the quarantine cell). A pure value: the supervisor
 * holds the current one and sends a copy to each cell, which uses it only to know its own tenants.
 */
import { createHash } from 'node:crypto';

/** The placement of tenants on cell slots `0 .. slots - 1`. */
export interface Placement {
  /** Regular cell slots. */
  readonly slots: number;
  /** Tenants placed elsewhere than their hash says (tenant id → slot; the quarantine slot is `slots`). */
  readonly overrides: ReadonlyMap<string, number>;
}

/** The slot `tenantId` hashes to among `slots` slots. */
export function rendezvousSlot(tenantId: string, slots: number): number {
  let best = 0;
  let bestWeight = -1n;
  for (let slot = 0; slot < slots; slot += 1) {
    const weight = createHash('sha256').update(`${slot}\u0000${tenantId}`).digest().readBigUInt64BE(0);
    if (weight > bestWeight) {
      best = slot;
      bestWeight = weight;
    }
  }
  return best;
}

/** The slot serving `tenantId` under `placement`. */
export function slotOf(placement: Placement, tenantId: string): number {
  return placement.overrides.get(tenantId) ?? rendezvousSlot(tenantId, placement.slots);
}
