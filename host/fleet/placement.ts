/**
 * Where tenants go in a fleet. Placement is a directory — an explicit tenant → host map (the
 * router's map is its copy) — not a hash: a new tenant goes to the least-loaded healthy host, and
 * adding a host moves exactly the tenants chosen to even the load out, no more (a hash of the tenant
 * id would move whichever tenants the new host happens to win, and could not follow load).
 * Pure functions: the controller applies them, bench/fleet-plan.ts simulates them at scale.
 */

/** A host's load as placement sees it. */
export interface HostLoad {
  name: string;
  /** Tenants placed on it. */
  tenants: number;
  /** Whether it may take new tenants (it answers its health check). */
  healthy: boolean;
}

/**
 * The host a new tenant goes to: the healthy host with the fewest tenants (ties: the first by name,
 * so the choice is deterministic); undefined when no host is healthy.
 */
export function leastLoaded(hosts: readonly HostLoad[]): string | undefined {
  let best: HostLoad | undefined;
  for (const host of hosts) {
    if (!host.healthy) continue;
    if (best === undefined || host.tenants < best.tenants || (host.tenants === best.tenants && host.name < best.name)) best = host;
  }
  return best?.name;
}

/** One planned move. */
export interface PlannedMove {
  tenant: string;
  from: string;
  to: string;
}

/**
 * The moves that even out tenant counts after hosts were added (or emptied): one tenant at a time
 * from the fullest host to the emptiest, until no two hosts differ by more than one. Every move
 * ends on a host below the mean's floor or leaves one above its ceiling, so the count is the
 * minimum any placement needs (for one new empty host: ⌊tenants / hosts⌋ moves).
 * @param placement tenant → host; `hosts` lists every host (empty ones too).
 * @param pick which of a host's tenants to move first (default: the last listed).
 */
export function rebalancePlan(placement: ReadonlyMap<string, string>, hosts: readonly string[], pick: (tenants: string[]) => string = (tenants) => tenants[tenants.length - 1] as string): PlannedMove[] {
  const byHost = new Map<string, string[]>(hosts.map((host) => [host, []]));
  for (const [tenant, host] of placement) byHost.get(host)?.push(tenant);
  const moves: PlannedMove[] = [];
  for (;;) {
    let fullest: [string, string[]] | undefined;
    let emptiest: [string, string[]] | undefined;
    for (const entry of byHost) {
      if (fullest === undefined || entry[1].length > fullest[1].length) fullest = entry;
      if (emptiest === undefined || entry[1].length < emptiest[1].length) emptiest = entry;
    }
    if (fullest === undefined || emptiest === undefined || fullest[1].length - emptiest[1].length <= 1) return moves;
    const tenant = pick(fullest[1]);
    fullest[1].splice(fullest[1].indexOf(tenant), 1);
    emptiest[1].push(tenant);
    moves.push({ tenant, from: fullest[0], to: emptiest[0] });
  }
}
