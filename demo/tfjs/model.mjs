// The classifier: a TF.js MLP, 784 pixels -> ReLU hidden layer -> 10 class
// probabilities, trained by plain minibatch SGD, plus its test metrics.
//
// An MLP rather than a CNN: the wasm backend has no gradient kernels for
// conv2d (Conv2DBackpropFilter), and on the cpu backend even a tiny CNN
// takes about 20x longer per step than this MLP.

import { tf } from './backend.mjs';
import { CLASSES, IMAGE_SIZE } from './mnist.mjs';

/**
 * A compiled tf.Sequential. The kernels get seeded Glorot initialisers, so a
 * given `seed` always starts from the same weights (biases start at zero).
 */
export function createClassifier({ hidden, learningRate }, seed) {
  const model = tf.sequential({
    name: 'mnist_mlp',
    layers: [
      tf.layers.dense({
        name: 'hidden',
        inputShape: [IMAGE_SIZE],
        units: hidden,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
      }),
      tf.layers.dense({
        name: 'output',
        units: CLASSES,
        activation: 'softmax',
        // A different seed from the first layer's, or both would draw the
        // same stream of numbers.
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
      }),
    ],
  });
  // Plain SGD, no momentum: momentum is itself an average of recent
  // gradients and would hide part of what the EMA of the weights does.
  const optimizer = tf.train.sgd(learningRate);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  return {
    model,
    /** Disposes the weights and the optimizer (the model does not own it). */
    dispose() {
      model.dispose();
      optimizer.dispose();
    },
  };
}

/** { loss, accuracy } of `model` on evaluation tensors (see tensors.mjs). */
export function evaluate(model, data) {
  const metrics = tf.tidy(() => {
    // predictOnBatch, not predict: predict() slices the input into batches of
    // 32, and Slice is slow on the wasm backend (1.6 s for 2,000 digits).
    const probabilities = model.predictOnBatch(data.xs);
    const loss = tf.metrics.categoricalCrossentropy(data.ys, probabilities).mean();
    const accuracy = probabilities.argMax(-1).equal(data.labels).cast('float32').mean();
    return tf.stack([loss, accuracy]);
  });
  const [loss, accuracy] = metrics.dataSync();
  metrics.dispose();
  return { loss, accuracy };
}
