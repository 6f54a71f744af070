/**
 * A whole fleet on one machine, on loopback: HAProxy and N hosts (each a real `host/main.ts`
 * process with its own DATA_DIR and FLEET_HOST name), steered by a controller in this process. The
 * `npm run fleet` script, the fleet tests and the fleet benchmark all start it here, the same way.
 *
 * Every process it starts is its child and is stopped by {@link LocalFleet.stop}; should this
 * process end without calling it, an exit handler kills them, and each host also exits by itself
 * when its IPC channel to this process closes, so nothing is left running or listening.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostError } from '../errors.ts';
import type { HostLogger } from '../log.ts';
import { FleetController, type ControllerOptions } from './controller.ts';
import { Router } from './haproxy.ts';

/** The repository root (host/main.ts is started from there). */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** How long a host may take to start (it loads and meters the built-in plugins; slow on a busy machine). */
const HOST_START_MS_MAX = 180_000;
/** How long a host may take to stop after SIGTERM before it is killed. */
const HOST_STOP_MS_MAX = 20_000;

/** What starting a local fleet needs. */
export interface LocalFleetOptions {
  /** Root of everything it writes: `hosts/<name>` (each host's DATA_DIR), `router/`, `controller/`. */
  dir: string;
  /** The hosts' names (default h1, h2, h3). */
  names?: readonly string[];
  /** The hosts' operator key (and the controller API's). */
  operatorKey: string;
  /** The router's port (default: a free one). */
  routerPort?: number;
  /** Cell processes per host (WORKERS; default 1, to save memory). */
  workers?: number;
  /** The hosts' LOG_LEVEL (default warn); their logs go to `hosts/<name>.log`. */
  hostLogLevel?: string;
  /** More environment for every host (MODEL_URL, say). */
  hostEnv?: Readonly<Record<string, string>>;
  /** Health check interval of the router (default 1,000 ms). */
  checkIntervalMs?: number;
  /** Test hook, passed to the controller (see ControllerOptions.afterStep). */
  afterStep?: ControllerOptions['afterStep'];
  logger?: HostLogger;
}

/** One host process of the fleet. */
export interface LocalHost {
  readonly name: string;
  readonly dataDir: string;
  readonly logPath: string;
  /** Its URL (the port stays the same across restarts). */
  readonly url: string;
  readonly port: number;
  /** Its supervisor's pid while it runs. */
  readonly pid: number | undefined;
  /** Starts it again on the same port and data (after a kill or stop). */
  start(): Promise<void>;
  /** Stops it gracefully (SIGTERM: sessions close with 1012). */
  stop(): Promise<void>;
  /** Kills it at once (SIGKILL, as a crash would); its cells exit with it. */
  kill(): Promise<void>;
}

/** A running local fleet. */
export interface LocalFleet {
  readonly dir: string;
  readonly router: Router;
  readonly hosts: readonly LocalHost[];
  /** The controller (replace it with {@link reopenController} to stand for a restarted one). */
  readonly controller: FleetController;
  host(name: string): LocalHost;
  /** Drops the current controller object and opens a new one on the same journal, as a restart would. */
  reopenController(afterStep?: ControllerOptions['afterStep']): Promise<FleetController>;
  /** Stops the controller, the hosts and HAProxy; resolves once every process has exited. */
  stop(): Promise<void>;
}

/** Processes started here and not yet ended: killed by the exit handler if the fleet is not stopped. */
const children = new Set<ChildProcess>();
let exitHandlerInstalled = false;
function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const orphan of children) orphan.kill('SIGKILL');
  });
}

/**
 * Starts HAProxy and the hosts, and opens the controller (which learns the placement and routes).
 * @throws {HostError} CONFIG_INVALID when a host or HAProxy does not start (everything started is stopped).
 */
