// Resident parameters: the training loop trains in ema.param(name), views
// into the arena, and update() reads them with no copy-in. The views must
// stay valid through every resident call, and the results must equal the
// copy-in path bit for bit.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createEma } from '../../js/index.js';
import { BUILDS, buildName, randomArray } from './helpers.js';

const LENGTHS = [1, 7, 16, 17, 65536, 70001];

function makeParams(seed) {
  return LENGTHS.map((length, i) => ({ name: `block.${i}.w`, data: randomArray(length, seed + i) }));
}

for (const simd of BUILDS) {
  describe(`resident parameters, ${buildName(simd)} build`, () => {
    test('update() from resident parameters equals update(params) bit for bit', async () => {
      const params = makeParams(1);
      const copying = await createEma(params, { decay: 0.99, simd });
      const resident = await createEma(params, { decay: 0.99, simd, resident: true });
      assert.equal(resident.resident, true);
      assert.equal(copying.resident, false);
      const views = params.map((p) => resident.param(p.name));
      views.forEach((view, i) => assert.deepEqual(view, params[i].data, 'starts as the given values'));
      for (let step = 1; step <= 5; step++) {
        params.forEach((p, i) => {
          p.data.set(randomArray(p.data.length, 100 * step + i));
          views[i].set(p.data); // a training loop writes in place
        });
        assert.deepEqual(resident.update(), copying.update(params));
      }
      for (const p of params) assert.deepEqual(resident.shadow(p.name), copying.shadow(p.name), p.name);
      assert.deepEqual(resident.stateDict(), copying.stateDict());
      assert.deepEqual(resident.save(), copying.save());
    });

    test('withEma(fn), copyTo, store and restore act on the resident parameters; views stay valid', async () => {
      const params = makeParams(7);
      const ema = await createEma(params, { decay: 0.5, simd, resident: true });
      const views = params.map((p) => ema.param(p.name));
      const buffer = views[0].buffer;
      views.forEach((view, i) => view.set(randomArray(view.length, 50 + i)));
      ema.update();
      const training = views.map((view) => view.slice());
      const shadows = params.map((p) => ema.shadow(p.name));

      const seen = await ema.withEma(async () => views.map((view) => view.slice()));
      assert.deepEqual(seen, shadows, 'EMA weights inside withEma');
      assert.deepEqual(views.map((view) => view.slice()), training, 'training weights after withEma');
      await assert.rejects(ema.withEma(() => { throw new Error('eval failed'); }), /eval failed/);
      assert.deepEqual(views.map((view) => view.slice()), training, 'restored after a throw');

      ema.copyTo();
      assert.deepEqual(views.map((view) => view.slice()), shadows);
      ema.restore();
      assert.deepEqual(views.map((view) => view.slice()), training);
      assert.equal(views[0].buffer, buffer, 'memory never grew: the views are the same');
      assert.equal(views[5].length, 70001, 'not detached');
    });

    test('resident misuse is refused with clear errors', async () => {
      const params = makeParams(3);
      const ema = await createEma(params, { simd, resident: true });
      assert.throws(() => ema.restore(), /nothing is stored/);
      for (const method of ['update', 'copyTo', 'store', 'restore']) {
        assert.throws(() => ema[method](params), (e) => e instanceof TypeError && /resident/.test(e.message));
      }
      await assert.rejects(ema.withEma(params, () => {}), TypeError);
      assert.throws(() => ema.param('nope'), /no tracked parameter named 'nope'/);
      const plain = await createEma(params, { simd });
      assert.throws(() => plain.param('block.0.w'), /not resident/);
      await assert.rejects(createEma(params, { resident: 'yes' }), TypeError);
      assert.equal(ema.numUpdates, 0);
    });
  });
}

test('creating a large EMA sizes memory up front: a later withEma does not grow it', async () => {
  const params = [{ name: 'w', data: new Float32Array(8_000_000) }];
  const ema = await createEma(params, { resident: true });
  const view = ema.param('w');
  ema.update();
  await ema.withEma(() => {});
  assert.equal(view.length, 8_000_000, 'a view taken after creation is still attached');
});
