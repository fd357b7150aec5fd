// The models the benchmark times, and how hard it times each: from many
// small tensors (2000 of 64 floats, where the cost per call dominates) to
// 64M parameters (far past the caches, where memory bandwidth does).

/** LitEma's default decay; every variant runs it with warmup on (useNumUpdates). */
export const DECAY = 0.9999;

/** ResNet-50 (torchvision) trainable parameters: 161 tensors, 25,557,032 floats. */
function resnet50Spec() {
  const spec = [];
  const add = (name, shape) => spec.push({ name, shape });
  const bn = (prefix, channels) => {
    add(`${prefix}.weight`, [channels]);
    add(`${prefix}.bias`, [channels]);
  };
  add('conv1.weight', [64, 3, 7, 7]);
  bn('bn1', 64);
  let inplanes = 64;
  [[64, 3], [128, 4], [256, 6], [512, 3]].forEach(([planes, blocks], layer) => {
    for (let block = 0; block < blocks; block++) {
      const p = `layer${layer + 1}.${block}`;
      add(`${p}.conv1.weight`, [planes, inplanes, 1, 1]);
      bn(`${p}.bn1`, planes);
      add(`${p}.conv2.weight`, [planes, planes, 3, 3]);
      bn(`${p}.bn2`, planes);
      add(`${p}.conv3.weight`, [planes * 4, planes, 1, 1]);
      bn(`${p}.bn3`, planes * 4);
      if (block === 0) {
        add(`${p}.downsample.0.weight`, [planes * 4, inplanes, 1, 1]);
        bn(`${p}.downsample.1`, planes * 4);
      }
      inplanes = planes * 4;
    }
  });
  add('fc.weight', [1000, 2048]);
  add('fc.bias', [1000]);
  return spec;
}

function uniformSpec(count, shape, prefix) {
  return Array.from({ length: count }, (_, i) => ({ name: `${prefix}.${i}.weight`, shape }));
}

// spec: the tensors, as [{ name, shape }]. tfjs: whether the TF.js rows run
// by default (an idiomatic cpu update of the larger models takes seconds).
//
// plan (full, or quick for --quick): warm-up operations per variant;
// interleaved rounds (tfRounds for the TF.js phase); per round and variant
// one block of blockWarmup untimed then at most repsPerRound timed
// operations, fewer for slow variants so that a block takes about blockMs.
// Many short rounds rather than a few long ones: load bursts on a shared VM
// last seconds, and short rounds spread them over every variant. (Models
// past the caches need no untimed operation per block.)
// The two plans the models use: many short blocks for models that stay in
// the caches, fewer and longer ones for models that do not.
const CACHE_SIZED_PLANS = {
  full: { warmup: 10, rounds: 25, repsPerRound: 4, blockWarmup: 2, blockMs: 100, tfRounds: 12 },
  quick: { warmup: 3, rounds: 3, repsPerRound: 3, blockWarmup: 2, blockMs: 50, tfRounds: 2 },
};
const MEMORY_SIZED_PLANS = {
  full: { warmup: 2, rounds: 12, repsPerRound: 2, blockWarmup: 0, blockMs: 150, tfRounds: 3 },
  quick: { warmup: 1, rounds: 2, repsPerRound: 1, blockWarmup: 0, blockMs: 100, tfRounds: 1 },
};

export const MODELS = [
  {
    key: '1M',
    label: '1M params, 8 tensors',
    spec: () => uniformSpec(8, [512, 256], 'layers'),
    tfjs: true,
    ...CACHE_SIZED_PLANS,
  },
  {
    key: 'resnet50',
    label: 'ResNet-50, 161 tensors',
    spec: resnet50Spec,
    tfjs: false,
    ...MEMORY_SIZED_PLANS,
  },
  {
    // Not in the default run: the model of the first benchmark's 3x target
    // (npm run bench:update runs it with 1M).
    key: '16M',
    label: '16M params, 64 tensors',
    spec: () => uniformSpec(64, [512, 512], 'layers'),
    tfjs: false,
    inDefaultRun: false,
    ...MEMORY_SIZED_PLANS,
  },
  {
    key: '64M',
    label: '64M params, 64 tensors',
    spec: () => uniformSpec(64, [1024, 1024], 'layers'),
    tfjs: false,
    full: { warmup: 2, rounds: 12, repsPerRound: 1, blockWarmup: 0, blockMs: 150, tfRounds: 3 },
    quick: { warmup: 1, rounds: 2, repsPerRound: 1, blockWarmup: 0, blockMs: 100, tfRounds: 1 },
  },
  {
    key: 'tiny2000',
    label: '2000 tensors of 64',
    spec: () => uniformSpec(2000, [64], 'tiny'),
    tfjs: true,
    ...CACHE_SIZED_PLANS,
  },
];

/** What `npm run bench` times without --only. */
export const DEFAULT_MODELS = MODELS.filter((model) => model.inDefaultRun !== false);

export function modelByKey(key) {
  return MODELS.find((model) => model.key === key);
}

/**
 * The models named in `text`, a comma-separated list of keys (any case;
 * 'tiny' is tiny2000), in MODELS order; null if any name is unknown.
 */
export function modelsNamed(text) {
  const keys = text.split(',').map((key) => key.trim().toLowerCase());
  const chosen = MODELS.filter((model) => keys.some((key) => model.key.toLowerCase() === key || (key === 'tiny' && model.key === 'tiny2000')));
  return chosen.length === keys.length ? chosen : null;
}

export function sizeOf(shape) {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

/** Parameters (floats) in a model's spec. */
export function paramCount(spec) {
  return spec.reduce((sum, { shape }) => sum + sizeOf(shape), 0);
}
