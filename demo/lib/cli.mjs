// Command-line flags of the demo scripts: one parser and the value checks
// they share. Each script's own flag table, defaults and usage text live in
// its CLI module (lib/train-node-cli.mjs, tfjs/cli.mjs), so that both
// scripts read flags by the same rules and word their errors alike.
//
// Bad input becomes a UsageError, which readOptions() (see
// createCommandLine) reports with the script's usage text.

export class UsageError extends Error {}

// Plain decimal notation only: Number() alone would also accept '', ' ',
// '0x1f' and 'Infinity', which are never what someone meant by a flag value.
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^\d+$/;

// Each of these returns the parser for one flag's value: it takes the text
// and returns the value, or throws a UsageError that names `flag`.

/** An integer >= 1, e.g. a count of epochs or a batch size. */
export function positiveInteger(flag) {
  return (text) => {
    const value = Number(text);
    if (!INTEGER.test(text) || !Number.isSafeInteger(value) || value < 1) {
      throw new UsageError(`${flag} must be a positive integer, got '${text}'`);
    }
    return value;
  };
}

/** A number in [0, 1], e.g. the EMA decay. */
export function numberFromZeroToOne(flag) {
  return (text) => {
    const value = Number(text);
    if (!DECIMAL.test(text) || !(value >= 0 && value <= 1)) {
      throw new UsageError(`${flag} must be a number in [0, 1], got '${text}'`);
    }
    return value;
  };
}

/** An integer in [0, 2^32 - 1]: what createRandom() takes as a seed. */
export function uint32(flag) {
  return (text) => {
    const value = Number(text);
    if (!INTEGER.test(text) || value > 0xffffffff) {
      throw new UsageError(`${flag} must be an integer in [0, 4294967295], got '${text}'`);
    }
    return value;
  };
}

// Every script takes these; readOptions() answers them with the usage text.
const HELP_SWITCHES = { '-h': ['help', true], '--help': ['help', true] };

/**
 * Reads `args` (process.argv without node and the script) into an options
 * object: `defaults` plus `help: false`, overridden by the flags given.
 *
 *   valueFlags  { '--flag': [key, parse] }: takes a value, as `--flag value`
 *               or `--flag=value`; options[key] = parse(value text)
 *   switches    { '--flag': [key, value] }: takes no value; options[key] = value
 *               (-h and --help are always there and set options.help)
 *
 * A repeated flag keeps its last value. Anything else is a UsageError.
 */
export function parseFlags(args, { defaults, valueFlags, switches = {} }) {
  const allSwitches = { ...HELP_SWITCHES, ...switches };
  const options = { ...defaults, help: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    // Only long flags take `=value`; '-h=x' is an unknown flag.
    const equals = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = equals === -1 ? arg : arg.slice(0, equals);
    const inlineValue = equals === -1 ? undefined : arg.slice(equals + 1);

    if (Object.hasOwn(allSwitches, flag)) {
      if (inlineValue !== undefined) throw new UsageError(`${flag} takes no value, got '${arg}'`);
      const [key, value] = allSwitches[flag];
      options[key] = value;
    } else if (Object.hasOwn(valueFlags, flag)) {
      const [key, parse] = valueFlags[flag];
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

/**
 * One script's command line: `flags` is its { defaults, valueFlags, switches }
 * table, as parseFlags() takes it. Returns
 *
 *   parseFlags(args)   the options, or a thrown UsageError
 *   readOptions(args)  the options, or null when the script should stop:
 *                      after printing `usage` to stdout for --help, or the
 *                      error and `usage` to stderr with exit code 2 (told
 *                      apart from a failed run's 1); `program` prefixes the
 *                      error, as in the script's other messages
 */
export function createCommandLine({ program, usage, ...flags }) {
  const parse = (args) => parseFlags(args, flags);
  function readOptions(args) {
    try {
      const options = parse(args);
      if (options.help) {
        process.stdout.write(usage);
        return null;
      }
      return options;
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      process.stderr.write(`${program}: ${error.message}\n\n${usage}`);
      process.exitCode = 2;
      return null;
    }
  }
  return { parseFlags: parse, readOptions };
}
