/**
 * The OpenAI-compatible embeddings provider against a real HTTP server: it learns its dimension
 * from a probe, normalises, places vectors by index, batches within its limit, sends the key, and
 * turns every provider failure into EMBED_FAILED naming what went wrong (never the key). It refuses
 * to embed synchronously.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import { createLocalEmbedder } from '../../host/retrieval/embedder.ts';
import { createOpenAIEmbedder } from '../../host/retrieval/openai-embedder.ts';
import { startEmbeddingsServer, type EmbeddingsServer } from '../cache/embeddings-server.ts';

let server: EmbeddingsServer;

test.before(async () => {
  server = await startEmbeddingsServer(64);
});
test.after(async () => {
  await server.close();
});
test.before.each(() => {
  server.mode = 'ok';
});

async function expectEmbedFailed(action: () => Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await action();
  } catch (error) {
    assert.instance(error, HostError);
    assert.is((error as HostError).code, 'EMBED_FAILED');
    assert.match((error as HostError).message, message);
    assert.not.match((error as HostError).message, /sk-secret/);
    return;
  }
  assert.unreachable('expected EMBED_FAILED');
}

test('learns the dimension, normalises, and keeps input order whatever order the server answers in', async () => {
  const embedder = await createOpenAIEmbedder({ url: server.url, model: 'mini', apiKey: 'sk-secret', timeoutMs: 10_000 });
  assert.is(embedder.id, 'openai-embed:mini@64');
  assert.is(embedder.dim, 64);
  assert.ok(embedder.costly);
  const local = createLocalEmbedder({ dim: 64 });
  const texts = ['refund policy', 'express delivery', 'opening hours'];
  const vectors = await embedder.embedBatch(texts);
  texts.forEach((text, i) => {
    const expected = local.embed(text);
    vectors[i]?.forEach((value, j) => assert.ok(Math.abs(value - (expected[j] as number)) < 1e-6, `${text}[${j}]`));
  });
  assert.equal(server.requests.at(-1)?.body, { model: 'mini', input: texts, encoding_format: 'float' });
  assert.is(server.requests.at(-1)?.authorization, 'Bearer sk-secret');
});

test('a batch over the per-request limit is split: at the limit one request, one over two', async () => {
  const embedder = await createOpenAIEmbedder({ url: server.url, model: 'mini', timeoutMs: 10_000 });
  const before = server.requests.length;
  await embedder.embedBatch(Array.from({ length: LIMITS.embedBatchTextsMax }, (_, i) => `text ${i}`));
  assert.is(server.requests.length, before + 1);
  await embedder.embedBatch(Array.from({ length: LIMITS.embedBatchTextsMax + 1 }, (_, i) => `text ${i}`));
  assert.is(server.requests.length, before + 3);
  assert.is(server.requests.at(-1)?.body.input.length, 1);
});

test('it cannot embed synchronously, and says why', async () => {
  const embedder = await createOpenAIEmbedder({ url: server.url, model: 'mini', timeoutMs: 10_000 });
  try {
    embedder.embed('anything');
    assert.unreachable();
  } catch (error) {
    assert.instance(error, HostError);
    assert.is((error as HostError).code, 'EMBED_FAILED');
    assert.match((error as HostError).message, /openai-embed:mini@64 is remote and embeds asynchronously only/);
  }
});

test('provider failures are EMBED_FAILED with the reason', async () => {
  // Answers that come must never meet the time limit, however slow the machine; only the silent
  // provider, which never answers, is given a short one.
  const embedder = await createOpenAIEmbedder({ url: server.url, model: 'mini', apiKey: 'sk-secret', timeoutMs: 10_000 });
  const cases: [EmbeddingsServer['mode'], RegExp][] = [
    ['http-500', /answered HTTP 500: \{"error":"model not loaded"\}/],
    ['not-json', /unreadable response: not JSON/],
    ['short', /unreadable response: data must be an array of 2 items/],
    ['nan', /data\[\d\]\.embedding holds a value that is not a finite number/],
  ];
  for (const [mode, message] of cases) {
    server.mode = mode;
    await expectEmbedFailed(() => embedder.embedBatch(['one', 'two']), message);
  }
  // Its start-up probe must still be answered within the limit: 1 s, a thousand times what that takes.
  server.mode = 'ok';
  const impatient = await createOpenAIEmbedder({ url: server.url, model: 'mini', timeoutMs: 1_000 });
  server.mode = 'silent';
  await expectEmbedFailed(() => impatient.embedBatch(['one', 'two']), /did not answer within 1000 ms/);
  // The size cap must fire, not the clock: a generous timeout for a body that takes a while to send.
  server.mode = 'ok';
  const patient = await createOpenAIEmbedder({ url: server.url, model: 'mini', timeoutMs: 10_000 });
  server.mode = 'huge';
  await expectEmbedFailed(() => patient.embedBatch(['one', 'two']), /sent more than \d+ bytes/);
});

test('the probe fails the start when nothing answers, and bad options are CONFIG_INVALID naming the setting', async () => {
  await expectEmbedFailed(() => createOpenAIEmbedder({ url: 'http://127.0.0.1:1/v1', model: 'mini', timeoutMs: 10_000 }), /could not reach the embeddings provider at http:\/\/127\.0\.0\.1:1\/v1\/embeddings/);
  const bad: [Record<string, unknown>, string][] = [
    [{ url: 'ftp://x', model: 'm', timeoutMs: 10 }, 'url'],
    [{ url: 'http://u:p@x', model: 'm', timeoutMs: 10 }, 'url'],
    [{ url: server.url, model: 'a b', timeoutMs: 10 }, 'model'],
    [{ url: server.url, model: 'm', timeoutMs: LIMITS.embedTimeoutMsMax + 1 }, 'timeoutMs'],
    [{ url: server.url, model: 'm', timeoutMs: 10, apiKey: 'has space' }, 'apiKey'],
  ];
  for (const [options, setting] of bad) {
    try {
      await createOpenAIEmbedder(options as never);
      assert.unreachable(setting);
    } catch (error) {
      assert.instance(error, HostError);
      assert.is((error as HostError).code, 'CONFIG_INVALID');
      assert.equal((error as HostError).detail, { setting });
    }
  }
});

test('a caller abort ends the request with the caller reason', async () => {
  const embedder = await createOpenAIEmbedder({ url: server.url, model: 'mini', timeoutMs: 10_000 });
  server.mode = 'silent';
  const controller = new AbortController();
  const pending = embedder.embedBatch(['one'], controller.signal);
  controller.abort(new Error('session closed'));
  try {
    await pending;
    assert.unreachable();
  } catch (error) {
    assert.is((error as Error).message, 'session closed');
  }
});

test.run();
