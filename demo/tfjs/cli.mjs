// Command-line flags of demo/train-tfjs.mjs: its defaults, usage text and
// flag table. Parsing and the value checks are shared with the other
// scripts of the repository, in scripts/flags.mjs.

import { createCommandLine, nonEmptyPath, numberFromZeroToOne, oneOf, positiveInteger, uint32 } from '../../scripts/flags.mjs';

export const BACKENDS = Object.freeze(['cpu', 'wasm']);

export const DEFAULTS = Object.freeze({
  epochs: 5,
  decay: 0.99,
  warmup: true,
  // background: update() returns once the weights are copied; the averaging
  // finishes in a worker while the next SGD step runs (the threads build).
  background: false,
  // The faster of the two in Node, measured on 2 cores with the defaults:
  // about 4 ms per SGD step and 16 ms per test-set evaluation, against 17 ms
  // and 500 ms on cpu (a whole run: about 13 s against 97 s).
  backend: 'wasm',
  batchSize: 16,
  out: null, // null: demo/output/ema-mnist.svg next to the script
  weights: null, // null: demo/output/ema-mnist.safetensors next to the script
  seed: 1,
  // Post-hoc EMA (see posthoc.mjs): 25 snapshots of each profile in a
  // default run of 2,500 steps, 400 kB each in float32 (20 MB in all).
  // float32 rather than float16: reconstruct() reads float16 about 7x slower
  // (its conversion runs in JS), and float16's rounding, amplified by the
  // coefficients, makes it warn for most widths of the sweep.
  snapshotEvery: 100,
  snapshotDtype: 'float32',
  snapshots: null, // null: demo/output/snapshots/ next to the script
  posthocOut: null, // null: demo/output/ema-mnist-posthoc.svg next to the script
});

export const SNAPSHOT_DTYPES = Object.freeze(['float16', 'float32']);

export const USAGE = `\
Usage: node demo/train-tfjs.mjs [options]

Trains a small TF.js MLP on MNIST digits with plain SGD, keeps an EMA of its
weights with ema-wasm (one update after every batch), prints the test loss
and accuracy of the raw and EMA weights after every epoch, and draws both
curves into an SVG file.

Then post-hoc EMA (Karras et al. 2024): a power-function EMA of two profiles,
sigma_rel 0.05 and 0.10, runs next to the first one and saves snapshots of
both every few steps; after training they are read back, the EMA of each
sigma_rel from 0.01 to 0.25 is reconstructed from them and evaluated, and
its test loss against sigma_rel is drawn into a second SVG file.

Options:
  --epochs N           epochs to train, a positive integer (default ${DEFAULTS.epochs})
  --decay D            EMA decay, a number in [0, 1] (default ${DEFAULTS.decay})
  --no-warmup          use the decay from the first step; by default the decay is
                       min(D, (1 + n) / (10 + n)) after n updates, as in LitEma
  --background         average in a worker while training goes on: update()
                       returns once the weights are copied (the threads build;
                       results are bit-identical)
  --backend NAME       TF.js backend: ${BACKENDS.join(' or ')} (default ${DEFAULTS.backend})
  --batch-size N       minibatch size, a positive integer (default ${DEFAULTS.batchSize})
  --out PATH           where to write the SVG plot
                       (default demo/output/ema-mnist.svg)
  --weights PATH       where to save the final EMA weights as safetensors
                       (default demo/output/ema-mnist.safetensors)
  --seed S             seed for the data split, initial weights and minibatch
                       order, an integer in [0, 4294967295] (default ${DEFAULTS.seed})
  --snapshot-every N   steps between snapshots, a positive integer
                       (default ${DEFAULTS.snapshotEvery}; the last step always gets one)
  --snapshot-dtype T   the snapshots' element type: ${SNAPSHOT_DTYPES.join(' or ')}
                       (default ${DEFAULTS.snapshotDtype})
  --snapshots DIR      the snapshots' folder; the snapshots an earlier run left
                       there are removed first (default demo/output/snapshots)
  --posthoc-out PATH   where to write the post-hoc SVG plot
                       (default demo/output/ema-mnist-posthoc.svg)
  -h, --help           show this help and exit
`;

/**
 * parseFlags(args) reads `args` (process.argv without node and the script)
 * into { epochs, decay, warmup, background, backend, batchSize, out, weights, seed,
 * snapshotEvery, snapshotDtype, snapshots, posthocOut, help }
 * or throws a UsageError; readOptions(args) returns them, or null after
 * printing the help or a usage error.
 */
export const { parseFlags, readOptions } = createCommandLine({
  program: 'train-tfjs',
  usage: USAGE,
  defaults: DEFAULTS,
  valueFlags: {
    '--epochs': ['epochs', positiveInteger],
    '--decay': ['decay', numberFromZeroToOne],
    '--backend': ['backend', oneOf(BACKENDS)],
    '--batch-size': ['batchSize', positiveInteger],
    '--out': ['out', nonEmptyPath],
    '--weights': ['weights', nonEmptyPath],
    '--seed': ['seed', uint32],
    '--snapshot-every': ['snapshotEvery', positiveInteger],
    '--snapshot-dtype': ['snapshotDtype', oneOf(SNAPSHOT_DTYPES)],
    '--snapshots': ['snapshots', nonEmptyPath],
    '--posthoc-out': ['posthocOut', nonEmptyPath],
  },
  switches: { '--no-warmup': ['warmup', false], '--background': ['background', true] },
});
