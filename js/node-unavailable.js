// ema-wasm/node outside Node (the "default" condition of its export): the
// same functions, each refusing with what to use instead, so that a browser
// bundle that pulls the entry in builds, and fails only if a file function is
// called, with a message rather than a bundler's "cannot resolve node:fs".

function unavailable(name) {
  return async function refuse() {
    throw new Error(
      `ema-wasm/node: ${name} reads and writes files with Node's fs, and this runtime is not Node. ` +
        'Elsewhere, use ema.save() for the bytes of a file, and loadEma(bytes) or ema.loadState(bytes) to read one; ' +
          'ema.snapshot() gives snapshots as bytes, and reconstruct() takes them.',
    );
  };
}

export const writeFileAtomic = unavailable('writeFileAtomic');
export const saveEmaFile = unavailable('saveEmaFile');
export const loadEmaFile = unavailable('loadEmaFile');
export const loadEmaStateFile = unavailable('loadEmaStateFile');
export const writeSnapshots = unavailable('writeSnapshots');
export const readSnapshots = unavailable('readSnapshots');
