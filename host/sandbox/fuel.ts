/**
 * Fuel and memory-cap guards for metered modules (see metering.ts): the fuel global is refilled to
 * the call's budget before each call and read after it, and a trap after a refused `memory.grow`
 * is reported as the memory cap it is. Plugged into the instance's {@link CallGuards} seam.
 */
import assert from 'node:assert/strict';
import { HostError } from '../errors.ts';
import { LIMITS } from '../limits.ts';
import type { CallGuards } from './instance.ts';
import { FUEL_EXPORT, GROW_REFUSED_EXPORT } from './metering.ts';

/** The exported globals a metered module has. */
interface MeterGlobals {
  fuel: WebAssembly.Global;
  growRefused: WebAssembly.Global;
}

function meterGlobals(exports: WebAssembly.Exports): MeterGlobals {
  const fuel = exports[FUEL_EXPORT];
  const growRefused = exports[GROW_REFUSED_EXPORT];
  assert.ok(fuel !== undefined && growRefused !== undefined, 'fuel guards were applied to a module that is not metered');
  return { fuel: fuel as WebAssembly.Global, growRefused: growRefused as WebAssembly.Global };
}

/**
 * Guards that give each call `fuelPerCall` fuel and turn exhaustion into PLUGIN_FUEL_EXHAUSTED.
 * `what` names the call in messages (the export, or "the start function").
 *
 * @example
 * ```ts
 * const guards = fuelGuards(100_000_000, () => 'retrieve');
 * ```
 */
export function fuelGuards(fuelPerCall: number, what: () => string): Required<CallGuards> {
  assert.ok(
    Number.isInteger(fuelPerCall) && fuelPerCall >= LIMITS.pluginFuelPerCallMin && fuelPerCall <= LIMITS.pluginFuelPerCallMax,
    `fuelPerCall ${fuelPerCall} must be an integer in ${LIMITS.pluginFuelPerCallMin}..${LIMITS.pluginFuelPerCallMax}`,
  );
  const budget = BigInt(fuelPerCall);
  return {
    beforeCall(exports) {
      const { fuel, growRefused } = meterGlobals(exports);
      fuel.value = budget;
      growRefused.value = 0;
    },
    afterCall(exports, trapped) {
      const { fuel, growRefused } = meterGlobals(exports);
      if ((fuel.value as bigint) < 0n) {
        return new HostError('PLUGIN_FUEL_EXHAUSTED', `${what()} ran out of fuel: it spent its whole budget of ${fuelPerCall} per call`);
      }
      if (trapped && growRefused.value === 1) {
        const memory = exports['memory'] as WebAssembly.Memory | undefined;
        const held = memory === undefined ? 'its maximum' : `${memory.buffer.byteLength} bytes`;
        return new HostError('PLUGIN_MEMORY_LIMIT', `${what()}: the plugin tried to grow its linear memory past its cap (it holds ${held}; the cap is at most ${LIMITS.pluginMemoryBytesMax} bytes)`);
      }
      return null;
    },
  };
}
