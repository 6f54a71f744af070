/**
 * Every fuzz target, in the order `npm test` and `npm run fuzz` run them. Not a test file itself.
 */
import type { FuzzTarget } from '../target.ts';
import { abiRequestsTarget, hostFunctionsTarget, slotOutputsTarget } from './abi.ts';
import { framesTarget } from './frames.ts';
import { tenantFileSealedTarget, tenantFileTarget } from './tenant-file.ts';
import { vettingTarget } from './vetting.ts';

/** The targets. */
export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  framesTarget,
  abiRequestsTarget,
  hostFunctionsTarget,
  slotOutputsTarget,
  tenantFileTarget,
  tenantFileSealedTarget,
  vettingTarget,
];
