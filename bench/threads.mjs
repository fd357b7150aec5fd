// The threads section of `npm run bench` on its own (bench/lib/threads.mjs):
// one EMA step at 16M and 64M parameters, single-threaded and with the
// threads build, copy-in, resident and in the background, beside native C
// (OpenMP) and PyTorch's lerp_ with the same threads, and the issue's
// targets. `npm run bench` runs the same section after its other rows.
//
//   node bench/threads.mjs                 full run (about two minutes)
//   node bench/threads.mjs --quick         fewer repetitions, a smoke test
//   node bench/threads.mjs --only 16M      one size (16M, 64M)
//   node bench/threads.mjs --no-native     skip native C and PyTorch

import process from 'node:process';

import { createCommandLine, UsageError } from '../scripts/flags.mjs';
import { runMain } from './lib/run.mjs';
import { benchThreads, THREAD_SIZES } from './lib/threads.mjs';

const USAGE = `usage: node bench/threads.mjs [--quick] [--only SIZE[,SIZE]] [--no-native]
  sizes: 16M, 64M
  --no-native    skip the native C (OpenMP) and PyTorch rows`;

function onlySizes(text, flag) {
  const sizes = text.split(',').map((key) => THREAD_SIZES.find((size) => size.key === key));
  if (sizes.some((size) => size === undefined)) throw new UsageError(`${flag}: unknown size in '${text}'`);
  return sizes;
}

const { readOptions } = createCommandLine({
  program: 'bench/threads',
  usage: USAGE,
  defaults: { quick: false, native: true, sizes: THREAD_SIZES },
  valueFlags: { '--only': ['sizes', onlySizes] },
  switches: { '--quick': ['quick', true], '--no-native': ['native', false] },
});

async function main() {
  const options = readOptions(process.argv.slice(2));
  if (options === null) return;
  const { targets } = await benchThreads(options);
  if (targets.some(({ met }) => met === false)) console.log('\nthreads: some targets were missed (see above)');
}

runMain(main);
