// A 2-layer perceptron (inputs -> tanh hidden layer -> softmax) trained with
// hand-written minibatch SGD. Its weights live in Float32Arrays that SGD
// updates in place, which is exactly what ema-wasm reads and writes, so the
// same arrays are handed to the model, the optimiser and the EMA.
//
// Weight matrices are row-major [outputs, inputs], as PyTorch's nn.Linear
// stores them.

/**
 * Creates the model with weights drawn from `random`. The first layer gets a
 * wide initialisation (std `inputScale / sqrt(fan_in)`): the spiral's arms
 * are close together, and a hidden layer of gentle tanh slopes would spend
 * most of the run just sharpening itself.
 */
export function createMlp({ inputs, hidden, outputs, inputScale }, random) {
  const layer1Weight = new Float32Array(hidden * inputs);
  const layer1Bias = new Float32Array(hidden);
  const layer2Weight = new Float32Array(outputs * hidden);
  const layer2Bias = new Float32Array(outputs);
  fillNormal(layer1Weight, inputScale / Math.sqrt(inputs), random);
  fillNormal(layer1Bias, inputScale / Math.sqrt(inputs), random);
  fillNormal(layer2Weight, 1 / Math.sqrt(hidden), random);

  return {
    sizes: { inputs, hidden, outputs },
    // The list ema-wasm takes: names as a PyTorch state_dict would have them.
    params: [
      { name: 'layer1.weight', data: layer1Weight, shape: [hidden, inputs] },
      { name: 'layer1.bias', data: layer1Bias, shape: [hidden] },
      { name: 'layer2.weight', data: layer2Weight, shape: [outputs, hidden] },
      { name: 'layer2.bias', data: layer2Bias, shape: [outputs] },
    ],
    // Gradients accumulate in float64 so a minibatch sum loses nothing.
    gradients: [
      new Float64Array(layer1Weight.length),
      new Float64Array(layer1Bias.length),
      new Float64Array(layer2Weight.length),
      new Float64Array(layer2Bias.length),
    ],
    // Per-example activations, reused for every example to avoid garbage.
    hiddenActivations: new Float64Array(hidden),
    probabilities: new Float64Array(outputs),
  };
}

function fillNormal(array, std, random) {
  for (let i = 0; i < array.length; i++) array[i] = std * random.normal();
}

export function parameterCount(model) {
  return model.params.reduce((total, { data }) => total + data.length, 0);
}

/**
 * Runs example `index` of `dataset` through the model, leaving the hidden
 * activations and the class probabilities in the model's scratch buffers.
 */
function forward(model, dataset, index) {
  const { inputs, hidden, outputs } = model.sizes;
  const [w1, b1, w2, b2] = model.params.map((param) => param.data);
  const x = dataset.inputs.subarray(index * inputs, (index + 1) * inputs);
  const h = model.hiddenActivations;
  for (let j = 0; j < hidden; j++) {
    let sum = b1[j];
    for (let k = 0; k < inputs; k++) sum += w1[j * inputs + k] * x[k];
    h[j] = Math.tanh(sum);
  }
  // Softmax with the largest logit subtracted, so exp never overflows.
  const p = model.probabilities;
  let largest = -Infinity;
  for (let c = 0; c < outputs; c++) {
    let sum = b2[c];
    for (let j = 0; j < hidden; j++) sum += w2[c * hidden + j] * h[j];
    p[c] = sum;
    if (sum > largest) largest = sum;
  }
  let total = 0;
  for (let c = 0; c < outputs; c++) {
    p[c] = Math.exp(p[c] - largest);
    total += p[c];
  }
  for (let c = 0; c < outputs; c++) p[c] /= total;
}

/** Cross-entropy of the current probabilities against `label`. */
function crossEntropy(model, label) {
  // The floor keeps one hopeless example from turning the mean into Infinity.
  return -Math.log(Math.max(model.probabilities[label], 1e-12));
}

/**
 * Adds the gradient of the cross-entropy of the example just run through
 * forward() to the model's gradient buffers.
 */
function accumulateGradients(model, dataset, index, label) {
  const { inputs, hidden, outputs } = model.sizes;
  const w2 = model.params[2].data;
  const [gw1, gb1, gw2, gb2] = model.gradients;
  const x = dataset.inputs.subarray(index * inputs, (index + 1) * inputs);
  const h = model.hiddenActivations;
  const p = model.probabilities;
  for (let j = 0; j < hidden; j++) {
    // dLoss/dlogit_c is p_c - [c == label]; push it back through layer 2 ...
    let upstream = 0;
    for (let c = 0; c < outputs; c++) {
      const dLogit = p[c] - (c === label ? 1 : 0);
      gw2[c * hidden + j] += dLogit * h[j];
      upstream += dLogit * w2[c * hidden + j];
    }
    // ... and through tanh, whose derivative is 1 - tanh^2.
    const dPreActivation = upstream * (1 - h[j] * h[j]);
    gb1[j] += dPreActivation;
    for (let k = 0; k < inputs; k++) gw1[j * inputs + k] += dPreActivation * x[k];
  }
  for (let c = 0; c < outputs; c++) gb2[c] += p[c] - (c === label ? 1 : 0);
}

/** One plain SGD step: w -= learningRate * mean gradient; clears the gradients. */
function applySgd(model, learningRate, batchSize) {
  const scale = learningRate / batchSize;
  model.params.forEach(({ data }, slot) => {
    const gradient = model.gradients[slot];
    for (let i = 0; i < data.length; i++) data[i] -= scale * gradient[i];
    gradient.fill(0);
  });
}

/**
 * Trains on the examples `order[start..end)` as one minibatch and returns
 * their mean loss (measured before the step, as frameworks report it).
 */
export function trainStep(model, dataset, order, start, end, learningRate) {
  let lossSum = 0;
  for (let i = start; i < end; i++) {
    const index = order[i];
    const label = dataset.labels[index];
    forward(model, dataset, index);
    lossSum += crossEntropy(model, label);
    accumulateGradients(model, dataset, index, label);
  }
  applySgd(model, learningRate, end - start);
  return lossSum / (end - start);
}

/** Mean cross-entropy and accuracy of the current weights on `dataset`. */
export function evaluate(model, dataset) {
  let lossSum = 0;
  let correct = 0;
  for (let index = 0; index < dataset.count; index++) {
    const label = dataset.labels[index];
    forward(model, dataset, index);
    lossSum += crossEntropy(model, label);
    if (argmax(model.probabilities) === label) correct += 1;
  }
  return { loss: lossSum / dataset.count, accuracy: correct / dataset.count };
}

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
