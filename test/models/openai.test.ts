import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostError } from '../../host/errors.ts';
import { LIMITS } from '../../host/limits.ts';
import type { ModelRequest } from '../../host/models/model.ts';
import { createOpenAIModel } from '../../host/models/openai.ts';
import { within } from '../helpers/deadline.ts';
import {
  assertHostError,
  closedPort,
  collect,
  deltaEvent,
  pause,
  startEventStream,
  withProvider,
} from './provider-server.ts';

const API_KEY = 'sk-test-4f1c9e-secret';
/**
 * The time limit of tests that do not test the time limit: a loaded machine may take its time, and
 * such a test must not turn into a MODEL_TIMEOUT test because of it.
 */
const PATIENT_MS = 30_000;

function request(overrides: Partial<ModelRequest> = {}): ModelRequest {
  return {
    messages: [
      { role: 'system', content: 'Answer from the context.' },
      { role: 'user', content: 'Context: refunds take 30 days.\n\nQuestion: how long do refunds take?' },
    ],
    question: 'how long do refunds take?',
    chunks: [{ chunkId: 'doc1#0', docId: 'doc1', title: 'Refunds', text: 'refunds take 30 days.' }],
    signal: new AbortController().signal,
    ...overrides,
  };
}

test('streams deltas and sends model, messages, stream:true and the bearer key', () =>
  withProvider(
    async (_request, response) => {
      startEventStream(response);
      // The first chunk carries only the role, as OpenAI and vLLM send it; a comment is a keep-alive.
      response.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { role: 'assistant' } }] })}\n\n`);
      response.write(': keep-alive\n\n');
      for (const piece of ['Refunds ', 'take ', '30 days.']) {
        response.write(deltaEvent(piece));
        await pause(2);
      }
      response.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
      response.end('data: [DONE]\n\n');
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', apiKey: API_KEY, timeoutMs: PATIENT_MS });
      assert.is(model.id, 'openai:llama3');
      const pieces = await collect(model.stream(request()));
      assert.equal(pieces, ['Refunds ', 'take ', '30 days.']);
      const received = provider.requests[0];
      assert.ok(received);
      assert.is(received.method, 'POST');
      assert.is(received.path, '/v1/chat/completions');
      assert.is(received.headers['authorization'], `Bearer ${API_KEY}`);
      assert.is(received.headers['content-type'], 'application/json');
      assert.equal(received.body, { model: 'llama3', messages: request().messages, stream: true });
    },
  ));

test('sends no Authorization header without a key', () =>
  withProvider(
    (_request, response) => {
      startEventStream(response);
      response.end(`${deltaEvent('ok')}data: [DONE]\n\n`);
    },
    async (provider) => {
      const model = createOpenAIModel({ url: `${provider.url}/`, model: 'llama3', timeoutMs: PATIENT_MS });
      assert.equal(await collect(model.stream(request())), ['ok']);
      assert.is(provider.requests[0]?.path, '/v1/chat/completions');
      assert.is(provider.requests[0]?.headers['authorization'], undefined);
    },
  ));

test('decodes events split at every awkward byte boundary, including inside UTF-8 and CRLF', () => {
  const pieces = ['Grüße ', '— 東京 ', '🙂 done'];
  // CRLF line ends, a multi-line data field and an event name, all legal SSE.
  const wire = Buffer.from(
    pieces
      .map((content, index) => {
        const json = JSON.stringify({ choices: [{ index: 0, delta: { content } }] });
        return index === 1 ? `event: message\r\ndata: ${json.slice(0, 10)}\r\ndata: ${json.slice(10)}\r\n\r\n` : `data: ${json}\r\n\r\n`;
      })
      .join('') + 'data: [DONE]\r\n\r\n',
    'utf8',
  );
  // Cut after every byte of each multi-byte character and between every \r and \n.
  const cuts: number[] = [];
  for (let index = 1; index < wire.length; index += 1) {
    const byte = wire[index] ?? 0;
    if ((byte & 0xc0) === 0x80 || byte === 0x0a || byte >= 0xc0) cuts.push(index);
  }
  return withProvider(
    async (_request, response) => {
      startEventStream(response);
      let start = 0;
      for (const cut of cuts) {
        response.write(wire.subarray(start, cut));
        start = cut;
        await pause(1);
      }
      response.end(wire.subarray(start));
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      assert.is((await collect(model.stream(request()))).join(''), pieces.join(''));
    },
  );
});

test('a stream cut midway (socket destroyed) fails with MODEL_FAILED', () =>
  withProvider(
    async (request_, response) => {
      startEventStream(response);
      // Each write handed to the kernel before the next: the client sees a whole event, then half of
      // one, then the connection lost, however slowly it reads.
      await new Promise((resolve) => response.write(deltaEvent('Refunds '), resolve));
      await new Promise((resolve) => response.write('data: {"choices":[{"delta":{"con', resolve));
      request_.socket.destroy();
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      const seen: string[] = [];
      const consume = async (): Promise<void> => {
        for await (const piece of model.stream(request())) seen.push(piece);
      };
      await assertHostError(consume(), 'MODEL_FAILED', /^model stream ended before \[DONE\]: the connection to http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions was lost$/);
      assert.equal(seen, ['Refunds ']);
    },
  ));

test('a stream that ends cleanly without [DONE] fails with MODEL_FAILED', () =>
  withProvider(
    (_request, response) => {
      startEventStream(response);
      response.end(deltaEvent('Refunds take'));
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      await assertHostError(collect(model.stream(request())), 'MODEL_FAILED', /^model stream ended before \[DONE\]$/);
    },
  ));

test('HTTP 500 fails with MODEL_FAILED naming the status and a safe excerpt, never the key', () =>
  withProvider(
    (_request, response) => {
      response.writeHead(500, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: { message: `engine crashed\n(key ${API_KEY})`, type: 'InternalError' } }));
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', apiKey: API_KEY, timeoutMs: PATIENT_MS });
      const error = await assertHostError(
        collect(model.stream(request())),
        'MODEL_FAILED',
        /^model provider at http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions returned HTTP 500: engine crashed \(key \[redacted\]\)$/,
      );
      assert.equal(error.detail, { status: 500 });
      assert.not.match(error.message, API_KEY);
    },
  ));

test('a long non-JSON error body is cut to a short excerpt', () =>
  withProvider(
    (_request, response) => {
      response.writeHead(404, { 'content-type': 'text/html' });
      response.end(`<html>${'x'.repeat(100_000)}</html>`);
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      const error = await assertHostError(collect(model.stream(request())), 'MODEL_FAILED', /returned HTTP 404: <html>x+…$/);
      assert.ok(error.message.length < 400, `message is ${error.message.length} characters`);
    },
  ));

test('a server that never answers fails with MODEL_TIMEOUT', () =>
  withProvider(
    () => {
      // Accept the request and say nothing.
    },
    async (provider) => {
      // The server never answers, so any limit is reached; the test waits for it, not for a time.
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: 150 });
      const error = await assertHostError(
        collect(model.stream(request())),
        'MODEL_TIMEOUT',
        /^model provider at http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions sent no response within 150 ms \(timeoutMs\)$/,
      );
      assert.equal(error.detail, { timeoutMs: 150 });
      await provider.connectionClosed(0);
    },
  ));

test('a server that stalls mid-answer fails with MODEL_TIMEOUT', () =>
  withProvider(
    (_request, response) => {
      startEventStream(response);
      response.write(deltaEvent('Refunds '));
    },
    async (provider) => {
      // One limit covers the whole answer, first byte included, so the first piece must arrive well
      // before it for this to be the mid-answer case: a limit 1,000 times what that takes on loopback.
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: 2_000 });
      const seen: string[] = [];
      const consume = async (): Promise<void> => {
        for await (const piece of model.stream(request())) seen.push(piece);
      };
      await assertHostError(consume(), 'MODEL_TIMEOUT', /did not finish its answer within 2000 ms \(timeoutMs\)$/);
      assert.equal(seen, ['Refunds '], 'it had started answering');
    },
  ));

test('connection refused fails with MODEL_FAILED naming the URL', async () => {
  const port = await closedPort();
  const model = createOpenAIModel({ url: `http://127.0.0.1:${port}/v1?token=query-secret`, model: 'llama3', apiKey: API_KEY, timeoutMs: PATIENT_MS });
  const error = await within(
    assertHostError(
      collect(model.stream(request())),
      'MODEL_FAILED',
      new RegExp(`^model provider at http://127\\.0\\.0\\.1:${port}/v1/chat/completions refused the connection \\(ECONNREFUSED\\)$`),
    ),
    'refused connection',
  );
  assert.not.match(error.message, API_KEY);
  assert.not.match(error.message, 'query-secret');
});

