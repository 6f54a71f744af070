/**
 * How the fleet controller talks to one host: its operator HTTP API (transport/fleet-routes.ts and
 * the core tenant routes). The one place the controller speaks to hosts; every call has a deadline,
 * an unreachable host is FLEET_HOST_UNAVAILABLE, and a host's own refusal comes back as the host's
 * HostError (code, message and detail), so the controller can tell the two apart.
 */
import { ERROR_CATALOG, HostError, type ErrorCode } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { FleetTenantStatus } from '../tenants/fleet-ops.ts';

/** One tenant as a host lists it for the fleet. */
export interface HostTenant {
  id: string;
  name: string;
  state: 'serving' | 'frozen' | 'incoming' | 'moved';
  complete?: boolean;
  to?: string;
  sessions: number;
  keys: { id: string; createdAt: number }[];
}

/** A host's listing: its tenants (with their states) and its tombstones. */
export interface HostListing {
  host: string | null;
  keyFormatSince: number;
  tenants: HostTenant[];
  tombstones: { id: string; state: 'moved'; to: string; since: number }[];
}

/** What the controller knows of a host: its fleet name, its URL and the operator key. */
export interface HostAddress {
  name: string;
  url: string;
}

/** A host's operator API. */
export class HostClient {
  readonly name: string;
  readonly url: string;
  readonly #operatorKey: string;
  readonly #callMs: number;
  readonly #transferMs: number;

  /** @param deadlines of one call and of one transfer (LIMITS.fleetHostCallMsMax, fleetTransferMsMax by default). */
  constructor(address: HostAddress, operatorKey: string, deadlines: { callMs?: number; transferMs?: number } = {}) {
    this.name = address.name;
    this.url = address.url.replace(/\/+$/, '');
    this.#operatorKey = operatorKey;
    this.#callMs = deadlines.callMs ?? LIMITS.fleetHostCallMsMax;
    this.#transferMs = deadlines.transferMs ?? LIMITS.fleetTransferMsMax;
  }

  /** `/healthz`, or undefined when the host does not answer. */
  async health(timeoutMs = 2_000): Promise<Record<string, unknown> | undefined> {
    try {
      const response = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
      return (await response.json()) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  /** @throws {HostError} FLEET_HOST_UNAVAILABLE; the host's error. */
  listing(): Promise<HostListing> {
    return this.#call<HostListing>('GET', '/v1/fleet/tenants');
  }

  /** @throws {HostError} FLEET_HOST_UNAVAILABLE; the host's error. */
  status(tenantId: string): Promise<FleetTenantStatus & { writeMark?: string | null }> {
    return this.#call<FleetTenantStatus & { writeMark?: string | null }>('GET', `/v1/tenants/${tenantId}/fleet`);
  }

  /** Runs a move step on the host (freeze, unfreeze, activate, shred; retire with `to`); a freeze answers the tenant's write mark too. */
  step(tenantId: string, step: 'freeze' | 'unfreeze' | 'activate' | 'shred' | 'retire', body?: unknown): Promise<FleetTenantStatus & { writeMark?: string | null }> {
    return this.#call<FleetTenantStatus & { writeMark?: string | null }>('POST', `/v1/tenants/${tenantId}/${step}`, body ?? (step === 'retire' ? {} : undefined));
  }

  /**
   * Creates a tenant on this host.
   * @returns its record and first API key (shown once).
   */
  createTenant(name: string): Promise<{ tenant: { id: string; name: string; createdAt: number }; apiKey: string }> {
    return this.#call('POST', '/v1/tenants', { name });
  }

  /**
   * Streams the tenant's sealed export from this host into `target`'s import, without holding it:
   * the controller relays bytes it cannot read without the export key, which it keeps in memory only.
   * A `precopy` is taken while the tenant still writes (see tenants/fleet-ops.ts).
   * @returns what the target reports (entries and bytes imported, the tenant's state there) and the
   *   source's write mark for the snapshot.
   * @throws {HostError} FLEET_HOST_UNAVAILABLE when either host fails mid-stream; either host's refusal.
   */
  async transferTo(target: HostClient, tenantId: string, exportKey: string, precopy = false): Promise<FleetTenantStatus & { entries: number; bytes: number; writeMark: string }> {
    const signal = AbortSignal.timeout(this.#transferMs);
    const exported = await this.#fetch('GET', `/v1/tenants/${tenantId}/export${precopy ? '?precopy=1' : ''}`, { 'ctx-export-key': exportKey }, undefined, signal);
    if (!exported.ok || exported.body === null) throw await errorOf(this, exported);
    const imported = await target.#fetch(
      'POST',
      `/v1/tenants/${tenantId}/import?from=${encodeURIComponent(this.name)}`,
      { 'ctx-export-key': exportKey, 'content-type': 'application/octet-stream', ...lengthOf(exported) },
      exported.body,
      signal,
    );
    if (!imported.ok) throw await errorOf(target, imported);
    const result = (await imported.json()) as FleetTenantStatus & { entries: number; bytes: number };
    return { ...result, writeMark: exported.headers.get('ctx-write-mark') ?? '' };
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.#fetch(
      method,
      path,
      body === undefined ? {} : { 'content-type': 'application/json' },
      body === undefined ? undefined : JSON.stringify(body),
      AbortSignal.timeout(this.#callMs),
    );
    if (!response.ok) throw await errorOf(this, response);
    return (await response.json()) as T;
  }

  async #fetch(method: string, path: string, headers: Record<string, string>, body: string | ReadableStream<Uint8Array> | undefined, signal: AbortSignal): Promise<Response> {
    try {
      return await fetch(`${this.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.#operatorKey}`, ...headers },
        signal,
        ...(body === undefined ? {} : { body, duplex: 'half' }),
      } as RequestInit);
    } catch (error) {
      throw unavailable(this, error);
    }
  }
}

function lengthOf(response: Response): Record<string, string> {
  const length = response.headers.get('content-length');
  return length === null ? {} : { 'content-length': length };
}

/** A host's error answer as a HostError (the host's own code), or FLEET_HOST_UNAVAILABLE when it is not one. */
async function errorOf(host: HostClient, response: Response): Promise<HostError> {
  let text = '';
  try {
    text = await response.text();
  } catch (error) {
    return unavailable(host, error);
  }
  try {
    const { code, message, detail } = (JSON.parse(text) as { error: { code: string; message: string; detail?: Record<string, unknown> } }).error;
    if (code in ERROR_CATALOG && code !== 'INTERNAL') return new HostError(code as ErrorCode, `host ${host.name}: ${message}`, detail);
  } catch {
    // Not one of our error bodies: a proxy's page, a cut-off answer.
  }
  return new HostError('FLEET_HOST_UNAVAILABLE', `host ${host.name} answered HTTP ${response.status}: ${text.slice(0, 200)}`);
}

function unavailable(host: HostClient, error: unknown): HostError {
  const cause = error as { cause?: { code?: string }; name?: string; message?: string };
  const why = cause.name === 'TimeoutError' ? 'timed out' : (cause.cause?.code ?? cause.message ?? String(error));
  return new HostError('FLEET_HOST_UNAVAILABLE', `host ${host.name} (${host.url}) did not answer: ${why}`);
}
