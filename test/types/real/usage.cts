// CommonJS consumers: require() resolves the "require" condition, whose
// declarations are dist/cjs/*.d.cts.
import ema = require('ema-wasm');
import tfjs = require('ema-wasm/tfjs');
import ort = require('ema-wasm/ort');
import files = require('ema-wasm/node');

export async function commonJs(): Promise<void> {
  const created = await ema.createEma({ w: new Float32Array(4) }, { decay: 0.9 });
  const decay: number = created.update({ w: new Float32Array(4) }).decay;
  void [decay, tfjs.createTfjsEma, ort.createOrtEma, files.saveEmaFile];
}
