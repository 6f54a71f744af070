/**
 * The HAProxy adapter: the only file that writes HAProxy's configuration and map files, runs its
 * process, or speaks its runtime API (the admin socket). The fleet routes with HAProxy, not with a
 * balancer of its own:
 *
 * - Every HTTP request and WebSocket upgrade is routed by the tenant it names — from
 *   `Authorization: Bearer ctx_<tenant hex>_…`, from `?ticket=tkt_<tenant hex>_…`, or from an
 *   operator path `/v1/tenants/t_<tenant hex>/…` — looked up in a map (tenant hex → host name),
 *   which picks the host's backend. The map is split in 16 files by the tenant's first hex digit
 *   (`tenants-0.map` … `tenants-f.map`): HAProxy 2.6's `set map` walks its whole map, which costs
 *   ~125 ms at a million entries and holds one of its threads meanwhile; a sixteenth of that is
 *   ~8 ms (figures in the README). An API key of the legacy shape (`ctx_<key id>_<secret>`)
 *   names no tenant; it is looked up by its key id in `legacy-keys.map`. A request naming no tenant
 *   (health, pages, operator routes for the whole host) goes to any healthy host.
 * - The maps change at run time over the admin socket (`set map`, `add map`), and are also written
 *   to disk, so a restarted HAProxy starts from the current placement.
 * - A host that no longer serves a tenant answers 421 with `ctx-tenant-host: <where it went>`;
 *   HAProxy writes that into its map on the way out (`http-response set-map`), so the client's
 *   retry already reaches the right host even before the controller corrects a stale entry.
 * - Health checks: each host's `/healthz`; `any` only sends to hosts that report `"ok":true`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';

/** The HAProxy binary (Debian's `haproxy` package). */
export const HAPROXY_BINARY = process.env['HAPROXY_BIN'] ?? '/usr/sbin/haproxy';

/** A host as the router knows it: its fleet name and the address its supervisor listens on. */
export interface RouterHost {
  name: string;
  /** `host:port` of the host's HTTP/WebSocket listener. */
  address: string;
}

/** Where the router listens and keeps its files. */
export interface RouterOptions {
  /** Directory of the configuration, the maps, the admin socket and the log. */
  dir: string;
  /** Interface and port the router listens on for clients. */
  bindHost: string;
  bindPort: number;
  /** Health check interval in milliseconds (default 1,000). */
  checkIntervalMs?: number;
  /** Connections HAProxy accepts at once (default 8,000; it needs twice as many file descriptors). */
  maxConnections?: number;
  /** Told of every HAProxy process started (the local fleet tracks them to end them on exit). */
  onProcess?: (child: ChildProcess) => void;
}

/** A server's state as HAProxy's health checks see it. */
export interface RouterServerState {
  backend: string;
  server: string;
  /** `UP`, `DOWN`, `MAINT`, … (HAProxy's words). */
  status: string;
}

/** The tenant map's shards: one per first hex digit of the tenant id. */
const MAP_SHARDS = [...'0123456789abcdef'];
/** `set map` commands sent on one admin connection by {@link Router.routeTenants}. */
const ROUTE_BATCH = 100;
/** How long a runtime API command may take before it counts as failed. */
const COMMAND_MS_MAX = 5_000;
/** The map files are rewritten at most this often: the runtime API has the change at once. */
const MAP_WRITE_DELAY_MS = 200;

/** The router: HAProxy's files, process and runtime API. A stateful resource: call `stop()`. */
export class Router {
  readonly options: RouterOptions;
  readonly configPath: string;
  /** The tenant map's shard files, by the tenant's first hex digit. */
  readonly tenantsMapPaths: readonly string[];
  readonly legacyMapPath: string;
  readonly adminSocketPath: string;
  readonly logPath: string;
  #process: ChildProcess | undefined;
  /** Every HAProxy started here and not yet exited: a soft-stopped one keeps its open tunnels until stop(). */
  readonly #running = new Set<ChildProcess>();
  #hosts: RouterHost[] = [];
  #pendingMaps: { tenants: Iterable<[string, string]>; legacy: Iterable<[string, string]> } | undefined;
  /** Map files whose entries changed at run time since they were last written (or all of them). */
  readonly #dirty = new Set<string>();
  #mapTimer: NodeJS.Timeout | undefined;

