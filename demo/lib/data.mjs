// The synthetic task: points on the arms of a spiral, one class per arm.
//
// A spiral is not linearly separable, so the hidden layer has real work to
// do, and the jitter on each point makes neighbouring arms overlap, so the
// minibatch gradients disagree and plain SGD keeps the weights wobbling.

/**
 * Draws `count` points from a spiral with `classes` arms. Each arm turns
 * `turns` times around the origin; `jitter` is the standard deviation of the
 * Gaussian noise added to each coordinate. Returns
 * { inputs: Float32Array(count * 2), labels: Uint8Array(count), count }.
 */
export function makeSpiral({ count, classes, turns, jitter }, random) {
  const inputs = new Float32Array(count * 2);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = random.integer(classes);
    // sqrt spreads the points evenly over the disc instead of piling them up
    // near the centre, where the arms meet and nothing can be learned.
    const radius = Math.sqrt(random.uniform());
    const angle = (2 * Math.PI * label) / classes + 2 * Math.PI * turns * radius;
    inputs[2 * i] = radius * Math.cos(angle) + jitter * random.normal();
    inputs[2 * i + 1] = radius * Math.sin(angle) + jitter * random.normal();
    labels[i] = label;
  }
  return { inputs, labels, count };
}
