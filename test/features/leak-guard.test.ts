/**
 * Invariant 4, played as an attacker: foreign material is pushed into an ask by every route we can
 * open — a forged question carrying another tenant's canary, a model that streams one, test-only
 * fault points that slip another tenant's chunk (or a reference to it) into the context, and a
 * cached answer altered on disk — and each layer of the guard (chunk references, provenance tags,
 * canary scan of the context, of the stream and of a cached answer) must block it with
 * LEAK_BLOCKED before any foreign text is sent. Every block is reported three ways: an entry in the
 * tenant's audit log naming the layer, an error-level log line, and the leak-block metric.
 */
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AssembledMessage, GuardLayer, ResolvedChunk } from '../../host/pipeline/guard.ts';
import { mintScopeForOperator, operatorFromLocalAccess } from '../../host/tenants/scope.ts';
import { ChatError } from '../../sdk/client/client.ts';
import { OPERATOR_KEY, startTestHost, type TestHost } from '../helpers/host.ts';
import { startModelServer, type ModelServer } from '../helpers/model-server.ts';
import { sampleValue } from '../helpers/prometheus.ts';

let host: TestHost;
let model: ModelServer;
let a: { id: string; apiKey: string };
let b: { id: string; apiKey: string };
let inject: ((tenantId: string, resolved: Map<string, ResolvedChunk>, chunks: ResolvedChunk[]) => void) | undefined;
let modelTokens: string[] | undefined;
let injectMessages: ((tenantId: string, messages: AssembledMessage[]) => void) | undefined;
/** Error-level log lines of the host, parsed. */
const errorLogs: any[] = [];

test.before(async () => {
  model = await startModelServer({ answer: () => modelTokens ?? ['All ', 'good.'] });
  host = await startTestHost({
    config: { modelUrl: model.url },
    logger: pino({ level: 'error' }, { write: (line: string) => void errorLogs.push(JSON.parse(line)) }),
    faultInjectResolved: (tenantId, resolved, chunks) => inject?.(tenantId, resolved, chunks),
    faultInjectAssembled: (tenantId, messages) => injectMessages?.(tenantId, messages),
  });
  a = await host.createTenant('Alpha');
  b = await host.createTenant('Beta');
  await host.ingest(a.apiKey, [{ id: 'a-doc', title: 'Alpha notes', text: 'Alpha keeps its servers in Lisbon.' }]);
  await host.ingest(b.apiKey, [{ id: 'b-doc', title: 'Beta notes', text: 'Beta secret: the vault code is 4417.' }]);
  // These attacks target the pipeline, which a cached answer to a repeated question would skip
  // (cached answers meet the stream guard too: test/features/cache-isolation.test.ts).
  for (const tenant of [a, b]) await host.request('PATCH', '/v1/config', tenant.apiKey, { cache: { enabled: false } });
});
test.after(async () => {
  await host.close();
  await model.close();
});

const canaryOf = (tenantId: string): string => host.server.authority.registry.findTenant(tenantId)?.canary ?? '';

