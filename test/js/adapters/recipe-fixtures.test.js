// Replays the PyTorch runs of every recipe (test/fixtures/recipes.txt, see
// test/js/recipes.test.js) through the two adapters on both Wasm builds, and
// compares bit for bit what each call did: its action, counter and float32
// weight, every shadow, and (Keras overwrites) the weights after the call.
//
// - TF.js (cpu backend): 'param' entries are trainable variables, float32
//   'buffer' entries the model's nonTrainableWeights, tracked by buffers: true.
// - onnxruntime-web (a fake TrainingSession): the session holds its trainable
//   parameters as one flat buffer, so the 'param' entries are concatenated in
//   order (an elementwise EMA of a concatenation is the concatenation of the
//   EMAs) and the one shadow is compared with the concatenated expected ones.
//
// A power case of several profiles compares every profile's shadows
// (shadow(name, { profile }), and the session's shadow({ profile })).
//
// What an adapter cannot hold (frozen parameters and integer buffers in
// TF.js; anything but trainable parameters in the session) is left out when
// the recipe ignores it anyway, and otherwise the case is skipped, by name.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { createOrtEma } from '../../../js/adapters/ort.js';
import { createTfjsEma } from '../../../js/adapters/tfjs.js';
import { BUILDS, buildName } from '../helpers.js';
import { assertSameBits, assertStepResult, callOptions, readRecipeFixtures } from '../recipe-fixture.js';

const cases = readRecipeFixtures();

// The recipes that keep trainable parameters only (README's recipe table):
// a frozen parameter or a buffer given to them changes nothing, so leaving it
// out replays the same run. Each replay checks that the fixture indeed never
// keeps what was left out.
const TRAINABLE_ONLY = new Set(['litema', 'keras', 'debiased', 'power']);

/** { fixture, used: [entry index], skip: false or why } for an adapter that holds entries where holds(entry). */
function plan(fixture, holds) {
  const used = [];
  for (const [index, entry] of fixture.entries.entries()) {
    if (holds(entry)) used.push(index);
    else if (!TRAINABLE_ONLY.has(fixture.recipe)) {
      return { fixture, used, skip: `the adapter cannot hold ${entry.kind} ${entry.dtype} '${entry.name}', and ${fixture.recipe} does not keep trainable parameters only` };
    }
  }
  return { fixture, used, skip: false };
}

const tfjsPlans = cases.map((fixture) => plan(fixture, (entry) => entry.dtype === 'f32' && entry.kind !== 'frozen'));
const ortPlans = cases.map((fixture) => plan(fixture, (entry) => entry.dtype === 'f32' && entry.kind === 'param'));

// Counted when written, of 78 cases; a change in the fixtures or the plans
// must show here. The other cases (33 and 35) are skipped because torch_ema,
// diffusers, timm and ema-pytorch keep frozen parameters, integer buffers and
// (in a session) buffers, and most of their cases have one.
const TFJS_REPLAYED = 45;
const ORT_REPLAYED = 43;

function concat(arrays) {
  const out = new Float32Array(arrays.reduce((sum, array) => sum + array.length, 0));
  let offset = 0;
  for (const array of arrays) {
    out.set(array, offset);
    offset += array.length;
  }
  return out;
}

/** Checks what update() returned, and that the fixture keeps nothing of what was left out. */
function checkCall({ fixture, used }, result, call, where) {
  assertStepResult(result, call, fixture.recipe, where);
  fixture.entries.forEach((entry, e) => {
    if (!used.includes(e) && call.shadows !== null) {
      assert.equal(call.shadows[e], null, `${where}: '${entry.name}' was left out, but ${fixture.recipe} keeps it`);
    }
  });
}

test('the adapters replay the recipe fixtures of every recipe', () => {
  const replayed = (plans) => plans.filter(({ skip }) => !skip);
  assert.ok(replayed(tfjsPlans).length >= TFJS_REPLAYED, `TF.js replays ${replayed(tfjsPlans).length} cases`);
  assert.ok(replayed(ortPlans).length >= ORT_REPLAYED, `onnxruntime-web replays ${replayed(ortPlans).length} cases`);
  const recipes = new Set(cases.map(({ recipe }) => recipe));
  for (const plans of [tfjsPlans, ortPlans]) {
    assert.deepEqual(new Set(replayed(plans).map(({ fixture }) => fixture.recipe)), recipes);
  }
});

