/**
 * Adaptation without pooling (host/DESIGN.md, invariant 6), through the real server: feedback is kept
 * only when the tenant retains it and only for its retention period; a tenant's export is JSONL in
 * the OpenAI chat fine-tuning format holding only its own positively rated answers, with
 * provenance; a pool needs every tenant's recorded opt-in and passes the leak audit — examples
 * holding a canary or a passage of another tenant's chunk are dropped and reported.
 */
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mintScopeForOperator, operatorFromLocalAccess, type TenantScope } from '../../host/tenants/scope.ts';
import { trainingExportReport } from '../../host/training/export.ts';
import { storedCount, storeFeedback, sweepFeedbackRetention } from '../../host/training/feedback.ts';
import type { ChatClient } from '../../sdk/client/node.ts';
import { within } from '../helpers/deadline.ts';
import { OPERATOR_KEY, startTestHost, type TestHost } from '../helpers/host.ts';

let host: TestHost;
let a: { id: string; apiKey: string };
let b: { id: string; apiKey: string };
let c: { id: string; apiKey: string };

const DAY_MS = 24 * 3600 * 1000;
const VAULT = 'Gamma keeps the master vault code in the blue binder on the third shelf of the archive room behind the old printer.';

test.before(async () => {
  host = await startTestHost();
  a = await host.createTenant('Alpha');
  b = await host.createTenant('Beta');
  c = await host.createTenant('Gamma');
  await host.ingest(a.apiKey, [
    { id: 'a-shipping', title: 'Shipping', text: 'Express delivery costs 15 euros and arrives the next working day.' },
    { id: 'a-returns', title: 'Returns', text: 'Bikes can be returned within 30 days if they were not ridden outside.' },
  ]);
  await host.ingest(b.apiKey, [{ id: 'b-hours', title: 'Hours', text: 'The Beta workshop opens at nine and closes at six on weekdays.' }]);
  await host.ingest(c.apiKey, [{ id: 'c-vault', title: 'Vault', text: VAULT }]);
  for (const tenant of [a, b]) assert.is((await host.request('PATCH', '/v1/config', tenant.apiKey, { feedback: { retain: true } })).status, 200);
});
test.after(async () => {
  await host.close();
});

/** Asks in a fresh session and rates the answer. Ask ids repeat across connections; questions here do not. */
async function askAndRate(apiKey: string, question: string, rating: 1 | -1): Promise<void> {
  const client: ChatClient = await host.chat(apiKey);
  const handle = client.ask(question);
  await within(handle.result, `ask ${question}`);
  await within(client.feedback(handle.id, rating), 'feedback');
  client.close();
}

const questionOf = (line: any): string => line.messages[1].content;

async function exportLines(apiKey: string): Promise<any[]> {
  const response = await within(fetch(`${host.url}/v1/training/export`, { headers: { authorization: `Bearer ${apiKey}` } }), 'export');
  assert.is(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^application\/jsonl/);
  const text = await response.text();
  return text === '' ? [] : text.trimEnd().split('\n').map((line) => JSON.parse(line));
}

function operatorScope(tenantId: string): TenantScope {
  return mintScopeForOperator(host.server.authority, operatorFromLocalAccess(), tenantId);
}

const canaryOf = (tenantId: string): string => host.server.authority.registry.findTenant(tenantId)?.canary ?? '';

async function auditKinds(apiKey: string): Promise<any[]> {
  const response = await host.request('GET', '/v1/audit?limit=1000', apiKey);
  assert.is(response.status, 200);
  assert.ok(response.body.verified);
  return response.body.entries;
}

test('feedback is kept only while the tenant retains it (off by default)', async () => {
  await askAndRate(c.apiKey, 'Where is the vault code?', 1);
  const gamma = operatorScope(c.id);
  assert.is(storedCount(gamma.store), 0, 'retention is off by default: nothing kept');
  assert.is([...gamma.store.feedback.entries()].length, 0);
  gamma.release();
  const before = operatorScope(a.id);
  const count = storedCount(before.store);
  before.release();
  await askAndRate(a.apiKey, 'How much does express delivery cost?', 1);
  const after = operatorScope(a.id);
  assert.is(storedCount(after.store), count + 1);
  after.release();
});

