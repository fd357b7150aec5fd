// How error messages name what came. A message must stay useful for any
// input: a million names, a name a megabyte long, a Proxy that throws from
// every trap. Only error paths use this file.

import { lengthOf, typedArrayKind } from './typed-arrays.js';

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);

const LISTED_NAMES = 5;
const QUOTED_CHARACTERS = 120;

/** `value` in a few words ("a Float64Array of 3", "the string \"x\"", "null"). */
export function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return `the string ${JSON.stringify(clip(value))}`;
  if (typeof value === 'bigint') return `bigint ${value}n`;
  if (typeof value !== 'object') return `${typeof value} ${String(value)}`;
  const kind = typedArrayKind(value);
  if (kind !== undefined) return `${/^[AEIOU]/.test(kind) ? 'an' : 'a'} ${kind} of ${lengthOf(value)}`;
  try {
    if (Array.isArray(value)) return 'an array';
    const name = constructorName(value);
    // A Proxy of a typed array, or an object given a typed array's
    // prototype, passes instanceof; the internal slots above did not.
    if (Object.prototype.isPrototypeOf.call(TypedArrayPrototype, value)) {
      return `an object posing as a ${name} (a Proxy, or an object given its prototype), not a real typed array`;
    }
    return `an object (${name})`;
  } catch {
    return 'an object whose properties cannot be read (a Proxy?)';
  }
}

function constructorName(value) {
  const constructor = value.constructor;
  return typeof constructor === 'function' && typeof constructor.name === 'string' && constructor.name !== ''
    ? clip(constructor.name)
    : 'no prototype';
}

/** A long text cut to its first characters, marked with an ellipsis. */
export function clip(text) {
  return text.length <= QUOTED_CHARACTERS ? text : `${text.slice(0, QUOTED_CHARACTERS)}…`;
}

/** "a, b, c", or the first few items and "and 999,995 more". */
export function listSome(items) {
  return joinFirst(items.slice(0, LISTED_NAMES), items.length);
}

/** "'a', 'b', 'c'", or the first few names and "and 999,995 more". */
export function quoteList(names) {
  const all = [...names];
  return joinFirst(all.slice(0, LISTED_NAMES).map((name) => `'${clip(String(name))}'`), all.length);
}

function joinFirst(shown, total) {
  const rest = total - shown.length;
  return rest > 0 ? `${shown.join(', ')} and ${rest.toLocaleString('en-US')} more` : shown.join(', ');
}

/** A byte count for messages: "4,294,967,296 bytes (4 GiB)". */
export function formatBytes(bytes) {
  const units = [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]];
  const [unit, size] = units.find(([, unitSize]) => bytes >= unitSize) ?? ['bytes', 1];
  const scaled = unit === 'bytes' ? '' : ` (${Number((bytes / size).toPrecision(3))} ${unit})`;
  return `${bytes.toLocaleString('en-US')} bytes${scaled}`;
}

/**
 * The TypeError for a method called on something other than its object (a
 * method passed as a callback loses it): says how to call it instead.
 */
export function wrongReceiver(method, value) {
  return new TypeError(
    `ema-wasm: ${method}: called on ${describe(value)}, not on an EMA; call it as ema.${method}, ` +
      `or bind it (ema.${method}.bind(ema)) before passing it as a callback`,
  );
}
