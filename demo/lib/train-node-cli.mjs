// Command-line flags of demo/train-node.mjs: its defaults, usage text and
// flag table. Parsing and the value checks are shared with the other
// scripts of the repository, in scripts/flags.mjs.

import { createCommandLine, numberFromZeroToOne, positiveInteger, uint32 } from '../../scripts/flags.mjs';

export const DEFAULTS = Object.freeze({ epochs: 8, decay: 0.99, warmup: true, seed: 1 });

export const USAGE = `\
Usage: node demo/train-node.mjs [options]

Trains a small MLP on a noisy spiral with plain SGD, keeps an EMA of its
weights with ema-wasm, and prints the test loss of the raw and EMA weights
after every epoch.

Options:
  --epochs N     epochs to train, a positive integer (default ${DEFAULTS.epochs})
  --decay D      EMA decay, a number in [0, 1] (default ${DEFAULTS.decay})
  --no-warmup    use the decay from the first step; by default the decay is
                 min(D, (1 + n) / (10 + n)) after n updates, as in LitEma
  --seed S       seed for data, initial weights and minibatch order,
                 an integer in [0, 4294967295] (default ${DEFAULTS.seed})
  -h, --help     show this help and exit
`;

/**
 * parseFlags(args) reads `args` (process.argv without node and the script)
 * into { epochs, decay, warmup, seed, help } or throws a UsageError;
 * readOptions(args) returns them, or null after printing the help or a
 * usage error.
 */
export const { parseFlags, readOptions } = createCommandLine({
  program: 'train-node',
  usage: USAGE,
  defaults: DEFAULTS,
  valueFlags: {
    '--epochs': ['epochs', positiveInteger],
    '--decay': ['decay', numberFromZeroToOne],
    '--seed': ['seed', uint32],
  },
  switches: { '--no-warmup': ['warmup', false] },
});