  constructor(options: RouterOptions) {
    this.options = options;
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    this.configPath = join(options.dir, 'haproxy.cfg');
    this.tenantsMapPaths = MAP_SHARDS.map((digit) => join(options.dir, `tenants-${digit}.map`));
    this.legacyMapPath = join(options.dir, 'legacy-keys.map');
    this.adminSocketPath = join(options.dir, 'admin.sock');
    this.logPath = join(options.dir, 'haproxy.log');
  }

  /** The router's client URL. */
  get url(): string {
    return `http://${this.options.bindHost}:${this.options.bindPort}`;
  }

  /** The HAProxy process id, while it runs. */
  get pid(): number | undefined {
    return this.#process?.exitCode === null ? this.#process.pid : undefined;
  }

  /**
   * Writes the configuration and the maps, checks the configuration with `haproxy -c`, and starts
   * HAProxy in the foreground as a child of this process; resolves once its admin socket answers.
   * @throws {HostError} CONFIG_INVALID when HAProxy refuses the configuration or does not start.
   */
  async start(hosts: readonly RouterHost[], tenants: Iterable<[string, string]>, legacy: Iterable<[string, string]>): Promise<void> {
    this.#writeMaps(tenants, legacy);
    this.#writeConfig(hosts);
    rmSync(this.adminSocketPath, { force: true });
    this.#process = this.#spawn([]);
    await this.#waitForSocket();
  }

  /**
   * Replaces the host list (a host added or removed): a new configuration, then a soft reload — a
   * new HAProxy takes over the listener and the old one finishes its connections (`-sf`). The maps
   * on disk are written first, so the new process starts from the current placement.
   * @throws {HostError} CONFIG_INVALID when HAProxy refuses the new configuration (the old one keeps running).
   */
  async reload(hosts: readonly RouterHost[]): Promise<void> {
    this.flushMaps();
    this.#writeConfig(hosts);
    const old = this.#process;
    this.#process = this.#spawn(old?.pid === undefined ? [] : ['-sf', String(old.pid)]);
    await this.#waitForSocket();
  }

