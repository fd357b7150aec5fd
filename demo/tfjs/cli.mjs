// Command-line flags of the TF.js demo: parsing and validation only. Bad
// input becomes a UsageError, which the script reports with the usage text.
//
// Same rules as demo/lib/cli.mjs (that module's flag set and usage text are
// those of train-node.mjs, so it cannot be reused as is).

export const BACKENDS = Object.freeze(['cpu', 'wasm']);

export const DEFAULTS = Object.freeze({
  epochs: 5,
  decay: 0.99,
  warmup: true,
  // The faster of the two in Node, measured on 2 cores with the defaults:
  // about 4 ms per SGD step and 16 ms per test-set evaluation, against 17 ms
  // and 500 ms on cpu (a whole run: about 13 s against 97 s).
  backend: 'wasm',
  batchSize: 16,
  out: null, // null: demo/output/ema-mnist.svg next to the script
  weights: null, // null: demo/output/ema-mnist.safetensors next to the script
  seed: 1,
});

export const USAGE = `\
Usage: node demo/train-tfjs.mjs [options]

Trains a small TF.js MLP on MNIST digits with plain SGD, keeps an EMA of its
weights with ema-wasm (one update after every batch), prints the test loss
and accuracy of the raw and EMA weights after every epoch, and draws both
curves into an SVG file.

Options:
  --epochs N        epochs to train, a positive integer (default ${DEFAULTS.epochs})
  --decay D         EMA decay, a number in [0, 1] (default ${DEFAULTS.decay})
  --no-warmup       use the decay from the first step; by default the decay is
                    min(D, (1 + n) / (10 + n)) after n updates, as in LitEma
  --backend NAME    TF.js backend: ${BACKENDS.join(' or ')} (default ${DEFAULTS.backend})
  --batch-size N    minibatch size, a positive integer (default ${DEFAULTS.batchSize})
  --out PATH        where to write the SVG plot
                    (default demo/output/ema-mnist.svg)
  --weights PATH    where to save the final EMA weights as safetensors
                    (default demo/output/ema-mnist.safetensors)
  --seed S          seed for the data split, initial weights and minibatch
                    order, an integer in [0, 4294967295] (default ${DEFAULTS.seed})
  -h, --help        show this help and exit
`;

export class UsageError extends Error {}

// Plain decimal notation only: Number() alone would also accept '', ' ',
// '0x1f' and 'Infinity', which are never what someone meant by a flag value.
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^\d+$/;

function positiveInteger(flag) {
  return (text) => {
    const value = Number(text);
    if (!INTEGER.test(text) || !Number.isSafeInteger(value) || value < 1) {
      throw new UsageError(`${flag} must be a positive integer, got '${text}'`);
    }
    return value;
  };
}

function parseDecay(text) {
  const value = Number(text);
  if (!DECIMAL.test(text) || !(value >= 0 && value <= 1)) {
    throw new UsageError(`--decay must be a number in [0, 1], got '${text}'`);
  }
  return value;
}

function parseSeed(text) {
  const value = Number(text);
  if (!INTEGER.test(text) || value > 0xffffffff) {
    throw new UsageError(`--seed must be an integer in [0, 4294967295], got '${text}'`);
  }
  return value;
}

function parseBackend(text) {
  if (!BACKENDS.includes(text)) {
    throw new UsageError(`--backend must be ${BACKENDS.join(' or ')}, got '${text}'`);
  }
  return text;
}

function nonEmptyPath(flag) {
  return (text) => {
    if (text === '') throw new UsageError(`${flag} needs a non-empty path`);
    return text;
  };
}

// Flags that take a value, and how to read it.
const VALUE_FLAGS = {
  '--epochs': ['epochs', positiveInteger('--epochs')],
  '--decay': ['decay', parseDecay],
  '--backend': ['backend', parseBackend],
  '--batch-size': ['batchSize', positiveInteger('--batch-size')],
  '--out': ['out', nonEmptyPath('--out')],
  '--weights': ['weights', nonEmptyPath('--weights')],
  '--seed': ['seed', parseSeed],
};

/**
 * Reads `args` (process.argv without node and the script) into
 * { epochs, decay, warmup, backend, batchSize, out, seed, help }. Accepts
 * `--flag value` and `--flag=value`; a repeated flag keeps its last value.
 */
export function parseFlags(args) {
  const options = { ...DEFAULTS, help: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const equals = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = equals === -1 ? arg : arg.slice(0, equals);
    const inlineValue = equals === -1 ? undefined : arg.slice(equals + 1);

    if (flag === '-h' || flag === '--help' || flag === '--no-warmup') {
      if (inlineValue !== undefined) throw new UsageError(`${flag} takes no value, got '${arg}'`);
      if (flag === '--no-warmup') options.warmup = false;
      else options.help = true;
    } else if (Object.hasOwn(VALUE_FLAGS, flag)) {
      const [key, parse] = VALUE_FLAGS[flag];
      let text = inlineValue;
      if (text === undefined) {
        // A following flag is not a value: `--epochs --seed 3` is a mistake.
        if (i + 1 >= args.length || args[i + 1].startsWith('--')) {
          throw new UsageError(`${flag} needs a value`);
        }
        text = args[++i];
      }
      options[key] = parse(text);
    } else if (arg.startsWith('-')) {
      throw new UsageError(`unknown flag '${flag}'`);
    } else {
      throw new UsageError(`unexpected argument '${arg}' (this script takes only flags)`);
    }
  }
  return options;
}
