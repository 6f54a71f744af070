/**
 * Shares of the workers every tenant of a cell uses: the metering worker and the ingest worker each
 * take at most two jobs of one tenant at a time (the third is refused with the tenant's code while
 * another tenant's job is still accepted), and every accepted job completes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { createIngestService } from '../../host/retrieval/ingest-service.ts';
import { createMeteringService } from '../../host/sandbox/metering-service.ts';
import { builtinPlugin } from './harness.ts';

async function refusal(promise: Promise<unknown>): Promise<HostError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  assert.instance(error, HostError);
  return error as HostError;
}

test("metering: a tenant's third module waiting is refused, another tenant's is taken, and all taken ones are metered", async () => {
  const metering = createMeteringService();
  try {
    const bytes = await builtinPlugin('prompt');
    const mine = Array.from({ length: LIMITS.pluginMeteringPerTenantMax }, () => metering.meter(bytes, { tenantId: 't_a' }));
    const third = await refusal(metering.meter(bytes, { tenantId: 't_a' }));
    assert.is(third.code, 'PLUGIN_BUSY');
    assert.match(third.message, /this tenant already has 2 plugin modules being metered, limit 2/);
    const theirs = metering.meter(bytes, { tenantId: 't_b' });
    for (const result of await Promise.all([...mine, theirs])) assert.ok(result.bytes.byteLength > 0);
  } finally {
    await metering.close();
  }
});

test("ingest: a tenant's third batch in progress is refused, another tenant's is prepared", async () => {
  const ingest = createIngestService({ jobMsMax: 60_000, perTenantMax: LIMITS.ingestsPerTenantMax });
  try {
    const documents = [{ title: 'Doc', text: 'The shop opens at nine. It closes at six.' }];
    const mine = Array.from({ length: LIMITS.ingestsPerTenantMax }, () => ingest.prepare('t_a', documents, 256));
    const third = await refusal(ingest.prepare('t_a', documents, 256));
    assert.is(third.code, 'TENANT_INGEST_RATE_LIMIT');
    const theirs = ingest.prepare('t_b', documents, 256);
    for (const [prepared] of await Promise.all([...mine, theirs])) {
      assert.is(prepared?.pieces.length, 1);
      assert.is(prepared?.vectors?.length, 256);
    }
  } finally {
    await ingest.close();
  }
});

test.run();
