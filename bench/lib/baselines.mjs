// What a user has without ema-wasm, written as that user would: LitEma's
// step as a plain JS loop, the same step in idiomatic TensorFlow.js ops, and
// the copy floor (TypedArray.prototype.set). The fourth baseline, the same C
// core built natively, is bench/native.c, driven by native.mjs.
//
// The JS loop and the TF.js ops must give the very bits the C core gives
// (verify.mjs checks it), so every step rounds to float32 where C does.

/**
 * LitEma's decay for the next step, in float32, as the C core computes it:
 * with warmup (numUpdates >= 0), min(decay, (1 + n) / (10 + n)) after n
 * updates. Advances state.numUpdates.
 */
export function nextDecay(state) {
  let decay = state.decay;
  if (state.numUpdates >= 0) {
    state.numUpdates += 1;
    const n = state.numUpdates;
    const ratio = Math.fround(Math.fround(1 + n) / Math.fround(10 + n));
    if (ratio < decay) decay = ratio;
  }
  return decay;
}

/** LitEma's step as a loop over Float32Arrays, rounded like float32. */
export class JsLoopEma {
  constructor(arrays, decay) {
    this.state = { decay: Math.fround(decay), numUpdates: 0 };
    this.shadows = arrays.map((data) => Float32Array.from(data));
  }

  /** One step towards `arrays`; returns the decay it used. */
  update(arrays) {
    const decay = nextDecay(this.state);
    const w = Math.fround(1 - decay);
    for (let t = 0; t < arrays.length; t++) {
      const p = arrays[t];
      const s = this.shadows[t];
      for (let i = 0; i < s.length; i++) {
        s[i] = Math.fround(s[i] - Math.fround(w * Math.fround(s[i] - p[i])));
      }
    }
    return decay;
  }
}

/**
 * LitEma in idiomatic TF.js: a shadow tf.Variable per weight and, per step,
 *   tf.tidy(() => { for each: shadow.assign(shadow.sub(shadow.sub(param).mul(oneMinusDecay))) })
 * (one tidy around the loop, so no tensor leaks).
 */
export class IdiomaticTfjsEma {
  constructor(tf, variables, decay, nameSuffix) {
    this.tf = tf;
    this.variables = variables;
    this.state = { decay: Math.fround(decay), numUpdates: 0 };
    this.shadowVariables = variables.map((v, i) => tf.variable(v.clone(), false, `ema${i}_${nameSuffix}`));
  }

  /** One step towards the variables' values; returns the decay it used. */
  update() {
    const decay = nextDecay(this.state);
    const oneMinusDecay = Math.fround(1 - decay);
    this.tf.tidy(() => {
      for (let i = 0; i < this.shadowVariables.length; i++) {
        const shadow = this.shadowVariables[i];
        shadow.assign(shadow.sub(shadow.sub(this.variables[i]).mul(oneMinusDecay)));
      }
    });
    return decay;
  }

  /** The shadows' values, as Float32Arrays. */
  shadows() {
    return this.shadowVariables.map((v) => v.dataSync());
  }
}

/** The copy floor: what copying the weights costs at best in JS. */
export function copyWithSet(targets, sources) {
  for (let t = 0; t < targets.length; t++) targets[t].set(sources[t]);
}