  /**
   * Stops HAProxy — the current process and any a reload soft-stopped that still carries tunnels —
   * with SIGTERM (it closes its listeners and connections at once), and waits for them to exit.
   */
  async stop(): Promise<void> {
    this.flushMaps();
    this.#process = undefined;
    await Promise.all(
      [...this.#running].map(async (child) => {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    rmSync(this.adminSocketPath, { force: true });
  }

  /** The hosts of the current configuration. */
  get hosts(): readonly RouterHost[] {
    return this.#hosts;
  }

  /**
   * Routes a tenant to a host at once (runtime API: `set map`, or `add map` for a new entry).
   * @throws {HostError} FLEET_HOST_UNAVAILABLE when the admin socket does not answer or refuses.
   */
  async routeTenant(tenantId: string, host: string): Promise<void> {
    await this.#setEntry(this.tenantsMapPathOf(tenantId), tenantHex(tenantId), host);
  }

  /** The shard file of the tenant map that holds `tenantId` (or its 16 hex characters). */
  tenantsMapPathOf(tenantId: string): string {
    return this.tenantsMapPaths[MAP_SHARDS.indexOf(tenantHex(tenantId).charAt(0))] ?? (this.tenantsMapPaths[0] as string);
  }

  /**
   * Routes a tenant that is new to the map (just created): `add map` only, which is cheap whatever
   * the map's size, where `set map` walks the whole map in HAProxy 2.6 (README, Fleet: figures).
   * @throws {HostError} FLEET_HOST_UNAVAILABLE when the admin socket does not answer or refuses.
   */
  async routeNewTenant(tenantId: string, host: string): Promise<void> {
    this.#dirty.add(this.tenantsMapPathOf(tenantId));
    const added = await this.command(`add map ${this.tenantsMapPathOf(tenantId)} ${tenantHex(tenantId)} ${host}`);
    if (added.trim() !== '') throw new HostError('FLEET_HOST_UNAVAILABLE', `the router refused to add ${tenantId} to its map: ${added.trim().slice(0, 200)}`);
  }

  /**
   * Routes many tenants at once: `set map` commands sent 100 to a connection (the runtime API runs
   * `;`-separated commands in order); a batch in which an entry was new is redone one by one, so
   * that new entries are added.
   * @throws {HostError} FLEET_HOST_UNAVAILABLE as {@link routeTenant}.
   */
  async routeTenants(entries: Iterable<[string, string]>): Promise<void> {
    let batch: [string, string][] = [];
    const send = async (): Promise<void> => {
      for (const [tenant] of batch) this.#dirty.add(this.tenantsMapPathOf(tenant));
      const answer = await this.command(batch.map(([tenant, host]) => `set map ${this.tenantsMapPathOf(tenant)} ${tenantHex(tenant)} ${host}`).join(';'));
      if (answer.trim() !== '') for (const [tenant, host] of batch) await this.routeTenant(tenant, host);
      batch = [];
    };
    for (const entry of entries) {
      batch.push(entry);
      if (batch.length === ROUTE_BATCH) await send();
    }
    if (batch.length > 0) await send();
  }

  /** Routes keys of the legacy shape (by key id) to a host at once. */
  async routeLegacyKeys(keyIds: readonly string[], host: string): Promise<void> {
    for (const keyId of keyIds) await this.#setEntry(this.legacyMapPath, keyId, host);
  }

  /**
   * Sets one entry of the tenant map without the controller's knowledge (tests make a stale entry
   * with it; operators can pin a tenant by hand).
   */
  async setTenantEntryRaw(tenantHexOrId: string, host: string): Promise<void> {
    await this.#setEntry(this.tenantsMapPathOf(tenantHexOrId), tenantHex(tenantHexOrId), host);
  }

  /** The tenant map as HAProxy holds it now: tenant id → host name. */
  async tenantRoutes(): Promise<Map<string, string>> {
    const routes = new Map<string, string>();
    for (const path of this.tenantsMapPaths) {
      for (const line of (await this.command(`show map ${path}`)).split('\n')) {
        const [, key, value] = line.trim().split(/\s+/);
        if (key !== undefined && value !== undefined) routes.set(`t_${key}`, value);
      }
    }
    return routes;
  }

  /** Every server's health-check state (`show stat`). */
  async serverStates(): Promise<RouterServerState[]> {
    const text = await this.command('show stat');
    const lines = text.split('\n').filter((line) => line.length > 0);
    const header = (lines[0] ?? '').replace(/^# /, '').split(',');
    const column = (name: string): number => header.indexOf(name);
    const states: RouterServerState[] = [];
    for (const line of lines.slice(1)) {
      const fields = line.split(',');
      const server = fields[column('svname')] ?? '';
      if (server === 'FRONTEND' || server === 'BACKEND') continue;
      states.push({ backend: fields[column('pxname')] ?? '', server, status: fields[column('status')] ?? '' });
    }
    return states;
  }

  /**
   * Writes the map files from the whole placement, coalescing calls that come in a burst: the
   * runtime API already has each change; the files are what a restarted HAProxy starts from. Only
   * the files whose entries changed at run time are rewritten (a move rewrites one shard), or every
   * one with `all` (the placement was relearned).
   */
  saveMaps(tenants: Iterable<[string, string]>, legacy: Iterable<[string, string]>, all = false): void {
    if (all) for (const path of [...this.tenantsMapPaths, this.legacyMapPath]) this.#dirty.add(path);
    this.#pendingMaps = { tenants, legacy };
    if (this.#mapTimer !== undefined) return;
    this.#mapTimer = setTimeout(() => this.flushMaps(), MAP_WRITE_DELAY_MS);
    this.#mapTimer.unref();
  }

  /** Writes pending map files now. */
  flushMaps(): void {
    clearTimeout(this.#mapTimer);
    this.#mapTimer = undefined;
    const pending = this.#pendingMaps;
    this.#pendingMaps = undefined;
    if (pending === undefined) return;
    const dirty = new Set(this.#dirty);
    this.#dirty.clear();
    this.#writeMaps(pending.tenants, pending.legacy, dirty);
  }

  /**
   * Sends one runtime API command (or several separated by `;`) and returns HAProxy's answer.
   * @throws {HostError} FLEET_HOST_UNAVAILABLE when the admin socket does not answer in time.
   */
  command(line: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const socket = connect(this.adminSocketPath);
      let answer = '';
      const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${COMMAND_MS_MAX} ms`)), COMMAND_MS_MAX);
      socket.on('connect', () => socket.end(`${line}\n`));
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
      socket.on('error', (error) => {
        clearTimeout(timer);
        reject(new HostError('FLEET_HOST_UNAVAILABLE', `the router's admin socket ${this.adminSocketPath} did not answer: ${error.message}`));
      });
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(answer);
      });
    });
  }

