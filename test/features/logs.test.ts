/**
 * Structured logs never hold document text, prompts, questions, answers, feedback comments or
 * keys. The host runs at `trace` with every line captured while secrets are planted everywhere a
 * careless log call could pick them up — a document, the system prompt, a question, the answer
 * (the local model quotes the document), a feedback comment, a plugin's error message, bad frames,
 * the tenant key, a ticket, the operator key, a forged key — and then the captured output is
 * searched for each. The same lines must carry tenant and session ids, as JSON.
 */
import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LIMITS } from '../../host/limits.ts';
import { compilePlugin } from '../../host/sandbox/module-cache.ts';
import { loadBuiltinModules, type PluginModules } from '../../host/sandbox/session-plugins.ts';
import { buildPlugin } from '../../scripts/build-plugins.ts';
import { within } from '../helpers/deadline.ts';
import { OPERATOR_KEY, startTestHost, type TestHost } from '../helpers/host.ts';
import { mustOpen } from '../helpers/raw-socket.ts';
import { eventually } from '../helpers/wait.ts';

const SECRETS = {
  document: 'quokka-ledger-5519',
  title: 'Marmot handbook 7731',
  systemPrompt: 'Persona-ibex-2203',
  question: 'narwhal-query-6620',
  comment: 'pangolin-comment-9047',
  badFrame: 'axolotl-frame-3318',
  forgedKey: 'ctx_0123456789abcdef_forgedforgedforgedforgedforgedforgedforge',
};
/** What the failures fixture passes to Extism's error_set (test/fixtures/plugins/failures.ts). */
const PLUGIN_ERROR_TEXT = 'secret tenant text in a plugin error';

const lines: string[] = [];
let host: TestHost;
let failing: PluginModules;
let tenant: { id: string; apiKey: string };
let faulty: { id: string; apiKey: string };
let ticket = '';
let sessionId = '';

test.before(async () => {
  const { outFile } = await buildPlugin('test/fixtures/plugins/failures.ts', 'build/test/plugins/failures.wasm');
  failing = { retrieval: await compilePlugin(await readFile(outFile)), prompt: (await loadBuiltinModules()).prompt };
  host = await startTestHost({
    logger: pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) }),
    pluginModulesFor: (tenantId) => (tenantId === faulty?.id ? failing : undefined),
  });
});
test.after(async () => {
  await host.close();
});

test('a session full of secrets', async () => {
  tenant = await host.createTenant('Secretive');
  faulty = await host.createTenant('Faulty');
  await host.ingest(tenant.apiKey, [{ id: 'ledger', title: SECRETS.title, text: `The ledger code is ${SECRETS.document}. It opens the archive.` }]);
  assert.is((await host.request('PATCH', '/v1/config', tenant.apiKey, { systemPrompt: `You are ${SECRETS.systemPrompt}.` })).status, 200);
  ticket = (await host.request('POST', '/v1/tickets', tenant.apiKey, {})).body.ticket;
  assert.is((await host.request('GET', '/v1/config', SECRETS.forgedKey)).status, 401);

  const client = await host.chat(tenant.apiKey);
  sessionId = client.session;
  const { result } = await host.ask(client, `What is the ledger code? ${SECRETS.question}`);
  assert.ok(result.answer.includes(SECRETS.document), 'the answer carries the document text, so a log of it would show');
  const rated = await host.request('GET', '/v1/asks', tenant.apiKey);
  await within(client.feedback(rated.body.asks[0].id, 1, SECRETS.comment), 'feedback');
  client.close();

  const raw = await mustOpen(host.url, tenant.apiKey);
  raw.sendFrame({ type: 'ask', id: 'bad', text: 42, note: SECRETS.badFrame });
  raw.sendFrame({ type: SECRETS.badFrame });
  raw.sendFrame({ type: 'ask', id: 'long', text: `${SECRETS.badFrame} ${'x'.repeat(LIMITS.askTextCharsMax)}` });
  for (let index = 0; index < 3; index += 1) await raw.next((frame) => frame.type === 'error', 'error frame');
  raw.close();

  const broken = await host.chat(faulty.apiKey);
  const failure = await within(broken.ask('error').result, 'failing ask').then(
    () => undefined,
    (error: { code?: string }) => error,
  );
  assert.is(failure?.code, 'PLUGIN_FAILED');
  broken.close();
  await host.request('GET', '/v1/operator/overview', OPERATOR_KEY);
  // Sessions close asynchronously after their clients: wait for every opened one's close line.
  const count = (msg: string): number => lines.filter((line) => (JSON.parse(line) as { msg?: unknown }).msg === msg).length;
  await eventually(async () => (await host.server.liveSessions()) === 0 && count('session closed') === count('session opened'), "every session's close line");
});

test('no captured line holds a secret, a key or a ticket', () => {
  const output = lines.join('');
  assert.ok(output.length > 0 && output.includes(tenant.id), 'the logs were captured');
  const planted = { ...SECRETS, pluginError: PLUGIN_ERROR_TEXT, apiKey: tenant.apiKey, faultyKey: faulty.apiKey, ticket, operatorKey: OPERATOR_KEY };
  for (const [what, secret] of Object.entries(planted)) {
    assert.ok(secret.length > 8, what);
    assert.not.ok(output.includes(secret), `the ${what} appears in the logs`);
  }
  // The key's secret part alone must not appear either (the tenant and key ids before it may).
  // Keys are `ctx_<16 hex tenant>_<16 hex id>_<43-char secret>`; the secret itself may contain '_',
  // so cut by position.
  const secretPart = tenant.apiKey.slice('ctx_0123456789abcdef_0123456789abcdef_'.length);
  assert.equal(secretPart.length, 43);
  assert.not.ok(output.includes(secretPart), "the tenant key's secret part appears in the logs");
});

test('every line is JSON; session lines carry the tenant and session ids', () => {
  const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.ok(parsed.every((line) => typeof line['level'] === 'number' && typeof line['time'] === 'number' && typeof line['msg'] === 'string'));
  const mine = parsed.filter((line) => line['session'] === sessionId);
  assert.equal(mine.map((line) => line['msg']).filter((msg) => msg === 'session opened' || msg === 'session closed' || msg === 'ask answered'), ['session opened', 'ask answered', 'session closed']);
  assert.ok(mine.every((line) => line['tenant'] === tenant.id));
  const failed = parsed.find((line) => line['msg'] === 'ask failed' && line['code'] === 'PLUGIN_FAILED');
  assert.equal([failed?.['tenant'], typeof failed?.['session'], failed?.['level']], [faulty.id, 'string', 40]);
});

test("the plugin's own message goes to its tenant's plugin log instead, and only there", async () => {
  const own = await host.request('GET', '/v1/plugins/log', faulty.apiKey);
  assert.ok(own.body.lines.some((line: any) => line.slot === 'retrieval' && line.level === 'error' && line.message.includes(PLUGIN_ERROR_TEXT)), JSON.stringify(own.body));
  const other = await host.request('GET', '/v1/plugins/log', tenant.apiKey);
  assert.not.ok(JSON.stringify(other.body).includes(PLUGIN_ERROR_TEXT));
  const line = lines.map((text) => JSON.parse(text)).find((parsed) => parsed.msg === 'plugin log line' && parsed.tenant === faulty.id);
  assert.equal([line?.slot, line?.level, line?.chars > 0], ['retrieval', 50, true]);
});

test.run();
