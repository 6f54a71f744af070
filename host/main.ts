/**
 * `npm start`: loads the configuration, starts the host, seeds the demo tenant on first start and
 * prints where to go next. Stops cleanly on SIGINT/SIGTERM.
 */
import { loadConfig, type HostConfig } from './config.ts';
import { HostError } from './errors.ts';
import { createLocalEmbedder } from './retrieval/embedder.ts';
import { createOpenAIEmbedder } from './retrieval/openai-embedder.ts';
import { startServer } from './server.ts';
import { TenantEnvironments } from './storage/environments.ts';
import { openRegistry } from './storage/master-rotation.ts';
import { ensureDemoTenant } from './tenants/demo.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  // The demo tenant is seeded before the cells start: this process then holds no tenant storage.
  const demo = config.demo ? await seedDemo(config) : undefined;
  const server = await startServer(config);
  const lines = [`ctx-host listening on ${server.url}  (data in ${config.dataDir}; ${config.workers} cell${config.workers === 1 ? '' : 's'})`];
  let demoKey: string | undefined;
  if (server.generatedOperatorKey !== undefined) {
    lines.push(`operator key (shown once, stored hashed; set CTX_OPERATOR_KEY to choose your own):`, `  ${server.generatedOperatorKey}`);
  }
  if (config.demo) {
    if (demo !== undefined) {
      demoKey = demo.apiKey;
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
  lines.push(...pageLines(server.url, demoKey, server.generatedOperatorKey));
  lines.push(`health: ${server.url}/healthz    WebSocket chat: ws://${config.host}:${server.port}/v1/chat`);
  process.stdout.write(lines.join('\n') + '\n');
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // Started with an IPC channel (a local fleet, host/fleet/local-fleet.ts): the host ends with its
  // launcher, so a launcher that dies leaves nothing running.
  if (process.send !== undefined) process.once('disconnect', stop);
}

/**
 * Creates the demo tenant with its documents on first start (later starts read its key back).
 * @throws {HostError} STORAGE_MASTER_KEY, EMBED_FAILED as the host's own start would.
 */
async function seedDemo(config: HostConfig): Promise<{ apiKey: string; created: boolean } | undefined> {
  const embedder =
    config.embedUrl === undefined
      ? createLocalEmbedder()
      : await createOpenAIEmbedder({ url: config.embedUrl, model: config.embedModel, timeoutMs: config.embedTimeoutMs, ...(config.embedApiKey === undefined ? {} : { apiKey: config.embedApiKey }) });
  const { registry } = openRegistry(config.dataDir, config.masterKey);
  const environments = new TenantEnvironments({ dataDir: config.dataDir, registry, openMax: 1 });
  try {
    return await ensureDemoTenant({ registry, environments }, embedder, config.dataDir);
  } finally {
    await environments.close();
    await registry.close();
  }
}

/**
 * Where the pages are. With the demo tenant (or a just-generated operator key) the links carry the
 * key in the URL fragment, which browsers never send to a server; the page moves it to the tab's
 * session storage and clears it from the address bar.
 */
function pageLines(url: string, demoKey: string | undefined, operatorKey: string | undefined): string[] {
  const withKey = (path: string, key: string | undefined): string => (key === undefined ? `${url}${path}` : `${url}${path}#key=${encodeURIComponent(key)}`);
  return [
    'in a browser:',
    `  chat page:      ${withKey('/', demoKey)}${demoKey === undefined ? '  (paste a ticket or tenant key)' : ''}`,
    `  tenant console: ${withKey('/console', demoKey)}`,
    `  operator view:  ${withKey('/operator', operatorKey)}`,
  ];
}

main().catch((error: unknown) => {
  if (error instanceof HostError) process.stderr.write(`ctx-host cannot start: [${error.code}] ${error.message}\n`);
  else process.stderr.write(`ctx-host cannot start: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
