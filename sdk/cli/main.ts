/**
 * `ctx-plugin`: the plugin vendor's command line (sdk/bin/ctx-plugin starts it). Commander parses
 * the command line; each command lives in commands.ts. Exit codes: 0 success, 1 a failure or a
 * refusal (build errors, vetting, a failed test case, a host that said no), 2 a wrong command line.
 * Every error prints its stable code, what was wrong and, on a `next:` line, what to do about it.
 */
import { Command, CommanderError, Option } from 'commander';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HostError } from '../../host/errors.ts';
import type { PluginSlot } from '../../host/sandbox/slots.ts';
import { ChatError } from '../client/errors.ts';
import { runAsk, runBuild, runCheck, runInit, runPublish, runTest } from './commands.ts';
import { CliError } from './errors.ts';
import { hintFor } from './hints.ts';

const SLOTS = ['retrieval', 'prompt'];

function slotOption(description: string): Option {
  return new Option('--slot <slot>', description).choices(SLOTS);
}

function moduleOptions(command: Command): Command {
  return command
    .option('-C, --dir <dir>', 'the plugin project directory', process.cwd())
    .option('--wasm <file>', 'use this module instead of the project build (any Extism plugin)')
    .addOption(slotOption('the slot of --wasm'))
    .option('--json', 'print the result as JSON');
}

function hostOptions(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'the host base URL').env('CTX_URL').makeOptionMandatory())
    .addOption(new Option('--key <key>', "the tenant's API key").env('CTX_API_KEY').makeOptionMandatory());
}

/** The program; exported for tests that drive the parser without a process. */
export function createProgram(): Command {
  const program = new Command('ctx-plugin')
    .description('build, check, test and publish ctx-host plugins (retrieval and prompt slots)')
    .showHelpAfterError('(run ctx-plugin --help for usage)')
    .exitOverride();
  program
    .command('init <dir>')
    .description('scaffold a plugin project that builds and passes its own test')
    .addOption(slotOption('which slot the plugin fills').makeOptionMandatory())
    .action((dir: string, options: { slot: PluginSlot }) => runInit(dir, options.slot));
  program
    .command('build')
    .description('compile the project (optimised, memory capped as a host caps it) and print its size and exports')
    .option('-C, --dir <dir>', 'the plugin project directory', process.cwd())
    .option('--debug', 'a debug build: unoptimised, with names (not for publishing)')
    .option('--force', 'rebuild even when the build is up to date')
    .option('--json', 'print the result as JSON')
    .action((options: { dir: string; debug?: boolean; force?: boolean; json?: boolean }) => runBuild(options));
  moduleOptions(program.command('check'))
    .description("run the host's vetting and metering locally and print the report an upload would return")
    .action((options: { dir: string; wasm?: string; slot?: PluginSlot; json?: boolean }) => runCheck(options));
  moduleOptions(program.command('test [questions...]'))
    .description("run the plugin in the host's sandbox against fixture documents: the project's tests, or the questions given")
    .option('--fixture <path>', 'fixture documents: a JSON file ({documents: [...]}) or a folder of .md/.txt files')
    .option('--pair <file>', "a module for the other slot (default: the host's built-in plugin)")
    .option('--full', 'print chunks and messages whole')
    .action((questions: string[], options: Parameters<typeof runTest>[1]) => runTest(questions, options));
  hostOptions(moduleOptions(program.command('publish')))
    .description("upload the plugin to a host (PUT /v1/plugins/<slot>); the tenant's new sessions run it")
    .option('--no-check', 'skip the local vetting before the upload')
    .action((options: Parameters<typeof runPublish>[0]) => runPublish(options));
  hostOptions(program.command('ask <question...>'))
    .description('ask a host one question with the client library and stream the answer')
    .option('--json', 'print the result as JSON')
    .action((words: string[], options: { url: string; key: string; json?: boolean }) => runAsk(words.join(' '), options));
  return program;
}

/**
 * Prints `error` for a person and returns the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = reportError(error);
 * ```
 */
export function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander has printed its message (and the help hint) already.
    return error.exitCode === 0 ? 0 : 2;
  }
  let code = 'INTERNAL';
  let hint: string | undefined;
  let exitCode = 1;
  if (error instanceof CliError) {
    ({ code, hint, exitCode } = { code: error.code, hint: error.hint, exitCode: error.exitCode });
  } else if (error instanceof HostError || error instanceof ChatError) {
    code = error.code;
    hint = hintFor(error.code);
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`ctx-plugin: [${code}] ${message}\n${hint === undefined ? '' : `  next: ${hint}\n`}`);
  if (code === 'INTERNAL' && error instanceof Error && error.stack !== undefined) process.stderr.write(`${error.stack}\n`);
  return exitCode;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    await createProgram().parseAsync(process.argv);
  } catch (error: unknown) {
    process.exitCode = reportError(error);
  }
}
