// Replays the PyTorch runs of every recipe (test/fixtures/recipes.txt,
// written by test/fixtures/generate_recipes.py) through the JS API on both
// Wasm builds, and compares every bit of every shadow, of the float32 weight
// each step applied, of the counter and of the model after the step (Keras
// overwrites it). A power case with a list of widths is one EMA of several
// profiles, each of which PyTorch ran on its own: every profile is compared.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createEma } from '../../js/index.js';
import { BUILDS, buildName } from './helpers.js';
import { assertSameBits, assertStepResult, callOptions, readRecipeFixtures } from './recipe-fixture.js';

const cases = readRecipeFixtures();

test('the recipe fixtures cover every recipe', () => {
  const recipes = new Set(cases.map((c) => c.recipe));
  for (const recipe of ['litema', 'torch_ema', 'diffusers', 'timm', 'ema-pytorch', 'keras', 'debiased', 'power']) {
    assert.ok(recipes.has(recipe), `no case for ${recipe}`);
  }
  const actions = new Set(cases.flatMap((c) => c.calls.map((call) => call.action)));
  for (const action of ['averaged', 'copied', 'skipped']) assert.ok(actions.has(action), `no call that ${action}`);
  const profileCounts = new Set(cases.map((c) => c.profileCount));
  for (const count of [2, 3, 16]) assert.ok(profileCounts.has(count), `no case of ${count} profiles`);
});

for (const simd of BUILDS) {
  describe(`recipe fixtures, ${buildName(simd)} build`, () => {
    for (const fixture of cases) {
      test(fixture.id, async () => {
        const params = fixture.entries.map((entry) => ({
          name: entry.name,
          data: entry.init.slice(),
          trainable: entry.kind !== 'frozen',
          buffer: entry.kind === 'buffer',
        }));
        const ema = await createEma(params, { recipe: fixture.recipe, ...fixture.options, simd });
        assert.equal(ema.simd, simd);
        assert.equal(ema.recipe, fixture.recipe);
        assert.equal(ema.profiles?.length ?? 1, fixture.profileCount);

        fixture.calls.forEach((call, index) => {
          const where = `${fixture.id} call ${index + 1}`;
          params.forEach((param, p) => param.data.set(call.values[p]));
          const result = ema.update(params, callOptions(call));
          assertStepResult(result, call, fixture.recipe, where);
          assert.equal(ema.counter, call.counter, `${where}: ema.counter`);
          if (call.shadows !== null) {
            call.profiles.forEach(({ shadows }, profile) => {
              const options = fixture.profileCount > 1 ? { profile } : undefined;
              const which = fixture.profileCount > 1 ? ` (profile ${profile})` : '';
              fixture.entries.forEach((entry, e) => {
                const expected = shadows[e];
                if (expected === null) {
                  assert.throws(() => ema.shadow(entry.name, options), /no tracked parameter/, `${where}: '${entry.name}' is not kept`);
                } else {
                  assertSameBits(ema.shadow(entry.name, options), expected, `${where}: shadow of '${entry.name}'${which}`);
                }
              });
            });
          }
          if (call.model !== null) {
            params.forEach((param, p) => assertSameBits(param.data, call.model[p], `${where}: model '${param.name}'`));
          }
        });
        ema.dispose();
      });
    }
  });
}
