/**
 * `npm run chat -- "question"`: asks the host one question and streams the answer to the terminal.
 * The key comes from CTX_API_KEY, else from the demo tenant's key file (DATA_DIR/demo.key).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatError, connect } from './node.ts';

async function main(): Promise<void> {
  const question = process.argv.slice(2).join(' ').trim();
  if (question === '') {
    process.stderr.write('usage: npm run chat -- "your question"\n');
    process.exit(2);
  }
  const url = process.env['CTX_URL'] ?? `http://${process.env['HOST'] ?? '127.0.0.1'}:${process.env['PORT'] ?? '8787'}`;
  const keyFile = join(process.env['DATA_DIR'] ?? './data', 'demo.key');
  const apiKey = process.env['CTX_API_KEY'] ?? (existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : undefined);
  if (apiKey === undefined) {
    process.stderr.write(`no API key: set CTX_API_KEY, or run "npm start" once so that ${keyFile} exists\n`);
    process.exit(2);
  }
  const client = await connect({ url, apiKey });
  const ask = client.ask(question);
  for await (const token of ask.tokens) process.stdout.write(token);
  const result = await ask.result;
  process.stdout.write(`\n\nsources (cache ${result.cache}, ${result.timings['totalMs']?.toFixed(1)} ms):\n`);
  for (const source of result.sources) process.stdout.write(`  [${source.chunkId}] ${source.title}  score ${source.score.toFixed(3)}\n`);
  client.close();
}

main().catch((error: unknown) => {
  if (error instanceof ChatError) process.stderr.write(`chat failed: [${error.code}] ${error.message}\n`);
  else process.stderr.write(`chat failed: ${(error as Error).message}\n`);
  process.exit(1);
});
