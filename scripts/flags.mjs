// Command-line flags of the repository's scripts (bench/, scripts/, demo/):
// one parser, the value checks they share, and one way to report a mistake,
// so that every script reads flags by the same rules and words its errors
// alike. Each script keeps its own flag table, defaults and usage text.
//
// Node's util.parseArgs splits the command line into tokens. It runs with
// strict: false and the tokens are checked here, because strict mode's
// errors are worded for a generic CLI ("Option '--epochs <value>' argument
// is ambiguous...") and name the flag only inside their text; here every
// mistake is a UsageError that names the flag, in the scripts' own words.
// `tokens` needs Node >= 18.7 (parseArgs itself 18.3): the package supports
// Node 18.0, but these are development scripts, run on the Node the
// repository is developed with, never by the package's users.

import path from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';

/** A mistake on the command line: reported with the usage text, exit code 2. */
export class UsageError extends Error {}

// ---- value checks ----------------------------------------------------------
// Each takes the value's text and the flag it came with (for the message) and
// returns the value, or throws a UsageError naming the flag.

// Plain decimal notation only: Number() alone would also accept '', ' ',
// '0x1f' and 'Infinity', which are never what someone meant by a flag value.
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^\d+$/;

/** An integer >= 1, e.g. a count of epochs or a batch size. */
export function positiveInteger(text, flag) {
  const value = Number(text);
  if (!INTEGER.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`${flag} must be a positive integer, got '${text}'`);
  }
  return value;
}

/** A number in [0, 1], e.g. the EMA decay. */
export function numberFromZeroToOne(text, flag) {
  const value = Number(text);
  if (!DECIMAL.test(text) || !(value >= 0 && value <= 1)) {
    throw new UsageError(`${flag} must be a number in [0, 1], got '${text}'`);
  }
  return value;
}

/** An integer in [0, 2^32 - 1], e.g. a seed for demo/lib/random.mjs. */
export function uint32(text, flag) {
  const value = Number(text);
  if (!INTEGER.test(text) || value > 0xffffffff) {
    throw new UsageError(`${flag} must be an integer in [0, 4294967295], got '${text}'`);
  }
  return value;
}

/** One of `choices`, e.g. a TF.js backend name. */
export function oneOf(choices) {
  return (text, flag) => {
    if (!choices.includes(text)) throw new UsageError(`${flag} must be ${choices.join(' or ')}, got '${text}'`);
    return text;
  };
}

/**
 * A path, as typed. `--out=` would otherwise name the working directory
 * (path.resolve('') is the cwd), which is found out only when a long run
 * tries to write its results there.
 */
export function nonEmptyPath(text, flag) {
  if (text === '') throw new UsageError(`${flag} needs a non-empty path`);
  return text;
}

/** A path made absolute against the working directory. */
export function resolvedPath(text, flag) {
  return path.resolve(nonEmptyPath(text, flag));
}

// ---- parsing ---------------------------------------------------------------

// Every script takes these; readOptions() answers them with the usage text.
const HELP = { name: 'help', short: 'h' };

/**
 * Reads `args` (process.argv without node and the script) into an options
 * object: `defaults` plus `help: false`, overridden by the flags given.
 *
 *   valueFlags  { '--flag': [key, check] }: takes a value, as `--flag value`
 *               or `--flag=value`; options[key] = check(value text, '--flag')
 *   switches    { '--flag': [key, value] }: takes no value; options[key] = value
 *               (-h and --help are always there and set options.help)
 *
 * A repeated flag keeps its last value. Anything else (an unknown flag, a
 * value flag without its value, a switch given a value, an argument that is
 * not a flag) throws a UsageError naming it; the first one found, reading
 * from the left.
 */
export function parseFlags(args, { defaults = {}, valueFlags = {}, switches = {} }) {
  const byName = new Map();
  for (const [flag, [key, check]] of Object.entries(valueFlags)) byName.set(flag.slice(2), { flag, key, check });
  for (const [flag, [key, value]] of Object.entries(switches)) byName.set(flag.slice(2), { flag, key, value });
  const parseArgsOptions = { [HELP.name]: { type: 'boolean', short: HELP.short } };
  for (const [name, entry] of byName) parseArgsOptions[name] = { type: entry.check ? 'string' : 'boolean' };

  const { tokens } = parseArgs({ args, options: parseArgsOptions, strict: false, allowPositionals: true, tokens: true });
  const options = { ...defaults, help: false };
  for (const token of tokens) {
    if (token.kind === 'option-terminator') throw new UsageError("unknown flag '--'");
    if (token.kind === 'positional') {
      throw new UsageError(`unexpected argument '${token.value}' (this script takes only flags)`);
    }
    if (token.name === HELP.name) {
      if (token.inlineValue) throw new UsageError(`${token.rawName} takes no value, got '${args[token.index]}'`);
      options.help = true;
      continue;
    }
    const entry = byName.get(token.name);
    if (entry === undefined) {
      // A group of short flags (-hx) is named as typed, not as the letter parseArgs split off.
      const typed = token.rawName.startsWith('--') ? token.rawName : args[token.index];
      throw new UsageError(`unknown flag '${typed}'`);
    }
    if (entry.check === undefined) {
      if (token.inlineValue) throw new UsageError(`${entry.flag} takes no value, got '${args[token.index]}'`);
      options[entry.key] = entry.value;
    } else {
      // parseArgs takes the next argument whatever it is; a flag there is a
      // mistake (`--epochs --seed 3`), but `--decay -1` reaches the check.
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) {
        throw new UsageError(`${entry.flag} needs a value`);
      }
      options[entry.key] = entry.check(token.value, entry.flag);
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
  const usageText = usage.endsWith('\n') ? usage : `${usage}\n`;
  const parse = (args) => parseFlags(args, flags);
  function readOptions(args) {
    let options;
    try {
      options = parse(args);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      process.stderr.write(`${program}: ${error.message}\n\n${usageText}`);
      process.exitCode = 2;
      return null;
    }
    if (options.help) {
      process.stdout.write(usageText);
      return null;
    }
    return options;
  }
  return { parseFlags: parse, readOptions };
}