  async #setEntry(map: string, key: string, value: string): Promise<void> {
    this.#dirty.add(map);
    const set = await this.command(`set map ${map} ${key} ${value}`);
    if (/not found/i.test(set)) {
      const added = await this.command(`add map ${map} ${key} ${value}`);
      if (added.trim() !== '') throw new HostError('FLEET_HOST_UNAVAILABLE', `the router refused to add ${key} to its map: ${added.trim().slice(0, 200)}`);
    } else if (set.trim() !== '') {
      throw new HostError('FLEET_HOST_UNAVAILABLE', `the router refused to set ${key} in its map: ${set.trim().slice(0, 200)}`);
    }
  }

  #spawn(extra: string[]): ChildProcess {
    const log = openSync(this.logPath, 'a');
    try {
      const child = spawn(HAPROXY_BINARY, ['-f', this.configPath, '-db', ...extra], { stdio: ['ignore', log, log] });
      this.#running.add(child);
      child.once('exit', () => this.#running.delete(child));
      this.options.onProcess?.(child);
      return child;
    } finally {
      closeSync(log);
    }
  }

  /**
   * Waits until the admin socket is answered by the process just started — not by the one a reload
   * replaces, which answers on the same path until the new one takes it over (and, once its
   * listeners are ready, tells the old one to stop listening).
   */
  async #waitForSocket(): Promise<void> {
    const deadline = Date.now() + 10_000;
    const child = this.#process;
    while (Date.now() < deadline) {
      if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) break;
      const info = existsSync(this.adminSocketPath) ? await this.command('show info').catch(() => '') : '';
      if (new RegExp(`^Pid: ${child?.pid ?? -1}$`, 'm').test(info)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new HostError('CONFIG_INVALID', `HAProxy did not start (see ${this.logPath})`);
  }

  /** @throws {HostError} CONFIG_INVALID when `haproxy -c` refuses the configuration. */
  #writeConfig(hosts: readonly RouterHost[]): void {
    if (hosts.length > LIMITS.fleetHostsMax) throw new HostError('FLEET_INVALID', `a fleet has at most ${LIMITS.fleetHostsMax} hosts, got ${hosts.length}`);
    if (!existsSync(HAPROXY_BINARY)) {
      throw new HostError('CONFIG_INVALID', `HAProxy is not installed at ${HAPROXY_BINARY}: install Debian's haproxy package (apt-get install haproxy), or set HAPROXY_BIN`);
    }
    const text = routerConfig(this, hosts);
    const next = `${this.configPath}.next`;
    writeFileSync(next, text, { mode: 0o600 });
    const check = spawnSync(HAPROXY_BINARY, ['-c', '-f', next], { encoding: 'utf8' });
    if (check.status !== 0) {
      const alerts = `${check.stderr ?? ''}${check.stdout ?? ''}`.split('\n').filter((line) => /ALERT|error/i.test(line));
      throw new HostError('CONFIG_INVALID', `HAProxy refuses the generated configuration: ${alerts.join(' ').slice(0, 800) || (check.error?.message ?? `exit ${check.status}`)}`);
    }
    renameSync(next, this.configPath);
    this.#hosts = [...hosts];
  }

  /** Writes the map files in `only` (every one without it) from the whole placement. */
  #writeMaps(tenants: Iterable<[string, string]>, legacy: Iterable<[string, string]>, only?: ReadonlySet<string>): void {
    const wanted = (path: string): boolean => only === undefined || only.has(path);
    const shards = this.tenantsMapPaths.map(() => [] as string[]);
    const writing = this.tenantsMapPaths.map(wanted);
    for (const [tenant, host] of tenants) {
      const shard = MAP_SHARDS.indexOf(tenantHex(tenant).charAt(0));
      if (writing[shard] === true) shards[shard]?.push(`${tenantHex(tenant)} ${host}\n`);
    }
    this.tenantsMapPaths.forEach((path, index) => {
      if (writing[index] === true) writeAtomically(path, (shards[index] ?? []).join(''));
    });
    if (wanted(this.legacyMapPath)) writeAtomically(this.legacyMapPath, mapText(legacy, (key) => key));
  }
}

/**
 * The HAProxy configuration for `hosts`. Tenant ids in the map lose their `t_` (the map is keyed by
 * the 16 hex characters every credential carries). Values of the map are host names; an entry naming
 * no known host falls through to `any`, where that host (if any) answers TENANT_MOVED.
 */