test('an error object inside the stream fails with MODEL_FAILED', () =>
  withProvider(
    (_request, response) => {
      startEventStream(response);
      response.write(deltaEvent('Refunds '));
      response.end(`data: ${JSON.stringify({ error: { message: 'CUDA out of memory', code: 500 } })}\n\n`);
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      await assertHostError(collect(model.stream(request())), 'MODEL_FAILED', /^model provider reported an error in the stream: CUDA out of memory$/);
    },
  ));

test('an event whose data is not JSON fails with MODEL_FAILED', () =>
  withProvider(
    (_request, response) => {
      startEventStream(response);
      response.end('data: {"choices": [\n\ndata: [DONE]\n\n');
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      await assertHostError(collect(model.stream(request())), 'MODEL_FAILED', /^model stream sent an event whose data is not JSON$/);
    },
  ));

test('a 200 JSON answer (stream ignored) fails with MODEL_FAILED', () =>
  withProvider(
    (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'hi' } }] }));
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      await assertHostError(collect(model.stream(request())), 'MODEL_FAILED', /answered with JSON instead of an event stream/);
    },
  ));

test('an adapter is sent as the model name (vLLM LoRA) and named in the id', () =>
  withProvider(
    (_request, response) => {
      startEventStream(response);
      response.end(`${deltaEvent('ok')}data: [DONE]\n\n`);
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      await collect(model.stream(request({ adapter: 'support-lora' })));
      await collect(model.stream(request({ model: 'mistral' })));
      await collect(model.stream(request({ model: 'mistral', adapter: 'legal-lora' })));
      assert.equal(
        provider.requests.map((received) => (received.body as { model: string }).model),
        ['support-lora', 'mistral', 'legal-lora'],
      );
      assert.is(model.idFor?.({ adapter: 'support-lora' }), 'openai:llama3@support-lora');
      assert.is(model.idFor?.({ model: 'mistral' }), 'openai:mistral');
      assert.is(model.idFor?.({ model: 'mistral', adapter: 'legal-lora' }), 'openai:mistral@legal-lora');
    },
  ));

