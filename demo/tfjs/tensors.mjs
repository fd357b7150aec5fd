// Digit sets (see mnist.mjs) as the tensors TF.js trains and evaluates on.
//
// Minibatches are assembled in plain typed arrays and turned into tensors
// one batch at a time: the training set never lives on the backend, and each
// step creates exactly two tensors, which the caller disposes.

import { tf } from './backend.mjs';
import { CLASSES, IMAGE_SIZE } from './mnist.mjs';

/** Images and one-hot labels of set examples order[start..end), as tensors. */
export function batchTensors(set, order, start, end) {
  const size = end - start;
  const images = new Float32Array(size * IMAGE_SIZE);
  const oneHot = new Float32Array(size * CLASSES);
  for (let row = 0; row < size; row++) {
    const example = order[start + row];
    images.set(set.images.subarray(example * IMAGE_SIZE, (example + 1) * IMAGE_SIZE), row * IMAGE_SIZE);
    oneHot[row * CLASSES + set.labels[example]] = 1;
  }
  return {
    xs: tf.tensor2d(images, [size, IMAGE_SIZE]),
    ys: tf.tensor2d(oneHot, [size, CLASSES]),
  };
}

/**
 * The whole set as tensors, for evaluation: { xs, ys, labels, dispose() }.
 * Kept for the whole run, so the many evaluations do not rebuild them.
 */
export function evaluationTensors(set) {
  const order = Uint32Array.from({ length: set.count }, (_, index) => index);
  const { xs, ys } = batchTensors(set, order, 0, set.count);
  const labels = tf.tensor1d(Int32Array.from(set.labels), 'int32');
  return {
    xs,
    ys,
    labels,
    count: set.count,
    dispose: () => tf.dispose([xs, ys, labels]),
  };
}
