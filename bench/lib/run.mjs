// How a benchmark program (compare.mjs, profiles.mjs) ends: its results
// document written, and the process exited once main() settles.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';

import { consumedResults } from './timing.mjs';

/** Writes `document` (with its durationSeconds) as JSON to jsonPath, making the folder, and says so. */
export function writeResults(jsonPath, document) {
  mkdirSync(path.dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify(document, null, 2)}\n`);
  console.log('');
  console.log(`wrote ${path.relative(process.cwd(), jsonPath) || jsonPath} (${document.durationSeconds} s)`);
  if (!Number.isFinite(consumedResults())) console.log('');
}

/**
 * Runs the async main(), then exits; an error is printed and exits with 1.
 * process.exit() rather than waiting for the event loop to drain: a worker
 * or a native child that failed to close must not keep the run alive.
 * Without an argument it keeps the exit code readOptions() set (2).
 */
export function runMain(main) {
  main().then(
    () => process.exit(),
    (error) => {
      console.error(error instanceof Error ? error.stack : error);
      process.exit(1);
    },
  );
}