for (const simd of BUILDS) {
  describe(`recipe fixtures through the TF.js adapter, ${buildName(simd)} build`, () => {
    before(async () => {
      await tf.setBackend('cpu');
      await tf.ready();
    });

    for (const replay of tfjsPlans) {
      const { fixture, used, skip } = replay;
      test(fixture.id, { skip }, async () => {
        const entries = used.map((e) => fixture.entries[e]);
        // A fresh array per tensor: the cpu backend keeps the array it is given.
        const assign = (variable, values) => {
          const tensor = tf.tensor(values.slice(), variable.shape, 'float32');
          variable.assign(tensor);
          tensor.dispose();
        };
        const variables = entries.map((entry) => {
          const variable = tf.variable(tf.zeros([entry.length]), entry.kind === 'param', entry.name);
          assign(variable, entry.init);
          return variable;
        });
        let ema;
        try {
          const model = {
            trainableWeights: variables.filter((_, v) => entries[v].kind === 'param'),
            nonTrainableWeights: variables.filter((_, v) => entries[v].kind === 'buffer'),
          };
          ema = await createTfjsEma(model, { recipe: fixture.recipe, ...fixture.options, simd, tf, buffers: true });
          assert.equal(ema.simd, simd);
          fixture.calls.forEach((call, index) => {
            const where = `${fixture.id} call ${index + 1}`;
            variables.forEach((variable, v) => assign(variable, call.values[used[v]]));
            checkCall(replay, ema.update(callOptions(call)), call, where);
            // By name: the adapter orders trainable weights before buffers.
            if (call.shadows !== null) {
              call.profiles.forEach(({ shadows }, profile) => {
                const options = fixture.profileCount > 1 ? { profile } : undefined;
                variables.forEach((variable, v) => {
                  const expected = shadows[used[v]];
                  if (expected === null) {
                    assert.throws(() => ema.shadow(variable.name, options), /no tracked parameter/, `${where}: '${variable.name}' is not kept`);
                  } else {
                    assertSameBits(ema.shadow(variable.name, options), expected, `${where}: shadow of '${variable.name}' (profile ${profile})`);
                  }
                });
              });
            }
            if (call.model !== null) {
              variables.forEach((variable, v) => assertSameBits(variable.dataSync(), call.model[used[v]], `${where}: variable '${variable.name}'`));
            }
          });
        } finally {
          ema?.dispose();
          tf.dispose(variables);
        }
      });
    }
  });

  describe(`recipe fixtures through the onnxruntime-web adapter, ${buildName(simd)} build`, () => {
    /** A TrainingSession as the adapter uses it: its trainable parameters as one float32 buffer. */
    function fakeSession(initial) {
      const session = {
        weights: initial,
        async getParametersSize(trainableOnly) {
          assert.equal(trainableOnly, true);
          return session.weights.length;
        },
        async getContiguousParameters(trainableOnly) {
          assert.equal(trainableOnly, true);
          return { type: 'float32', dims: [session.weights.length], data: session.weights.slice() };
        },
        async loadParametersBuffer(bytes, trainableOnly) {
          assert.equal(trainableOnly, true);
          session.weights = new Float32Array(bytes.slice().buffer);
        },
      };
      return session;
    }

    for (const replay of ortPlans) {
      const { fixture, used, skip } = replay;
      test(fixture.id, { skip }, async () => {
        const pick = (arrays) => concat(used.map((e) => arrays[e]));
        const session = fakeSession(pick(fixture.entries.map(({ init }) => init)));
        const ema = await createOrtEma(session, { recipe: fixture.recipe, ...fixture.options, simd });
        try {
          assert.equal(ema.simd, simd);
          for (const [index, call] of fixture.calls.entries()) {
            const where = `${fixture.id} call ${index + 1}`;
            session.weights = pick(call.values);
            checkCall(replay, await ema.update(callOptions(call)), call, where);
            if (call.shadows !== null) {
              for (const e of used) assert.notEqual(call.shadows[e], null, `${where}: '${fixture.entries[e].name}' is not kept`);
              call.profiles.forEach(({ shadows }, profile) => {
                const options = fixture.profileCount > 1 ? { profile } : undefined;
                assertSameBits(ema.shadow(options), pick(shadows), `${where}: the shadow (profile ${profile})`);
              });
            }
            if (call.model !== null) assertSameBits(session.weights, pick(call.model), `${where}: the session's parameters`);
          }
        } finally {
          ema.dispose();
        }
      });
    }
  });
}
