/**
 * The errors of `ctx-plugin` itself: what only the CLI can get wrong (a missing project file, a
 * compile error, a failed expectation). Errors the host's own code raises while the CLI runs it
 * (vetting, the sandbox, settings) stay HostErrors with their codes from host/errors.ts, so a
 * vendor sees locally exactly the code an upload or an ask would show.
 *
 * Like the host's catalog, every code here is documented in sdk/README.md and a test keeps the two
 * in step (test/sdk/errors.test.ts).
 */

/** How one CLI error code ends the process. */
export interface CliErrorSpec {
  /** Process exit code: 2 for a wrong command line, 1 for everything else that failed. */
  readonly exit: 1 | 2;
  /** One sentence for sdk/README.md's table. */
  readonly doc: string;
}

/** Every error code `ctx-plugin` raises itself. */
export const CLI_ERROR_CATALOG = {
  CLI_USAGE: { exit: 2, doc: 'The command line is wrong: a missing argument, an unknown option or a bad value.' },
  CLI_PROJECT_NOT_FOUND: { exit: 1, doc: 'The directory has no ctx-plugin.json (and no --wasm was given).' },
  CLI_PROJECT_INVALID: { exit: 1, doc: 'ctx-plugin.json is not valid JSON or has an unknown key or a bad value; the message names it.' },
  CLI_INIT_TARGET_EXISTS: { exit: 1, doc: 'init was pointed at a directory that exists and is not empty.' },
  CLI_BUILD_FAILED: { exit: 1, doc: 'The AssemblyScript compiler reported errors; they are printed above.' },
  CLI_WASM_NOT_FOUND: { exit: 1, doc: 'The module to check, test or publish does not exist.' },
  CLI_FIXTURE_INVALID: { exit: 1, doc: 'The fixture documents cannot be read or are not valid documents.' },
  CLI_TEST_FAILED: { exit: 1, doc: 'At least one test case failed its expectations or its plugin call.' },
} as const satisfies Record<string, CliErrorSpec>;

/** A code from {@link CLI_ERROR_CATALOG}. */
export type CliErrorCode = keyof typeof CLI_ERROR_CATALOG;

/**
 * An error of the CLI: a stable code, a message saying what was wrong, and `hint`, the next step
 * that fixes it (printed as `next: …`).
 *
 * @example
 * ```ts
 * throw new CliError('CLI_PROJECT_NOT_FOUND', 'no ctx-plugin.json in /tmp/x', 'run `ctx-plugin init <dir> --slot retrieval`');
 * ```
 */
export class CliError extends Error {
  /** The stable code, e.g. `CLI_BUILD_FAILED`. */
  readonly code: CliErrorCode;
  /** What to do next, or `undefined` when the message already says it. */
  readonly hint: string | undefined;

  constructor(code: CliErrorCode, message: string, hint?: string) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.hint = hint;
  }

  /** The exit code this error ends the process with. */
  get exitCode(): 1 | 2 {
    return CLI_ERROR_CATALOG[this.code].exit;
  }
}