test('an adapter name with @ is refused before anything is sent', () =>
  withProvider(
    () => assert.unreachable('no request expected'),
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      await assertHostError(collect(model.stream(request({ adapter: 'a@b' }))), 'CONFIG_INVALID', /^adapter must be 1 to 256 characters without spaces, control characters or '@'$/);
      assert.is(provider.requests.length, 0);
    },
  ));

test('aborting the signal stops the stream with its reason and closes the connection', () =>
  withProvider(
    (_request, response) => {
      startEventStream(response);
      response.write(deltaEvent('Refunds '));
      // Then stall: only the abort can end this answer.
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      const controller = new AbortController();
      const reason = new Error('ask cancelled');
      const seen: string[] = [];
      try {
        for await (const piece of model.stream(request({ signal: controller.signal }))) {
          seen.push(piece);
          controller.abort(reason);
        }
        assert.unreachable('the stream should throw');
      } catch (error) {
        assert.is(error, reason);
      }
      assert.equal(seen, ['Refunds ']);
      await provider.connectionClosed(0);
    },
  ));

test('an already aborted signal sends nothing', () =>
  withProvider(
    () => assert.unreachable('no request expected'),
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      const controller = new AbortController();
      controller.abort(new Error('gone'));
      try {
        await collect(model.stream(request({ signal: controller.signal })));
        assert.unreachable('the stream should throw');
      } catch (error) {
        assert.instance(error, Error);
        assert.is((error as Error).message, 'gone');
      }
      assert.is(provider.requests.length, 0);
    },
  ));

