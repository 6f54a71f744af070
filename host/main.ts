/**
 * `npm start`: loads the configuration, starts the host, seeds the demo tenant on first start and
 * prints where to go next. Stops cleanly on SIGINT/SIGTERM.
 */
import { loadConfig } from './config.ts';
import { HostError } from './errors.ts';
import { startServer } from './server.ts';
import { ensureDemoTenant } from './tenants/demo.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const server = await startServer(config);
  const lines = [`ctx-host listening on ${server.url}  (data in ${config.dataDir})`];
  if (server.generatedOperatorKey !== undefined) {
    lines.push(`operator key (shown once, stored hashed; set CTX_OPERATOR_KEY to choose your own):`, `  ${server.generatedOperatorKey}`);
  }
  if (config.demo) {
    const demo = await ensureDemoTenant(server.authority, server.embedder, config.dataDir);
    if (demo !== undefined) {
      lines.push(
        `demo tenant "Larkspur Cycles" ${demo.created ? 'created' : 'ready'}; its API key (also in ${config.dataDir}/demo.key):`,
        `  ${demo.apiKey}`,
        `chat from another terminal:`,
        `  npm run chat -- "How much does express delivery cost?"`,
      );
    }
  }
  if (!process.execArgv.includes('--disable-wasm-trap-handler')) {
    // Each plugin instance's memory reserves ~10 GiB of address space under V8's trap handler, so
    // a process runs out of address space near 6,000 sessions; `npm start` passes the flag.
    lines.push('warning: started without --disable-wasm-trap-handler: this process can host only about 6,000 sessions');
  }
  lines.push(`health: ${server.url}/healthz    WebSocket chat: ws://${config.host}:${server.port}/v1/chat`);
  process.stdout.write(lines.join('\n') + '\n');
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  if (error instanceof HostError) process.stderr.write(`ctx-host cannot start: [${error.code}] ${error.message}\n`);
  else process.stderr.write(`ctx-host cannot start: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
