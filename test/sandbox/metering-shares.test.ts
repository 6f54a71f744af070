/**
 * Shares of the workers every tenant of a cell uses: the metering worker and the ingest worker each
 * take at most two jobs of one tenant at a time (the third is refused with the tenant's code while
 * another tenant's job is still accepted), and every accepted job completes. The ingest worker also
 * parses and validates document bodies, off the cell's loop.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { createLocalEmbedder } from '../../host/retrieval/embedder.ts';
import { createIngestService } from '../../host/retrieval/ingest-service.ts';
import { prepareText } from '../../host/retrieval/prepare-text.ts';
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

test('ingest: a long document comes back from the worker in parts, joined exactly as prepared in one piece; an empty one too', async () => {
  const ingest = createIngestService({ jobMsMax: 60_000, perTenantMax: LIMITS.ingestsPerTenantMax });
  try {
    const words = 'alpha beta gamma delta epsilon zeta eta theta iota kappa'.split(' ');
    const long = { title: 'Long', text: Array.from({ length: 60_000 }, (_, k) => `${words[k % words.length]}${k % 9 === 8 ? '.' : ''}`).join(' ') };
    const empty = { title: 'Empty', text: '' };
    const [prepared, none] = await ingest.prepare('t_a', [long, empty], 64);
    const expected = prepareText(long, createLocalEmbedder({ dim: 64 }));
    assert.ok(expected.pieces.length > 2 * 256, `more chunks than two parts: ${expected.pieces.length}`);
    assert.equal(prepared?.pieces, expected.pieces);
    assert.equal(prepared?.terms, expected.terms);
    assert.equal([...(prepared?.vectors ?? [])], [...(expected.vectors ?? [])]);
    assert.equal(none, prepareText(empty, createLocalEmbedder({ dim: 64 })));
  } finally {
    await ingest.close();
  }
});

test('ingest: a documents body is parsed and validated in the worker, with the codes and messages the body earns', async () => {
  const ingest = createIngestService({ jobMsMax: 60_000, perTenantMax: LIMITS.ingestsPerTenantMax });
  try {
    const body = Buffer.from(JSON.stringify({ documents: [{ id: 'a', title: 'Ä title', text: 'Grüße aus der Werkstatt.', metadata: { lang: 'de' } }, { text: 'Second.' }] }));
    assert.equal(await ingest.parseDocuments('t_a', body), [{ id: 'a', title: 'Ä title', text: 'Grüße aus der Werkstatt.', metadata: { lang: 'de' } }, { text: 'Second.' }]);
    const notJson = await refusal(ingest.parseDocuments('t_a', Buffer.from('{"documents": [')));
    assert.is(notJson.code, 'HTTP_BODY_INVALID');
    assert.match(notJson.message, /^body is not valid JSON: /);
    const badField = await refusal(ingest.parseDocuments('t_a', Buffer.from(JSON.stringify({ documents: [{ text: 'ok' }, { text: 'ok', metadata: { n: 1 } }] }))));
    assert.is(badField.code, 'DOCUMENT_INVALID');
    assert.is(badField.message, 'documents[1].metadata.n must be a string, got number');
    const reserved = await refusal(ingest.parseDocuments('t_a', Buffer.from('{"documents": [{"text": "x", "metadata": {"__proto__": "y"}}]}')));
    assert.is(reserved.code, 'DOCUMENT_INVALID');
    assert.match(reserved.message, /reserved/);
    // A parse is a job like any other: the tenant's share applies to it too.
    const held = Array.from({ length: LIMITS.ingestsPerTenantMax }, () => ingest.parseDocuments('t_b', body));
    assert.is((await refusal(ingest.parseDocuments('t_b', body))).code, 'TENANT_INGEST_RATE_LIMIT');
    assert.is((await Promise.all(held)).length, LIMITS.ingestsPerTenantMax);
    assert.is((await ingest.prepare('t_a', [{ title: 'After', text: 'The worker still prepares.' }], 64))[0]?.pieces.length, 1);
  } finally {
    await ingest.close();
  }
});

test.run();
