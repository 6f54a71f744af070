/**
 * The tenant's own training export (`GET /v1/training/export`): JSONL in the OpenAI chat
 * fine-tuning format with provenance, built from this tenant's positively rated answers through
 * exactly one TenantScope — the request's. What was dropped and why goes into the tenant's audit
 * log entry for the export, and `GET /v1/training/export/report` lists it without the examples.
 */
import type { CanaryOwner } from '../pipeline/guard.ts';
import { appendAudit } from '../tenants/audit.ts';
import type { TenantScope } from '../tenants/scope.ts';
import { tenantExamples, type DroppedExample, type DropReason } from './examples.ts';

/** Bytes of JSONL gathered before a piece is handed to the response (fewer, larger socket writes). */
const PIECE_BYTES = 64 * 1024;

/**
 * The export as pieces of JSONL, produced as the response drains. The audit entry is written when
 * the stream ends, saying whether it was complete (a client that hangs up mid-way got a prefix).
 */
export async function* trainingExportJsonl(scope: TenantScope, owner: CanaryOwner, now: number = Date.now()): AsyncGenerator<string> {
  const counts: Record<'examples' | DropReason, number> = { examples: 0, 'source-changed': 0, 'foreign-canary': 0, canary: 0, 'near-duplicate': 0 };
  let complete = false;
  try {
    let piece = '';
    for (const outcome of tenantExamples(scope, owner, now)) {
      if (outcome.kind === 'dropped') {
        counts[outcome.dropped.reason] += 1;
        continue;
      }
      counts.examples += 1;
      piece += `${JSON.stringify(outcome.example)}\n`;
      if (piece.length >= PIECE_BYTES) {
        yield piece;
        piece = '';
      }
    }
    if (piece.length > 0) yield piece;
    complete = true;
  } finally {
    const detail = { examples: counts.examples, 'dropped.source-changed': counts['source-changed'], 'dropped.foreign-canary': counts['foreign-canary'], complete };
    appendAudit(scope, { kind: 'training.exported', actor: 'tenant', detail }, now);
  }
}

/** What an export would hold and drop, without the examples. */
export function trainingExportReport(scope: TenantScope, owner: CanaryOwner, now: number = Date.now()): { examples: number; dropped: DroppedExample[] } {
  let examples = 0;
  const dropped: DroppedExample[] = [];
  for (const outcome of tenantExamples(scope, owner, now)) {
    if (outcome.kind === 'kept') examples += 1;
    else dropped.push(outcome.dropped);
  }
  return { examples, dropped };
}
