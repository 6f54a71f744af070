/**
 * Starts the host: a supervisor owning the listening socket and the cells serving tenants
 * (cells/supervisor.ts, cells/cell.ts). `npm start` runs `config.workers` cell processes; tests that
 * need in-process hooks run one cell inside their own process, through the same supervisor.
 */
import type { HostConfig } from './config.ts';
import type { HostLogger } from './log.ts';
import type { CellHooks } from './cells/cell.ts';
import type { CellLink } from './cells/links.ts';
import { startSupervisor } from './cells/supervisor.ts';
import type { Embedder } from './retrieval/embedder.ts';
import type { TenantAuthority } from './tenants/scope.ts';

/**
 * Test and benchmark hooks; none is reachable from configuration or the network. Any hook (or
 * `inProcess: true`) runs the host with one cell in this process; without them it runs cell processes.
 */
export interface ServerOptions extends CellHooks {
  /** One cell in this process (implied by any other hook). */
  inProcess?: boolean;
  logger?: HostLogger;
}

/** A running host. */
export interface HostServer {
  readonly url: string;
  readonly port: number;
  /** The in-process cell's authority (tests); absent when the cells are processes. */
  readonly authority: TenantAuthority;
  /** The in-process cell's embedder (tests). */
  readonly embedder: Embedder;
  /** Set on the first start without CTX_OPERATOR_KEY: the generated operator key, to print once. */
  readonly generatedOperatorKey: string | undefined;
  /** Live chat sessions across the cells. */
  liveSessions(): Promise<number>;
  /** The cells by slot (pids and states, for tests that kill one). */
  cells(): readonly CellLink[];
  /** Moves a tenant to another cell slot (the quarantine slot is `config.workers`), or back `home`. */
  moveTenant(tenantId: string, slot: number | 'home'): Promise<void>;
  /** Closes every session and connection, the cells, then the registry. */
  close(): Promise<void>;
}

/**
 * Starts the host.
 * @throws {HostError} STORAGE_MASTER_KEY when the master key is malformed or does not open DATA_DIR
 *   (nothing is written then); CONFIG_INVALID for bad model or embedder settings or a port in use;
 *   EMBED_FAILED when EMBED_URL is set and the embeddings server does not answer its probe.
 */
export async function startServer(config: HostConfig, options: ServerOptions = {}): Promise<HostServer> {
  const { inProcess, logger, ...hooks } = options;
  const wantsInProcess = inProcess === true || Object.keys(hooks).length > 0;
  const supervisor = await startSupervisor(config, {
    ...(wantsInProcess ? { inProcess: { ...hooks, ...(logger === undefined ? {} : { logger }) } } : {}),
    ...(logger === undefined ? {} : { logger }),
  });
  const cell = supervisor.inProcessCell?.cell;
  return {
    url: supervisor.url,
    port: supervisor.port,
    get authority(): TenantAuthority {
      if (cell === undefined) throw new Error('the host runs its cells as processes: there is no in-process authority');
      return cell.authority;
    },
    get embedder(): Embedder {
      if (cell === undefined) throw new Error('the host runs its cells as processes: there is no in-process embedder');
      return cell.embedder;
    },
    generatedOperatorKey: supervisor.generatedOperatorKey,
    liveSessions: async () => {
      let total = 0;
      for (const count of (await supervisor.liveSessions()).values()) total += count;
      return total;
    },
    cells: () => supervisor.cells(),
    moveTenant: (tenantId, slot) => supervisor.moveTenant(tenantId, slot),
    close: () => supervisor.close(),
  };
}
