/**
 * A real fleet for a test: HAProxy on a free loopback port and three host processes (one cell
 * each, own DATA_DIR), with the controller in the test's process, all from host/fleet/local-fleet.ts.
 * `stop()` ends every process and removes the directory; the launcher's exit handler ends them if
 * a test run dies first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startLocalFleet, type LocalFleet, type LocalFleetOptions } from '../../host/fleet/local-fleet.ts';
import { within } from './deadline.ts';
import { eventually } from './wait.ts';

/** The operator key of every test fleet. */
export const FLEET_OPERATOR_KEY = 'fleet-test-operator-key-0123456789';

/** A running test fleet. */
export interface TestFleet {
  fleet: LocalFleet;
  /** The router's URL: where clients go. */
  url: string;
  /** A request through the router with a bearer key; JSON in and out. */
  request(method: string, path: string, key: string | undefined, body?: unknown): Promise<{ status: number; body: any; headers: Headers }>;
  /** An operator request straight to one host. */
  hostRequest(host: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** Hosts (that answer) holding a copy of the tenant that serves: `serving` or `frozen`. */
  servingCopies(tenantId: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** Starts a fleet in a temp directory; waits until the router sees every host up. */
export async function startTestFleet(options: Partial<LocalFleetOptions> = {}): Promise<TestFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-fleet-'));
  const fleet = await within(
    startLocalFleet({
      dir,
      operatorKey: FLEET_OPERATOR_KEY,
      checkIntervalMs: 250,
      hostLogLevel: process.env['CTX_TEST_LOG'] ?? 'warn',
      logger: pino({ level: process.env['CTX_TEST_LOG'] ?? 'silent' }),
      ...options,
    }),
    'the fleet starts',
    240_000,
  ).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  await eventually(async () => (await fleet.router.serverStates()).every((state) => state.status === 'UP'), 'the router sees every host up', 30_000);
  const request: TestFleet['request'] = async (method, path, key, body) => {
    const response = await within(
      fetch(fleet.router.url + path, {
        method,
        headers: { ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
      `${method} ${path} through the router`,
      30_000,
    );
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // HAProxy's own pages (503 with no server) are HTML.
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };
  const hostRequest: TestFleet['hostRequest'] = async (host, method, path, body) => {
    const response = await within(
      fetch(fleet.host(host).url + path, {
        method,
        headers: { authorization: `Bearer ${FLEET_OPERATOR_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
      `${method} ${path} on ${host}`,
      30_000,
    );
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
  };
  return {
    fleet,
    url: fleet.router.url,
    request,
    hostRequest,
    servingCopies: async (tenantId) => {
      const serving: string[] = [];
      for (const host of fleet.hosts) {
        if (host.pid === undefined) continue;
        const status = await hostRequest(host.name, 'GET', `/v1/tenants/${tenantId}/fleet`);
        if (status.body.state === 'serving' || status.body.state === 'frozen') serving.push(host.name);
      }
      return serving;
    },
    stop: async () => {
      await fleet.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
