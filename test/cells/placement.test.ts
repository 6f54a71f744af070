/**
 * Rendezvous placement: every tenant has one slot, tenants spread over the slots, adding a slot
 * moves only the tenants the new slot wins (about 1/N), and an override wins over the hash.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rendezvousSlot, slotOf } from '../../host/cells/placement.ts';

const tenants = Array.from({ length: 4000 }, (_, i) => `t_${i.toString(16).padStart(16, '0')}`);

test('a tenant always hashes to the same slot, and the slots share the tenants', () => {
  const counts = [0, 0, 0, 0];
  for (const tenant of tenants) {
    const slot = rendezvousSlot(tenant, 4);
    assert.is(rendezvousSlot(tenant, 4), slot);
    counts[slot] = (counts[slot] ?? 0) + 1;
  }
  for (const count of counts) assert.ok(count > 800 && count < 1200, `each slot holds about a quarter: ${counts.join(', ')}`);
});

test('adding a slot moves only the tenants it wins, about 1/N of them, and none between old slots', () => {
  let moved = 0;
  for (const tenant of tenants) {
    const before = rendezvousSlot(tenant, 4);
    const after = rendezvousSlot(tenant, 5);
    if (before !== after) {
      moved += 1;
      assert.is(after, 4, 'a tenant that moves, moves to the new slot');
    }
  }
  assert.ok(moved > 600 && moved < 1000, `about a fifth moved: ${moved}`);
});

test('an override places a tenant elsewhere than its hash', () => {
  const tenant = tenants[0] as string;
  const home = rendezvousSlot(tenant, 2);
  assert.is(slotOf({ slots: 2, overrides: new Map() }, tenant), home);
  assert.is(slotOf({ slots: 2, overrides: new Map([[tenant, 2]]) }, tenant), 2);
});

test.run();
