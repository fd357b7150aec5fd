// What every test app does with the package: create an EMA with warmup,
// run a few updates and report what came out, bit for bit.
import { createEma } from 'ema-wasm';

import { DECAY, PARAM_LENGTHS, UPDATES, float32Bits, paramsAt } from './inputs.js';

export async function runEma() {
  const ema = await createEma(paramsAt(0), { decay: DECAY, useNumUpdates: true });
  const decays = [];
  for (let step = 1; step <= UPDATES; step++) {
    decays.push(ema.update(paramsAt(step)).decay);
  }
  const shadows = {};
  for (const name of Object.keys(PARAM_LENGTHS)) {
    shadows[name] = float32Bits(ema.shadow(name));
  }
  const report = { simd: ema.simd, decays, shadows };
  ema.dispose();
  return report;
}
