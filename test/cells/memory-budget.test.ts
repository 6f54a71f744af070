/**
 * The plugin memory budget of a cell, on both sides of each bound: a tenant's share (half the
 * budget), the reserve only lighter tenants may use, the whole budget; growth past it; release.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createMemoryBudget } from '../../host/cells/memory-budget.ts';
import { HostError } from '../../host/errors.ts';

const MiB = 1024 * 1024;
const budget = () => createMemoryBudget({ bytesMax: 100 * MiB, reserveShare: 0.1, tenantShareMax: 0.5 });

function refusal(action: () => unknown): HostError {
  try {
    action();
  } catch (error) {
    assert.instance(error, HostError);
    return error as HostError;
  }
  throw new Error('expected TENANT_MEMORY_LIMIT');
}

test("a tenant's share: at half the budget it is admitted, one byte more is refused", () => {
  const memory = budget();
  memory.admit('heavy', 50 * MiB);
  const error = refusal(() => memory.admit('heavy', 1));
  assert.is(error.code, 'TENANT_MEMORY_LIMIT');
  assert.match(error.message, /over its share of 52428800/);
});

test('past the reserve the heaviest tenant is refused while a lighter one still gets in, up to the whole budget', () => {
  const memory = budget();
  memory.admit('heavy', 50 * MiB);
  memory.admit('middle', 40 * MiB); // 90 MiB: the reserve starts here
  assert.is(refusal(() => memory.admit('heavy', 1)).code, 'TENANT_MEMORY_LIMIT');
  const light = memory.admit('light', 10 * MiB); // exactly the whole budget
  assert.is(memory.usedBytes, 100 * MiB);
  assert.match(refusal(() => memory.admit('other', 1)).message, /is spent/);
  light.release();
  assert.is(memory.usedBytes, 90 * MiB);
  memory.admit('light', 10 * MiB);
});

test('growth: update says whether the session still fits; release frees it once', () => {
  const memory = budget();
  const claim = memory.admit('grower', 1 * MiB);
  assert.ok(claim.update(50 * MiB), 'at its share');
  assert.not.ok(claim.update(50 * MiB + 1), 'one byte over its share');
  assert.ok(claim.update(0));
  claim.release();
  claim.release();
  assert.is(memory.usedBytes, 0);
  assert.equal([...memory.byTenant()], []);
});

test.run();