export async function startLocalFleet(options: LocalFleetOptions): Promise<LocalFleet> {
  const names = options.names ?? ['h1', 'h2', 'h3'];
  mkdirSync(join(options.dir, 'hosts'), { recursive: true, mode: 0o700 });
  const hosts = names.map((name) => localHost(name, options));
  const router = new Router({
    dir: join(options.dir, 'router'),
    bindHost: '127.0.0.1',
    bindPort: options.routerPort ?? (await freePort()),
    onProcess: track,
    ...(options.checkIntervalMs === undefined ? {} : { checkIntervalMs: options.checkIntervalMs }),
  });
  let controller: FleetController | undefined;
  const stopAll = async (): Promise<void> => {
    controller?.close();
    await Promise.all(hosts.map((host) => host.stop()));
    await router.stop();
  };
  try {
    await Promise.all(hosts.map((host) => host.start()));
    await router.start(
      hosts.map((host) => ({ name: host.name, address: `127.0.0.1:${host.port}` })),
      [],
      [],
    );
    controller = await openController(options, router, hosts, options.afterStep);
  } catch (error) {
    await stopAll();
    throw error;
  }
  let current = controller;
  return {
    dir: options.dir,
    router,
    hosts,
    get controller() {
      return current;
    },
    host(name) {
      const host = hosts.find((candidate) => candidate.name === name);
      if (host === undefined) throw new Error(`no local host named ${name}`);
      return host;
    },
    async reopenController(afterStep) {
      current.close();
      current = await openController(options, router, hosts, afterStep);
      controller = current;
      return current;
    },
    stop: stopAll,
  };
}

function openController(options: LocalFleetOptions, router: Router, hosts: readonly LocalHost[], afterStep: ControllerOptions['afterStep']): Promise<FleetController> {
  return FleetController.open({
    stateDir: join(options.dir, 'controller'),
    hosts: hosts.map((host) => ({ name: host.name, url: host.url })),
    operatorKey: options.operatorKey,
    router,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(afterStep === undefined ? {} : { afterStep }),
  });
}

function localHost(name: string, options: LocalFleetOptions): LocalHost {
  const dataDir = join(options.dir, 'hosts', name);
  const logPath = join(options.dir, 'hosts', `${name}.log`);
  let child: ChildProcess | undefined;
  let port = 0;
  const alive = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  const ended = (): Promise<void> => (alive() ? new Promise<void>((done) => child?.once('exit', () => done())) : Promise.resolve());
  return {
    name,
    dataDir,
    logPath,
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get pid() {
      return alive() ? child?.pid : undefined;
    },
    async start() {
      if (alive()) return;
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      const log = openSync(logPath, 'a');
      try {
        child = spawn(process.execPath, ['--disable-wasm-trap-handler', '--import', 'tsx', 'host/main.ts'], {
          cwd: REPO_ROOT,
          env: {
            ...process.env,
            ...options.hostEnv,
            PORT: String(port),
            HOST: '127.0.0.1',
            DATA_DIR: dataDir,
            WORKERS: String(options.workers ?? 1),
            CTX_OPERATOR_KEY: options.operatorKey,
            CTX_DEMO: 'false',
            CTX_MASTER_KEY: '',
            CTX_CONFIG: '',
            LOG_LEVEL: options.hostLogLevel ?? 'warn',
            FLEET_HOST: name,
          },
          stdio: ['ignore', 'pipe', log, 'ipc'],
        });
      } finally {
        closeSync(log);
      }
      track(child);
      port = await listeningPort(child, name);
    },
    async stop() {
      if (!alive()) return;
      const exited = ended();
      child?.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), HOST_STOP_MS_MAX);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (!alive()) return;
      const exited = ended();
      child?.kill('SIGKILL');
      await exited;
    },
  };
}

/** Reads a starting host's stdout until it says where it listens. */
function listeningPort(child: ChildProcess, name: string): Promise<number> {
  return new Promise<number>((resolvePort, reject) => {
    let text = '';
    const timer = setTimeout(() => fail(`did not start within ${HOST_START_MS_MAX / 1000} s`), HOST_START_MS_MAX);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
      if (match === null) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      // Keep reading (and dropping) what it prints, so its writes never block.
      child.stdout?.off('data', onData);
      child.stdout?.resume();
      resolvePort(Number(match[1]));
    };
    const onExit = (code: number | null): void => fail(`exited (code ${code}) before it listened`);
    function fail(why: string): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      child.kill('SIGKILL');
      reject(new HostError('CONFIG_INVALID', `fleet host ${name} ${why}; see its log`));
    }
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** A TCP port free on loopback now (a race with other processes is possible and rare). */
export function freePort(): Promise<number> {
  return new Promise<number>((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}
