/**
 * How `ctx-plugin` prints results for people (stdout; `--json` prints the same data as JSON).
 * Plain text with a little alignment: it lands in terminals, CI logs and bug reports alike.
 */
import type { VettingReport } from '../../host/sandbox/vetting.ts';
import type { CompileResult } from './compile.ts';
import type { CallStats, CaseResult, RankedView } from './harness.ts';

/** Characters of a chunk or message shown before it is cut (`--full` shows everything). */
const PREVIEW_CHARS = 160;
const MESSAGE_PREVIEW_CHARS = 600;

/**
 * Bytes as KiB or MiB.
 *
 * @example
 * ```ts
 * formatBytes(18_944); // "18.5 KiB"
 * ```
 */
export function formatBytes(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** `1 page`, `256 pages`. */
function plural(n: number, noun: string): string {
  return `${count(n)} ${noun}${n === 1 ? '' : 's'}`;
}

/** Thousands separated, for fuel figures. */
function count(value: number): string {
  return value.toLocaleString('en-US');
}

/** Imports grouped by module: `extism:host/env (alloc, free), ctx:host/v1 (index_search)`. */
function groupImports(imports: readonly string[]): string {
  const byModule = new Map<string, string[]>();
  for (const entry of imports) {
    const dot = entry.lastIndexOf('.');
    const module = entry.slice(0, dot);
    byModule.set(module, [...(byModule.get(module) ?? []), entry.slice(dot + 1)]);
  }
  return [...byModule].map(([module, names]) => `${module} (${names.join(', ')})`).join(', ') || 'none';
}

/**
 * What `build` prints.
 *
 * @example
 * ```ts
 * process.stdout.write(formatBuild(result, 'build/plugin.wasm', 'retrieval'));
 * ```
 */
export function formatBuild(result: CompileResult, shownPath: string, slot: string): string {
  return [
    `${shownPath}  ${formatBytes(result.bytes)}  ${slot} plugin${result.built ? '' : ' (up to date)'}`,
    `  exports  ${result.exports.join(', ') || 'none'}`,
    `  imports  ${groupImports(result.imports)}`,
    '',
  ].join('\n');
}

/**
 * What `check` prints: the vetting report an upload would return, line by line.
 *
 * @example
 * ```ts
 * process.stdout.write(formatReport(report, 'build/plugin.wasm'));
 * ```
 */
export function formatReport(report: VettingReport, shownPath: string): string {
  const { memory, metering, limits } = report;
  const declared = memory.declaredMaxPages === null ? 'none declared' : `declared ${memory.declaredMaxPages}`;
  return [
    `vetting report for ${shownPath} (${report.slot} plugin)`,
    `  sha256    ${report.sha256}  (as uploaded, ${formatBytes(report.bytes)})`,
    `  module    ${report.module.sha256}  (as stored and run: metered, ${formatBytes(report.module.bytes)})`,
    `  imports   ${groupImports(report.imports.map((entry) => `${entry.module}.${entry.name}`))}`,
    `  exports   ${report.exports.map((entry) => entry.name).join(', ')}`,
    `  memory    ${plural(memory.initialPages, 'page')} at start, maximum ${declared}, capped at ${plural(memory.maxPages, 'page')} (${formatBytes(memory.maxPages * 64 * 1024)})`,
    `  metering  ${metering.functions} functions, ${metering.loops} loops, ${metering.dynamic} dynamic sites${metering.startFunction ? ', a start function (run as a metered call)' : ''}`,
    `  per call  fuel ${count(limits.fuelPerCallDefault)} by default (tenants may set up to ${count(limits.fuelPerCallMax)}), output ${formatBytes(limits.outputBytesMax)}, ` +
      `${limits.hostCallsPerCallMax} host calls, ${formatBytes(limits.hostBytesPerCallMax)} host memory, ${limits.wallMsMax} ms wall clock`,
    '',
  ].join('\n');
}

function stats(label: string, call: CallStats): string {
  const fuel = call.fuel === null ? 'fuel n/a' : `fuel ${count(call.fuel)}`;
  const calls = Object.entries(call.hostCalls).map(([name, n]) => `${name}×${n}`).join(' ') || 'no host calls';
  return `  ${label} · ${call.ms.toFixed(2)} ms · ${fuel} · ${calls}`;
}

function preview(text: string, max: number, full: boolean): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return full || flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

function rankedLines(ranked: readonly RankedView[], full: boolean): string[] {
  if (ranked.length === 0) return ['    (no chunks)'];
  const width = Math.max(...ranked.map((chunk) => chunk.chunkId.length));
  return ranked.flatMap((chunk, i) => [
    `    ${String(i + 1).padStart(2)}. ${chunk.chunkId.padEnd(width)}  ${chunk.score.toFixed(4)}  ${chunk.title}`,
    `        ${preview(chunk.text, PREVIEW_CHARS, full)}`,
  ]);
}

/**
 * What `test` prints for one case: the question, what the project's plugin returned, its cost,
 * its log, then each check.
 *
 * @example
 * ```ts
 * process.stdout.write(formatCase(result, { full: false, tokenBudget: 1500, other: 'built-in' }));
 * ```
 */
export function formatCase(result: CaseResult, options: { full: boolean; tokenBudget: number; other: 'built-in' | 'paired' }): string {
  const lines = [`? ${result.question}`];
  const mine = (slot: string): string => (result.slot === slot ? 'your plugin' : options.other);
  if (result.retrieval !== null) {
    lines.push(stats(`retrieval (${mine('retrieval')})`, result.retrieval));
    if (result.slot === 'retrieval') lines.push(...rankedLines(result.ranked, options.full));
    else lines.push(`    chunks: ${result.ranked.map((chunk) => chunk.chunkId).join(', ') || 'none'}`);
  }
  if (result.prompt !== null) {
    const prompt = result.prompt;
    lines.push(`${stats(`prompt (${mine('prompt')})`, prompt)} · ${prompt.cacheable ? 'cacheable' : 'not cacheable'} · ~${count(prompt.contextTokens)} tokens (budget ${count(options.tokenBudget)})`);
    for (const message of prompt.messages) lines.push(`    ${message.role}: ${preview(message.content, MESSAGE_PREVIEW_CHARS, options.full)}`);
  }
  for (const line of result.logs) lines.push(`  log ${line.slot} [${line.level}] ${line.message}`);
  if (result.failure !== null) lines.push(`  ✖ [${result.failure.code}] ${result.failure.message}`);
  for (const check of result.checks) lines.push(check.ok ? `  ✔ ${check.name}` : `  ✖ ${check.name}: ${check.detail}`);
  lines.push('');
  return `${lines.join('\n')}\n`;
}
