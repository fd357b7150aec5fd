// TensorFlow.js for the demo: one `tf` namespace, the wasm backend
// registered next to the built-in cpu one, and a description of what runs.
//
// The demo uses the pure-JS (@tensorflow/tfjs) packages on purpose: they are
// the ones that also run in browsers, where ema-wasm is meant to be used.

import * as tf from '@tensorflow/tfjs';
// Registers the 'wasm' backend; its .wasm binaries are found next to the
// package in node_modules, so no setWasmPaths() is needed in Node.
import '@tensorflow/tfjs-backend-wasm';

export { tf };

/**
 * Switches TF.js to `name` ('cpu' or 'wasm') and waits until it is ready.
 *
 * Then it turns on production mode, which only silences TF.js's console
 * messages (tfjs-core reads the PROD flag in its log helpers and nowhere
 * else). The message it hides is the cpu backend's "install tfjs-node to
 * speed things up" banner, printed in the middle of the first epoch: advice
 * this demo does not follow. It is turned on only after the backend is up,
 * so that TF.js can still say why a backend failed to initialise.
 */
export async function useBackend(name) {
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name) {
    throw new Error(`TF.js backend '${name}' failed to initialise`);
  }
  tf.enableProdMode();
}

/** A short description of the active backend, for the header. */
export async function describeBackend() {
  const name = tf.getBackend();
  const what = `${name} backend of TF.js ${tf.version_core}`;
  if (name !== 'wasm') return `${what} (plain JavaScript kernels)`;
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  return `${what} (WebAssembly kernels, ${simd ? 'SIMD' : 'no SIMD'}, ${threads ? 'multi-threaded' : 'single thread'})`;
}
