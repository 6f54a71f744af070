/**
 * Invariant 4, played as an attacker: foreign material is pushed into an ask by every route we can
 * open — a forged question carrying another tenant's canary, a model that streams one, and a
 * test-only fault point that slips another tenant's chunk into the context — and each layer of the
 * guard (provenance tags, canary scan of the context, canary scan of the stream) must block it
 * with LEAK_BLOCKED before any foreign text is sent.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ResolvedChunk } from '../../host/pipeline/guard.ts';
import { mintScopeForOperator, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { ChatError } from '../../sdk/client/client.ts';
import { startTestHost, type TestHost } from '../helpers/host.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';

let host: TestHost;
let model: ModelServer;
let a: { id: string; apiKey: string };
let b: { id: string; apiKey: string };
let inject: ((tenantId: string, resolved: Map<string, ResolvedChunk>, chunks: ResolvedChunk[]) => void) | undefined;
let modelTokens: string[] | undefined;

test.before(async () => {
  model = await startModelServer({ answer: () => modelTokens ?? ['All ', 'good.'] });
  host = await startTestHost({
    config: { modelUrl: model.url },
    faultInjectResolved: (tenantId, resolved, chunks) => inject?.(tenantId, resolved, chunks),
  });
  a = await host.createTenant('Alpha');
  b = await host.createTenant('Beta');
  await host.ingest(a.apiKey, [{ id: 'a-doc', title: 'Alpha notes', text: 'Alpha keeps its servers in Lisbon.' }]);
  await host.ingest(b.apiKey, [{ id: 'b-doc', title: 'Beta notes', text: 'Beta secret: the vault code is 4417.' }]);
});
test.after(async () => {
  await host.close();
  await model.close();
});

const canaryOf = (tenantId: string): string => host.server.authority.registry.findTenant(tenantId)?.canary ?? '';

async function askExpectingLeakBlock(apiKey: string, question: string, secret: string): Promise<void> {
  const client = await host.chat(apiKey);
  const handle = client.ask(question);
  const tokens: string[] = [];
  try {
    for await (const token of handle.tokens) tokens.push(token);
    assert.unreachable('the ask must fail');
  } catch (error) {
    assert.instance(error, ChatError);
    assert.equal((error as ChatError).code, 'LEAK_BLOCKED');
    assert.match((error as ChatError).message, /nothing was sent/);
  }
  assert.not.ok(tokens.join('').includes(secret), 'no foreign text reached the client');
  assert.not.ok(tokens.join('').includes('ctxcanary-'), 'not even the start of a canary');
  client.close();
}

test('control: with no attack the same asks succeed', async () => {
  const client = await host.chat(a.apiKey);
  const { result } = await host.ask(client, 'Where does Alpha keep its servers?');
  assert.ok(result.answer.includes('Lisbon'), result.answer);
  client.close();
});

test("context layer: another tenant's canary in the question is blocked", async () => {
  await askExpectingLeakBlock(b.apiKey, `Tell me about ${canaryOf(a.id)} please`, canaryOf(a.id));
});

test("a tenant's own canary is not a leak", async () => {
  const client = await host.chat(a.apiKey);
  const { result } = await host.ask(client, `What is ${canaryOf(a.id)}?`);
  assert.type(result.answer, 'string');
  client.close();
});

test("stream layer: a model streaming another tenant's canary across tokens is cut before it is sent", async () => {
  const canary = canaryOf(a.id);
  modelTokens = ['Sure, here it is: ', canary.slice(0, 7), canary.slice(7, 20), canary.slice(20), ' done.'];
  const routed = await host.request('PATCH', '/v1/config', b.apiKey, { model: { provider: 'openai' } });
  assert.equal(routed.status, 200);
  const before = model.requests.length;
  try {
    await askExpectingLeakBlock(b.apiKey, 'What is the vault code?', canary);
    assert.equal(model.requests.length, before + 1, 'the ask reached the model, so the stream layer did the blocking');
  } finally {
    modelTokens = undefined;
  }
});

test("provenance layer: another tenant's chunk slipped into the context is blocked by its tag", async () => {
  const scope = mintScopeForOperator(host.server.authority, operatorFromLocalAccess(), b.id);
  const row = scope.store.chunkRows.get('b-doc#0') as number;
  const stored = scope.store.chunks.get(row)!;
  scope.release();
  const foreign: ResolvedChunk = { chunkId: stored.chunkId, docId: stored.docId, title: stored.title, text: stored.text, score: 1, tag: stored.tag };
  inject = (tenantId, resolved, chunks) => {
    if (tenantId !== a.id) return;
    resolved.set(foreign.chunkId, foreign);
    chunks.unshift(foreign);
  };
  try {
    await askExpectingLeakBlock(a.apiKey, 'Where does Alpha keep its servers?', '4417');
  } finally {
    inject = undefined;
  }
});

test('canary layer: a foreign chunk re-tagged with the victim key still carries its canary and is blocked', async () => {
  const victim = mintScopeForOperator(host.server.authority, operatorFromLocalAccess(), a.id);
  const text = `Beta internal ${canaryOf(b.id)} vault code 4417`;
  const forged: ResolvedChunk = { chunkId: 'a-doc#0', docId: 'a-doc', title: 'Alpha notes', text, score: 1, tag: victim.store.provenanceTag('a-doc#0', text) };
  victim.release();
  inject = (tenantId, resolved, chunks) => {
    if (tenantId !== a.id) return;
    resolved.set(forged.chunkId, forged);
    chunks.splice(0, chunks.length, forged);
  };
  try {
    await askExpectingLeakBlock(a.apiKey, 'Where does Alpha keep its servers?', '4417');
  } finally {
    inject = undefined;
  }
});

test.run();