test('export: JSONL in the OpenAI chat format, positive ratings only, with provenance of this tenant alone', async () => {
  await askAndRate(a.apiKey, 'Can bikes be returned?', 1);
  await askAndRate(a.apiKey, 'How long can bikes be returned?', -1);
  await askAndRate(b.apiKey, 'When does the workshop open?', 1);
  const lines = await exportLines(a.apiKey);
  const questions = lines.map(questionOf);
  assert.ok(questions.includes('Can bikes be returned?'));
  assert.not.ok(questions.includes('How long can bikes be returned?'), 'a negative rating is not a training example');
  const line = lines.find((candidate) => questionOf(candidate) === 'Can bikes be returned?');
  assert.equal(Object.keys(line).sort(), ['messages', 'provenance']);
  assert.equal(line.messages.map((message: any) => message.role), ['system', 'user', 'assistant']);
  assert.ok(line.messages.every((message: any) => typeof message.content === 'string' && Object.keys(message).length === 2));
  assert.match(line.messages[0].content, /Bikes can be returned within 30 days/);
  assert.is(line.messages[1].content, 'Can bikes be returned?');
  assert.is(line.provenance.tenant, a.id);
  assert.match(line.provenance.feedbackId, /^[0-9a-z]{9}:a\d+:[0-9a-f]{8}$/);
  assert.is(new Set(lines.map((candidate) => candidate.provenance.feedbackId)).size, lines.length, 'feedback ids are unique');
  assert.ok(line.provenance.sources.some((source: any) => source.docId === 'a-returns' && source.chunkId === 'a-returns#0'));
  const all = JSON.stringify(lines);
  assert.not.ok(all.includes('workshop'), "B's rated answer is not in A's export");
  assert.ok(lines.every((candidate) => candidate.provenance.tenant === a.id));
  const beta = await exportLines(b.apiKey);
  assert.ok(beta.length >= 1 && beta.every((candidate) => candidate.provenance.tenant === b.id));
  assert.not.ok(JSON.stringify(beta).includes('Bikes'));
  const audit = (await auditKinds(a.apiKey)).filter((entry) => entry.kind === 'training.exported').at(-1);
  assert.equal({ examples: audit.detail.examples, complete: audit.detail.complete, actor: audit.actor }, { examples: lines.length, complete: true, actor: 'tenant' });
});

test('an example whose cited chunk changed since the rating is dropped and reported as source-changed', async () => {
  const question = 'What does express delivery cost?';
  await askAndRate(a.apiKey, question, 1);
  const line = (await exportLines(a.apiKey)).find((candidate) => questionOf(candidate) === question);
  assert.ok(line?.provenance.sources.some((source: any) => source.docId === 'a-shipping'), 'the example cites the shipping document');
  await host.ingest(a.apiKey, [{ id: 'a-shipping', title: 'Shipping', text: 'Express delivery now costs 19 euros and arrives the next working day.' }]);
  assert.not.ok((await exportLines(a.apiKey)).some((candidate) => questionOf(candidate) === question));
  const report = await host.request('GET', '/v1/training/export/report', a.apiKey);
  assert.ok(report.body.dropped.some((drop: any) => drop.feedbackId === line.provenance.feedbackId && drop.reason === 'source-changed'));
  const audit = (await auditKinds(a.apiKey)).filter((entry) => entry.kind === 'training.exported').at(-1);
  assert.ok(audit.detail['dropped.source-changed'] >= 1);
});

test("a rating holding another tenant's canary is dropped from the export; the tenant's own canary is not foreign", async () => {
  const scope = operatorScope(a.id);
  storeFeedback(scope, { askId: 'foreign-canary', rating: 1, question: 'q', answer: `Here: ${canaryOf(b.id)}`, sources: [] });
  storeFeedback(scope, { askId: 'own-canary', rating: 1, question: 'q', answer: `Here: ${canaryOf(a.id)}`, sources: [] });
  scope.release();
  const lines = await exportLines(a.apiKey);
  assert.not.ok(lines.some((line) => line.provenance.askId === 'foreign-canary'));
  assert.ok(lines.some((line) => line.provenance.askId === 'own-canary'));
  const report = await host.request('GET', '/v1/training/export/report', a.apiKey);
  assert.ok(report.body.dropped.some((drop: any) => drop.askId === 'foreign-canary' && drop.reason === 'foreign-canary'));
});

test('feedback settings: retentionDays at 1 and at the maximum pass; 0 and one over fail naming the setting', async () => {
  for (const days of [1, 730]) assert.is((await host.request('PATCH', '/v1/config', c.apiKey, { feedback: { retentionDays: days } })).status, 200);
  for (const days of [0, 731]) {
    const refused = await host.request('PATCH', '/v1/config', c.apiKey, { feedback: { retentionDays: days } });
    assert.is(refused.status, 400);
    assert.is(refused.body.error.code, 'CONFIG_INVALID');
    assert.match(refused.body.error.message, new RegExp(`^feedback\\.retentionDays: must be an integer in 1\\.\\.730, got ${days}$`));
  }
  const unknown = await host.request('PATCH', '/v1/config', c.apiKey, { feedback: { keepForever: true } });
  assert.match(unknown.body.error.message, /^feedback\.keepForever: unknown setting/);
});

