// What the TF.js demo (demo/train-tfjs.mjs) and the browser page share of
// post-hoc EMA (Karras et al. 2024, Section 3): the profiles they track, the
// widths they sweep, and how a reconstruction goes into a model for one
// evaluation. `tf` is passed in, so this runs in Node and in the page.

/** The profiles EDM2 tracks (its Section 3.2): sigma_rel 0.05 and 0.10. */
export const TRACKED_SIGMA_RELS = Object.freeze([0.05, 0.1]);

/** sigma_rel 0.01, 0.02, ..., 0.25: the sweep; it holds both tracked profiles. */
export const SWEEP_SIGMA_RELS = Object.freeze(Array.from({ length: 25 }, (_, index) => (index + 1) / 100));

/**
 * Returns fn() run with `weights` (a Map from variable name to a
 * Float32Array of our own, as reconstruct() gives them; never a view into
 * Wasm memory) in the model's variables, and puts the values they had back
 * afterwards, even if fn throws. Synchronous on purpose: nothing else can
 * run between the write and the restore (two reconstructions evaluated at
 * once would otherwise save each other's weights as the "raw" ones).
 */
export function withWeights(tf, model, weights, fn) {
  const variables = model.weights;
  const missing = variables.filter((variable) => !weights.has(variable.name));
  if (missing.length > 0) {
    const names = missing.map((variable) => `'${variable.name}'`).join(', ');
    throw new Error(`the reconstruction has no weights for ${names}`);
  }
  const saved = variables.map((variable) => variable.read().dataSync().slice());
  const write = (valuesOf) => {
    const tensors = variables.map((variable, index) => tf.tensor(valuesOf(variable, index), variable.shape, 'float32'));
    try {
      model.setWeights(tensors);
    } finally {
      tf.dispose(tensors);
    }
  };
  write((variable) => weights.get(variable.name));
  try {
    return fn();
  } finally {
    write((variable, index) => saved[index]);
  }
}

/** The row with the lowest test loss. */
export function lowestLoss(rows) {
  return rows.reduce((lowest, row) => (row.loss < lowest.loss ? row : lowest));
}
