// LitEma names each shadow buffer by removing every '.' from the parameter's
// name. That is not one-to-one, and a stripped name can land on LitEma's own
// buffers; upstream then silently merges or overwrites state. We refuse both.

import { clip, quoteList } from './describe.js';

const RESERVED_KEYS = new Set(['decay', 'num_updates']);

/** LitEma's buffer name for a parameter name. */
export function shadowKey(name) {
  return name.replaceAll('.', '');
}

/** False for strings holding a lone surrogate, which UTF-8 cannot encode. */
export function isWellFormed(text) {
  if (typeof text.isWellFormed === 'function') return text.isWellFormed();
  try {
    encodeURIComponent(text); // throws exactly on a lone surrogate
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws unless `text` can be written into a safetensors header and read back
 * unchanged: well-formed Unicode (a lone surrogate has no UTF-8 form) and, for
 * tensor names, no U+0000 (which the loader refuses in names).
 */
export function checkSavableText(text, what, method, { allowNul = false } = {}) {
  if (!isWellFormed(text)) {
    throw new Error(
      `ema-wasm: ${method}: ${what} is not well-formed Unicode (it holds a lone surrogate), so it cannot be saved`,
    );
  }
  if (!allowNul && text.includes('\0')) {
    throw new Error(`ema-wasm: ${method}: ${what} holds U+0000, which a safetensors tensor name cannot hold`);
  }
}

/**
 * Returns the shadow keys of `names` (in order), or throws an Error naming
 * every parameter whose key is empty, reserved, or shared with another, or
 * whose name could not be saved and loaded back. Only LitEma removes dots
 * (`litEma`); every other recipe keeps a shadow under its parameter's name.
 */
export function shadowKeysFor(names, method = 'createEma', litEma = true) {
  if (!litEma) {
    for (const name of names) checkSavableText(name, `parameter name '${clip(name)}'`, method);
    return names.slice();
  }
  const owners = new Map();
  for (const name of names) {
    checkSavableText(name, `parameter name '${clip(name)}'`, method);
    const key = shadowKey(name);
    if (key.length === 0) {
      throw new Error(
        `ema-wasm: ${method}: parameter '${clip(name)}' has no characters left once its dots are removed; ` +
          'LitEma cannot name its shadow',
      );
    }
    if (RESERVED_KEYS.has(key)) {
      throw new Error(
        `ema-wasm: ${method}: parameter '${clip(name)}' becomes '${clip(key)}' once its dots are removed, ` +
          `which would overwrite LitEma's own '${clip(key)}' buffer; rename the parameter`,
      );
    }
    if (!owners.has(key)) owners.set(key, []);
    owners.get(key).push(name);
  }
  for (const [key, sharing] of owners) {
    if (sharing.length > 1) {
      throw new Error(
        `ema-wasm: ${method}: parameters ${quoteList(sharing)} all become '${clip(key)}' once their dots are ` +
          'removed, so LitEma would merge them into one shadow; rename one of them',
      );
    }
  }
  return [...owners.keys()];
}