test('consent: off until the tenant opts in; a malformed body is refused; each change is audited', async () => {
  assert.equal((await host.request('GET', '/v1/training/consent', a.apiKey)).body, { pool: false, changedAt: null });
  const bad = await host.request('PUT', '/v1/training/consent', a.apiKey, { pool: 'yes' });
  assert.equal([bad.status, bad.body.error.code], [400, 'HTTP_BODY_INVALID']);
  const set = await host.request('PUT', '/v1/training/consent', a.apiKey, { pool: true });
  assert.equal([set.status, set.body.pool], [200, true]);
  const entries = (await auditKinds(a.apiKey)).filter((entry) => entry.kind === 'training.consent');
  assert.equal(entries.map((entry) => entry.detail.pool), [true]);
});

test('pool: refused, naming them, unless every tenant opted in; needs the operator key', async () => {
  const refused = await host.request('POST', '/v1/training/pool', OPERATOR_KEY, { tenants: [a.id, b.id] });
  assert.equal([refused.status, refused.body.error.code], [403, 'TRAINING_CONSENT_MISSING']);
  assert.match(refused.body.error.message, new RegExp(`^tenants ${b.id} have not opted in`));
  const asTenant = await host.request('POST', '/v1/training/pool', a.apiKey, { tenants: [a.id] });
  assert.equal([asTenant.status, asTenant.body.error.code], [401, 'AUTH_INVALID_KEY']);
  const unknown = await host.request('POST', '/v1/training/pool', OPERATOR_KEY, { tenants: [a.id, 't_0000000000000000'] });
  assert.equal([unknown.status, unknown.body.error.code], [404, 'TENANT_NOT_FOUND']);
});

test("pool: the leak audit drops a canary and a passage of a non-pooled tenant's chunk, and reports both", async () => {
  await askAndRate(b.apiKey, 'When does the Beta workshop close?', 1);
  await host.request('PUT', '/v1/training/consent', b.apiKey, { pool: true });
  const scope = operatorScope(a.id);
  storeFeedback(scope, { askId: 'copied-passage', rating: 1, question: 'Where is it kept?', answer: `As far as I know: ${VAULT}`, sources: [] });
  scope.release();
  const ownExport = await exportLines(a.apiKey);
  assert.ok(ownExport.some((line) => line.provenance.askId === 'copied-passage'), "a tenant's own export cannot compare with other tenants");
  const pooled = await host.request('POST', '/v1/training/pool', OPERATOR_KEY, { tenants: [a.id, b.id] });
  assert.is(pooled.status, 200);
  const { report, examples } = pooled.body;
  const dropped = new Map<string, any>(report.dropped.map((drop: any) => [drop.askId, drop]));
  assert.equal({ reason: dropped.get('copied-passage')?.reason, ofTenant: dropped.get('copied-passage')?.detail.ofTenant }, { reason: 'near-duplicate', ofTenant: c.id });
  assert.is(dropped.get('copied-passage')?.detail.chunkId, 'c-vault#0');
  assert.is(dropped.get('own-canary')?.reason, 'canary', "pooled data leaves every partition: even the tenant's own canary goes");
  assert.is(dropped.get('foreign-canary')?.reason, 'foreign-canary');
  assert.ok(report.comparedTenants >= 3 && report.comparedChunks >= 4, 'compared with every tenant on the host');
  assert.is(examples.length, report.examples);
  assert.ok(examples.some((example: any) => example.provenance.tenant === a.id));
  assert.ok(examples.some((example: any) => example.provenance.tenant === b.id));
  const text = JSON.stringify(examples);
  assert.not.ok(text.includes('ctxcanary-') || text.includes('blue binder'), 'nothing dropped reached the pool');
  for (const tenant of [a, b]) {
    const entry = (await auditKinds(tenant.apiKey)).filter((candidate) => candidate.kind === 'training.pooled').at(-1);
    assert.is(entry.detail.poolId, report.poolId);
    assert.is(entry.detail.contributed, examples.filter((example: any) => example.provenance.tenant === tenant.id).length);
    assert.not.ok(JSON.stringify(entry).includes(c.id), "a tenant's audit log does not name other tenants");
  }
});

test('retention (last: the sweep is host-wide): a rating older than retentionDays is never exported, and the sweep deletes it', async () => {
  const scope = operatorScope(b.id);
  const owner = (token: string) => host.server.authority.registry.canaryOwner(token);
  const kept = trainingExportReport(scope, owner).examples;
  assert.ok(kept >= 1);
  assert.is(trainingExportReport(scope, owner, Date.now() + 29 * DAY_MS).examples, kept, 'inside 30 days: still there');
  assert.is(trainingExportReport(scope, owner, Date.now() + 31 * DAY_MS).examples, 0, 'past 30 days: not read even before a sweep');
  const stored = storedCount(scope.store);
  scope.release();
  const deleted = await sweepFeedbackRetention(host.server.authority, pino({ level: 'silent' }), Date.now() + 31 * DAY_MS);
  assert.ok(deleted >= stored);
  const after = operatorScope(b.id);
  assert.is(storedCount(after.store), 0);
  assert.is([...after.store.feedback.entries()].length, 0, 'deleted from the table, not just hidden');
  after.release();
});

test.run();
