/**
 * Bounded tenant labels for metrics. A Prometheus series exists per distinct label set, so a label
 * holding every tenant id would grow the scrape (and the Prometheus server's memory) with the
 * number of tenants. The first `max` tenants seen keep their own id as the label; later ones share
 * {@link OTHER_TENANTS}. A tenant keeps its label for the life of the process (a label that moved
 * would split one tenant's counters across two series), until it is deleted and its slot freed.
 */

/** The label value shared by tenants past the limit. Tenant ids start with `t_`, so it cannot collide. */
export const OTHER_TENANTS = '_other';

/** Maps tenant ids to label values. */
export interface TenantLabels {
  /** The label for a tenant: its id while slots last, else {@link OTHER_TENANTS}. */
  label(tenantId: string): string;
  /** Frees a deleted tenant's slot. Returns whether the tenant had one (its series then go too). */
  release(tenantId: string): boolean;
  /** Tenants holding a slot. */
  readonly size: number;
}

/**
 * Creates the mapping with `max` slots.
 * @throws {RangeError} when `max` is not a non-negative integer (a programmer error).
 */
export function createTenantLabels(max: number): TenantLabels {
  if (!Number.isInteger(max) || max < 0) throw new RangeError(`max must be a non-negative integer, got ${max}`);
  const labelled = new Set<string>();
  return {
    label(tenantId) {
      if (labelled.has(tenantId)) return tenantId;
      if (labelled.size >= max) return OTHER_TENANTS;
      labelled.add(tenantId);
      return tenantId;
    },
    release: (tenantId) => labelled.delete(tenantId),
    get size() {
      return labelled.size;
    },
  };
}
