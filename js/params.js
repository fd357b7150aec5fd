// Turns the three accepted shapes of `params` into one list of entries and
// checks every entry, so the methods that use them never see bad input.
//
//   [{ name, data, shape?, trainable? }, ...]   (trainable defaults to true)
//   new Map([[name, Float32Array], ...])
//   { [name]: Float32Array }

export function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

function isPlainObject(value) {
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function checkShape(shape, data, where) {
  if (!Array.isArray(shape)) {
    throw new TypeError(`ema-wasm: ${where}.shape must be an array of integers, got ${describe(shape)}`);
  }
  let product = 1;
  for (const dimension of shape) {
    if (!Number.isSafeInteger(dimension) || dimension < 0) {
      throw new RangeError(
        `ema-wasm: ${where}.shape must hold non-negative integers, got [${shape.join(', ')}]`,
      );
    }
    product *= dimension;
  }
  if (product !== data.length) {
    throw new Error(
      `ema-wasm: ${where}.shape [${shape.join(', ')}] holds ${product} elements ` +
        `but its data has ${data.length}`,
    );
  }
  return shape.slice();
}

function checkEntry(name, data, shape, trainable, method, where) {
  if (typeof name !== 'string') {
    throw new TypeError(`ema-wasm: ${method}: ${where}.name must be a string, got ${describe(name)}`);
  }
  if (name.length === 0) {
    throw new Error(`ema-wasm: ${method}: ${where}.name is empty; every parameter needs a name`);
  }
  if (!(data instanceof Float32Array)) {
    throw new TypeError(
      `ema-wasm: ${method}: parameter '${name}' must be a Float32Array, got ${describe(data)}`,
    );
  }
  if (trainable !== undefined && typeof trainable !== 'boolean') {
    throw new TypeError(
      `ema-wasm: ${method}: parameter '${name}'.trainable must be a boolean, got ${describe(trainable)}`,
    );
  }
  return {
    name,
    data,
    shape: shape === undefined ? [data.length] : checkShape(shape, data, `${method}: parameter '${name}'`),
    trainable: trainable ?? true,
  };
}

/**
 * Checks `params` and returns [{ name, data, shape, trainable }] in the
 * caller's order. Throws TypeError for wrong types and Error for duplicate
 * names. `method` names the API call in messages.
 */
export function normalizeParams(params, method) {
  const entries = [];
  if (Array.isArray(params)) {
    params.forEach((item, index) => {
      if (item === null || typeof item !== 'object') {
        throw new TypeError(
          `ema-wasm: ${method}: params[${index}] must be an object { name, data }, got ${describe(item)}`,
        );
      }
      entries.push(checkEntry(item.name, item.data, item.shape, item.trainable, method, `params[${index}]`));
    });
  } else if (params instanceof Map) {
    for (const [name, data] of params) {
      entries.push(checkEntry(name, data, undefined, undefined, method, 'a Map key'));
    }
  } else if (isPlainObject(params)) {
    for (const name of Object.keys(params)) {
      entries.push(checkEntry(name, params[name], undefined, undefined, method, 'an object key'));
    }
  } else {
    throw new TypeError(
      `ema-wasm: ${method}: params must be an array of { name, data }, a Map of name to ` +
        `Float32Array, or an object of Float32Arrays; got ${describe(params)}`,
    );
  }

  const seen = new Set();
  const duplicates = new Set();
  for (const { name } of entries) {
    if (seen.has(name)) duplicates.add(name);
    seen.add(name);
  }
  if (duplicates.size > 0) {
    throw new Error(`ema-wasm: ${method}: duplicate parameter names: ${quoteList(duplicates)}`);
  }
  return entries;
}

export function quoteList(names) {
  return [...names].map((name) => `'${name}'`).join(', ');
}
