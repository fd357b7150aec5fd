// LitEma names each shadow buffer by removing every '.' from the parameter's
// name. That is not one-to-one, and a stripped name can land on LitEma's own
// buffers; upstream then silently merges or overwrites state. We refuse both.

import { quoteList } from './params.js';

const RESERVED_KEYS = new Set(['decay', 'num_updates']);

/** LitEma's buffer name for a parameter name. */
export function shadowKey(name) {
  return name.replaceAll('.', '');
}

/**
 * Returns the shadow keys of `names` (in order), or throws an Error naming
 * every parameter whose key is empty, reserved, or shared with another.
 */
export function shadowKeysFor(names) {
  const owners = new Map();
  for (const name of names) {
    const key = shadowKey(name);
    if (key.length === 0) {
      throw new Error(
        `ema-wasm: parameter '${name}' has no characters left once its dots are removed; ` +
          'LitEma cannot name its shadow',
      );
    }
    if (RESERVED_KEYS.has(key)) {
      throw new Error(
        `ema-wasm: parameter '${name}' becomes '${key}' once its dots are removed, ` +
          `which would overwrite LitEma's own '${key}' buffer; rename the parameter`,
      );
    }
    if (!owners.has(key)) owners.set(key, []);
    owners.get(key).push(name);
  }
  for (const [key, sharing] of owners) {
    if (sharing.length > 1) {
      throw new Error(
        `ema-wasm: parameters ${quoteList(sharing)} all become '${key}' once their dots are ` +
          'removed, so LitEma would merge them into one shadow; rename one of them',
      );
    }
  }
  return [...owners.keys()];
}