export function routerConfig(router: Pick<Router, 'options' | 'adminSocketPath' | 'tenantsMapPaths' | 'legacyMapPath'>, hosts: readonly RouterHost[]): string {
  const { bindHost, bindPort } = router.options;
  const inter = router.options.checkIntervalMs ?? 1_000;
  const lines = [
    '# Written by host/fleet/haproxy.ts: the fleet controller rewrites it; do not edit.',
    'global',
    `  stats socket ${router.adminSocketPath} mode 600 level admin`,
    // Each proxied connection holds two descriptors; HAProxy refuses to start past the FD limit.
    `  maxconn ${router.options.maxConnections ?? 8_000}`,
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  timeout connect 2s',
    // A model answer may take MODEL_TIMEOUT_MS (30 s by default, 10 min at most) before its headers.
    '  timeout client 65s',
    '  timeout server 65s',
    '  timeout http-request 10s',
    '  timeout http-keep-alive 60s',
    // An open chat (a WebSocket tunnel) stays up while it is used; the client's heartbeat keeps it so.
    '  timeout tunnel 1h',
    '  timeout client-fin 5s',
    '  timeout server-fin 5s',
    `  default-server check inter ${inter}ms fall 2 rise 1`,
    'frontend ctx',
    `  bind ${bindHost}:${bindPort}`,
    '  http-request set-var(txn.bearer) req.hdr(authorization),word(2,\' \') if { req.hdr(authorization) -m beg "Bearer " }',
    // A key that names its tenant: ctx_<tenant hex>_<key id>_<secret>.
    '  http-request set-var(txn.hex) var(txn.bearer),field(2,_) if { var(txn.bearer) -m reg ^ctx_[0-9a-f]{16}_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$ }',
    // A chat ticket: tkt_<tenant hex>_<random>.
    '  http-request set-var(txn.hex) url_param(ticket),field(2,_) if !{ var(txn.hex) -m found } { url_param(ticket) -m reg ^tkt_[0-9a-f]{16}_[A-Za-z0-9_-]+$ }',
    // An operator path naming a tenant: /v1/tenants/t_<tenant hex>[/…].
    '  http-request set-var(txn.hex) path,field(4,/),regsub(^t_,) if !{ var(txn.hex) -m found } { path -m reg ^/v1/tenants/t_[0-9a-f]{16}(/|$) }',
    ...router.tenantsMapPaths.map((path, index) => `  http-request set-var(txn.host) var(txn.hex),map(${path}) if { var(txn.hex) -m beg ${MAP_SHARDS[index]} }`),
    // A key of the legacy shape, ctx_<key id>_<secret>, by its key id.
    `  http-request set-var(txn.host) var(txn.bearer),field(2,_),map(${router.legacyMapPath}) if !{ var(txn.host) -m found } { var(txn.bearer) -m reg ^ctx_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$ }`,
    // A host that no longer serves the tenant says where it went: correct the map on the way out.
    ...router.tenantsMapPaths.map(
      (path, index) => `  http-response set-map(${path}) %[var(txn.hex)] %[res.hdr(ctx-tenant-host)] if { status 421 } { var(txn.hex) -m beg ${MAP_SHARDS[index]} } { res.hdr(ctx-tenant-host) -m reg ^[a-z0-9][a-z0-9-]{0,31}$ }`,
    ),
    '  use_backend host_%[var(txn.host)] if { var(txn.host) -m found }',
    '  default_backend any',
  ];
  for (const host of hosts) {
    // A tenant's requests go to its host while that host answers at all (a cell restarting makes it
    // report ok:false for a moment, and the host itself then waits for the cell).
    lines.push(`backend host_${host.name}`, '  option httpchk GET /healthz', '  http-check expect status 200', `  server ${host.name} ${host.address}`);
  }
  lines.push('backend any', '  balance roundrobin', '  option httpchk GET /healthz', '  http-check expect string \\"ok\\":true');
  for (const host of hosts) lines.push(`  server ${host.name} ${host.address}`);
  return `${lines.join('\n')}\n`;
}

/** The map key of a tenant: its 16 hex characters (a `t_` prefix is dropped). */
function tenantHex(tenantId: string): string {
  return tenantId.startsWith('t_') ? tenantId.slice(2) : tenantId;
}

function mapText(entries: Iterable<[string, string]>, keyOf: (key: string) => string): string {
  const parts: string[] = [];
  for (const [key, value] of entries) parts.push(`${keyOf(key)} ${value}\n`);
  return parts.join('');
}

function writeAtomically(path: string, text: string): void {
  const next = `${path}.next`;
  writeFileSync(next, text, { mode: 0o600 });
  renameSync(next, path);
}