/** The tenant's leak-block counter as `GET /metrics` reports it. */
async function leakMetric(tenantId: string): Promise<number> {
  const response = await fetch(`${host.url}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } });
  return sampleValue(await response.text(), 'ctx_leak_blocks_total', { tenant: tenantId }) ?? 0;
}

/**
 * Asks, expects LEAK_BLOCKED with nothing foreign sent, then checks the block was reported: one more
 * audit entry naming `layer`, an error log line with the tenant and the layer, and the metric up by one.
 */
async function askExpectingLeakBlock(tenant: { id: string; apiKey: string }, question: string, secret: string, layer: GuardLayer): Promise<void> {
  const metricBefore = await leakMetric(tenant.id);
  const logsBefore = errorLogs.length;
  await askBlocked(tenant.apiKey, question, secret);
  const audit = await host.request('GET', '/v1/audit?limit=1000', tenant.apiKey);
  const entry = audit.body.entries.filter((candidate: any) => candidate.kind === 'leak.blocked').at(-1);
  assert.equal({ layer: entry?.detail.layer, actor: entry?.actor }, { layer, actor: 'host' });
  assert.ok(audit.body.verified);
  const logged = errorLogs.slice(logsBefore).find((line) => line.msg === 'leak guard blocked an ask');
  assert.equal({ tenant: logged?.tenant, layer: logged?.layer, level: logged?.level }, { tenant: tenant.id, layer, level: 50 });
  assert.not.ok(JSON.stringify(errorLogs.slice(logsBefore)).includes(secret), 'the log line holds no blocked text');
  assert.is(await leakMetric(tenant.id), metricBefore + 1);
}

async function askBlocked(apiKey: string, question: string, secret: string): Promise<void> {
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
  await askExpectingLeakBlock(b, `Tell me about ${canaryOf(a.id)} please`, canaryOf(a.id), 'context-canary');
});

test("a tenant's own canary is not a leak", async () => {
  const client = await host.chat(a.apiKey);
  const { result } = await host.ask(client, `What is ${canaryOf(a.id)}?`);
  assert.type(result.answer, 'string');
  client.close();
});

/** A token shaped like a canary that no tenant of this host owns. */
const UNOWNED = 'ctxcanary-0123456789abcdef01234567';

/** Leak-block evidence for a tenant: its audit entries, the host's error lines, the metric. */
async function leakEvidence(tenant: { id: string; apiKey: string }): Promise<{ audit: number; logs: number; metric: number }> {
  const audit = await host.request('GET', '/v1/audit?limit=1000', tenant.apiKey);
  return {
    audit: audit.body.entries.filter((entry: any) => entry.kind === 'leak.blocked').length,
    logs: errorLogs.filter((line) => line.msg === 'leak guard blocked an ask' && line.tenant === tenant.id).length,
    metric: await leakMetric(tenant.id),
  };
}

test('a canary-shaped token no tenant owns is not a leak: in a question, in a retrieved document, in the answer', async () => {
  assert.is(host.server.authority.registry.canaryOwner(UNOWNED), undefined);
  const before = await leakEvidence(a);
  await host.ingest(a.apiKey, [{ id: 'a-odd', title: 'Alpha odd notes', text: `Alpha servers carry the label ${UNOWNED} in Lisbon.` }]);
  modelTokens = ['The label is ', UNOWNED.slice(0, 12), UNOWNED.slice(12), '.'];
  const routed = await host.request('PATCH', '/v1/config', a.apiKey, { model: { provider: 'openai' } });
  assert.equal(routed.status, 200);
  try {
    const client = await host.chat(a.apiKey);
    const { result } = await host.ask(client, `Which servers carry the label ${UNOWNED}?`);
    client.close();
    assert.ok(result.sources.some((source) => source.docId === 'a-odd'), 'the document holding the token was retrieved');
    assert.is(result.answer, `The label is ${UNOWNED}.`);
  } finally {
    modelTokens = undefined;
    await host.request('PATCH', '/v1/config', a.apiKey, { model: { provider: 'default' } });
    await host.request('DELETE', '/v1/documents/a-odd', a.apiKey);
  }
  assert.equal(await leakEvidence(a), before, 'no audit entry, no error line, no metric');
});

test("a deleted tenant's canary is no leak either: nothing of an existing tenant can have carried it", async () => {
  const gone = await host.createTenant('Gone');
  const canary = canaryOf(gone.id);
  assert.is((await host.request('DELETE', `/v1/tenants/${gone.id}`, OPERATOR_KEY)).status, 200);
  const before = await leakEvidence(b);
  const client = await host.chat(b.apiKey);
  const { result } = await host.ask(client, `What is ${canary}?`);
  client.close();
  assert.type(result.answer, 'string');
  assert.equal(await leakEvidence(b), before);
});

test("stream layer: a model streaming another tenant's canary across tokens is cut before it is sent", async () => {
  const canary = canaryOf(a.id);
  modelTokens = ['Sure, here it is: ', canary.slice(0, 7), canary.slice(7, 20), canary.slice(20), ' done.'];
  const routed = await host.request('PATCH', '/v1/config', b.apiKey, { model: { provider: 'openai' } });
  assert.equal(routed.status, 200);
  const before = model.requests.length;
  try {
    await askExpectingLeakBlock(b, 'What is the vault code?', canary, 'answer-canary');
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
    await askExpectingLeakBlock(a, 'Where does Alpha keep its servers?', '4417', 'provenance');
  } finally {
    inject = undefined;
  }
});

test("reference layer: a reference to another tenant's chunk that this ask never resolved is blocked", async () => {
  injectMessages = (tenantId, messages) => {
    if (tenantId === a.id) messages[0]?.parts.push({ kind: 'chunk', value: 'b-doc#0' });
  };
  try {
    await askExpectingLeakBlock(a, 'Where does Alpha keep its servers?', '4417', 'reference');
  } finally {
    injectMessages = undefined;
  }
});

test("cached-answer layer: a cached answer altered to carry another tenant's canary is blocked on replay", async () => {
  const question = 'Where are the Alpha servers kept?';
  await host.request('PATCH', '/v1/config', a.apiKey, { cache: { enabled: true } });
  try {
    const client = await host.chat(a.apiKey);
    await host.ask(client, question);
    client.close();
    // The entry is written asynchronously; the edit below must land after it, not be overwritten by it.
    await host.writesLanded(a.id);
    const scope = mintScopeForOperator(host.server.authority, operatorFromLocalAccess(), a.id);
    const [stored] = [...scope.store.semanticCache.entries()];
    assert.ok(stored !== undefined, 'the answer was cached');
    scope.store.transaction(() => scope.store.semanticCache.put(stored.key, { ...(stored.value as object), answer: `Lisbon, and ${canaryOf(b.id)}.` }));
    scope.release();
    await askExpectingLeakBlock(a, question, canaryOf(b.id), 'cached-answer-canary');
  } finally {
    await host.request('PATCH', '/v1/config', a.apiKey, { cache: { enabled: false } });
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
    await askExpectingLeakBlock(a, 'Where does Alpha keep its servers?', '4417', 'context-canary');
  } finally {
    inject = undefined;
  }
});

test.run();
