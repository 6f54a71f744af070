/**
 * Structured JSON logs (pino). Log lines carry tenant and session ids, never document text, prompts,
 * answers or keys: callers pass ids and codes, not content.
 */
import { pino, type Logger } from 'pino';

/** The host's logger interface (pino's). */
export type HostLogger = Logger;

/** Creates the root logger writing JSON lines to stderr (stdout stays for what the user reads). */
export function createLogger(level: string): HostLogger {
  return pino({ level, base: { service: 'ctx-host' } }, pino.destination(2));
}