test('breaking out of the loop early releases the connection', () =>
  withProvider(
    (_request, response) => {
      startEventStream(response);
      response.write(deltaEvent('Refunds '));
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      for await (const piece of model.stream(request())) {
        assert.is(piece, 'Refunds ');
        break;
      }
      await provider.connectionClosed(0);
    },
  ));

test('close() fails answers in flight and refuses new ones', () =>
  withProvider(
    (_request, response) => {
      startEventStream(response);
      response.write(deltaEvent('Refunds '));
    },
    async (provider) => {
      const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
      const consume = async (): Promise<void> => {
        for await (const _piece of model.stream(request())) await model.close?.();
      };
      await assertHostError(consume(), 'MODEL_FAILED', /^model client closed while an answer was streaming$/);
      await assertHostError(collect(model.stream(request())), 'MODEL_FAILED', /^model client is closed$/);
    },
  ));

function answerOfLength(chars: number) {
  return async (_request: unknown, response: import('node:http').ServerResponse): Promise<void> => {
    startEventStream(response);
    for (let sent = 0; sent < chars; sent += 1_000) response.write(deltaEvent('a'.repeat(Math.min(1_000, chars - sent))));
    response.end('data: [DONE]\n\n');
  };
}

test(`an answer of exactly answerCharsMax (${LIMITS.answerCharsMax}) characters passes`, () =>
  withProvider(answerOfLength(LIMITS.answerCharsMax), async (provider) => {
    const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
    assert.is((await collect(model.stream(request()))).join('').length, LIMITS.answerCharsMax);
  }));

test('an answer one character over answerCharsMax fails with MODEL_FAILED naming the limit', () =>
  withProvider(answerOfLength(LIMITS.answerCharsMax + 1), async (provider) => {
    const model = createOpenAIModel({ url: provider.url, model: 'llama3', timeoutMs: PATIENT_MS });
    const error = await assertHostError(
      collect(model.stream(request())),
      'MODEL_FAILED',
      new RegExp(`^model answer exceeds ${LIMITS.answerCharsMax} characters \\(answerCharsMax\\)$`),
    );
    assert.equal(error.detail, { limit: 'answerCharsMax' });
  }));

test('options are validated at creation', () => {
  const valid = { url: 'http://127.0.0.1:8000/v1', model: 'llama3', timeoutMs: LIMITS.modelTimeoutMsMax };
  assert.is(createOpenAIModel(valid).id, 'openai:llama3');
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ ...valid, timeoutMs: LIMITS.modelTimeoutMsMax + 1 }, 'timeoutMs', /^timeoutMs must be an integer from 1 to 60000 \(modelTimeoutMsMax\), got 60001$/],
    [{ ...valid, timeoutMs: 0 }, 'timeoutMs', /got 0$/],
    [{ ...valid, url: 'ftp://example.com' }, 'url', /^url must use http or https, got 'ftp:'$/],
    [{ ...valid, url: 'not a url' }, 'url', /^url must be an absolute http\(s\) URL/],
    [{ ...valid, url: 'http://user:pw@127.0.0.1/v1' }, 'url', /^url must not contain credentials; use apiKey$/],
    [{ ...valid, model: '' }, 'model', /^model must be 1 to 256 characters/],
    [{ ...valid, apiKey: 'has space' }, 'apiKey', /^apiKey must be 1 to 1024 printable ASCII characters without spaces$/],
    [{ ...valid, temperature: 0.2 }, 'temperature', /^unknown option 'temperature' for model provider 'openai'$/],
  ];
  for (const [options, setting, message] of cases) {
    try {
      createOpenAIModel(options as never);
      assert.unreachable(`expected ${setting} to be refused`);
    } catch (error) {
      assert.instance(error, HostError);
      assert.is((error as HostError).code, 'CONFIG_INVALID');
      assert.match((error as HostError).message, message);
      assert.equal((error as HostError).detail, { setting });
    }
  }
});

test.run();
