/**
 * Progress for the CLI's slow steps (compiling, metering, building the fixture tenant), on stderr so
 * that stdout carries only results (and `--json` stays parseable). The one place yocto-spinner is
 * imported. On a terminal a spinner runs while the step works; elsewhere (CI logs, tests, pipes) an
 * animation would only add noise, so each step prints one plain line when it ends.
 */
import yoctoSpinner from 'yocto-spinner';

/** Runs steps with a progress display. */
export interface Progress {
  /**
   * Runs `work` while showing `text`; on success shows `done(value)` (default: `text`), on failure
   * marks the step failed and rethrows.
   */
  step<T>(text: string, work: () => Promise<T>, done?: (value: T) => string): Promise<T>;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Where progress goes (default process.stderr). */
  stream?: NodeJS.WriteStream;
  /** Show nothing at all (`--json`, where a caller reads stderr too). */
  silent?: boolean;
}

/**
 * Creates the progress display.
 *
 * @example
 * ```ts
 * const progress = createProgress();
 * const bytes = await progress.step('compiling assembly/index.ts', () => compile(), (out) => `compiled (${out.length} bytes)`);
 * ```
 */
export function createProgress(options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  // yocto-spinner treats a CI environment as non-interactive too; so do we.
  const interactive = stream.isTTY === true && !('CI' in process.env);
  return {
    async step(text, work, done) {
      if (options.silent === true) return work();
      const started = performance.now();
      const spinner = interactive ? yoctoSpinner({ text, stream }).start() : undefined;
      try {
        const value = await work();
        const line = `${done === undefined ? text : done(value)} · ${formatMs(performance.now() - started)}`;
        if (spinner === undefined) stream.write(`✔ ${line}\n`);
        else spinner.success(line);
        return value;
      } catch (error: unknown) {
        if (spinner === undefined) stream.write(`✖ ${text}\n`);
        else spinner.error(text);
        throw error;
      }
    },
  };
}

/** Milliseconds as a short human figure: `850 ms`, `2.4 s`. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
