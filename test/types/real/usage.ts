// The README's examples against the real packages' types: @tensorflow/tfjs and
// onnxruntime-web, under --strict. Compiled by test/js/types.test.js twice:
// with node16 resolution (tsconfig.node16.json) and with bundler resolution
// (tsconfig.bundler.json). usage.cts does the same through require().
import * as tf from '@tensorflow/tfjs';
import type { TrainingSession } from 'onnxruntime-web';
import { createEma, hasWasmSimd, loadEma, readMetadata, shadowKey, type Ema } from 'ema-wasm';
import { loadEmaFile, saveEmaFile } from 'ema-wasm/node';
import { createOrtEma } from 'ema-wasm/ort';
import { createTfjsEma } from 'ema-wasm/tfjs';

export async function tfjsReadme(xs: tf.Tensor, ys: tf.Tensor, xTest: tf.Tensor, yTest: tf.Tensor): Promise<void> {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 10, inputShape: [784], activation: 'softmax' })] });
  model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
  const ema = await createTfjsEma(model, { decay: 0.999, tf });
  await model.fit(xs, ys, { epochs: 5, batchSize: 32, callbacks: [ema.callback()] });
  await model.trainOnBatch(xs, ys);
  const decay: number = ema.update().decay;
  const [loss, accuracy] = await ema.withEma(() =>
    tf.tidy(() => (model.evaluate(xTest, yTest) as tf.Scalar[]).map((t) => t.dataSync()[0])),
  );
  // A list of tf.Variable works as well as a model.
  const variables = [tf.variable(tf.zeros([2, 3])), tf.variable(tf.zeros([3]))];
  const fromVariables = await createTfjsEma(variables, { tf });
  const layerVariables = await createTfjsEma(model.trainableWeights);
  const saved: Uint8Array = ema.ema.save();
  void [decay, loss, accuracy, fromVariables, layerVariables, saved];
}

export async function ortReadme(session: TrainingSession, feeds: Record<string, unknown>): Promise<void> {
  const ema = await createOrtEma(session, { decay: 0.999 });
  const decay: number = (await ema.update()).decay;
  const out = await ema.withEma(() => session.runEvalStep(feeds as never));
  await ema.copyTo();
  const vector: Float32Array = ema.shadow();
  void [decay, out, vector];
}

export async function coreReadme(module: WebAssembly.Module, response: Response): Promise<void> {
  const params = [{ name: 'layer1.weight', data: new Float32Array(128), shape: [64, 2] }];
  const ema: Ema = await createEma(params, { decay: 0.9999 });
  ema.update(params);
  await ema.withEma(params, () => 0);
  const bytes = ema.save({ metadata: { step: '1' } });
  const metadata: Record<string, string> = await readMetadata(bytes, { wasm: module });
  const loaded: Ema = await loadEma(bytes, { wasm: new URL('https://cdn.example/ema-simd.wasm') });
  await createEma(params, { wasm: response });
  await createEma(params, { wasm: new Uint8Array(8) });
  await createEma(params, { wasm: 'https://cdn.example/ema-simd.wasm' });
  await saveEmaFile(ema, 'ema.safetensors');
  const fromDisk: Ema = await loadEmaFile('ema.safetensors');
  void [metadata, loaded, fromDisk, hasWasmSimd(), shadowKey('a.b')];
  // @ts-expect-error: options.wasm is a module, bytes, a Response or a URL
  await createEma(params, { wasm: 42 });
}
