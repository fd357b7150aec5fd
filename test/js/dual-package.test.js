// A process that loads the package both ways (import here, require() in a
// dependency) holds two copies of its code: the ES modules in js/ and the
// CommonJS copy in dist/cjs/. They must compute the same bits and share
// withEma's holds, so neither copy touches arrays the other is evaluating with.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import { createEma } from '../../js/index.js';

const require = createRequire(import.meta.url);
const cjsPath = new URL('../../dist/cjs/index.cjs', import.meta.url);
const skip = !existsSync(cjsPath) && 'dist/cjs/ is missing: run npm run build first';

test('the CommonJS copy gives the same bits as the ES modules', { skip }, async () => {
  const cjs = require('../../dist/cjs/index.cjs');
  assert.notEqual(cjs.createEma, createEma, 'two copies of the code');
  const start = Float32Array.of(0.1, -2.5, 3e-7, 1e30);
  const params = [Float32Array.of(1, 2, 3, 4), Float32Array.of(-0.3, 0.7, 1e-3, -1e30)];
  const shadows = [];
  for (const make of [createEma, cjs.createEma]) {
    const ema = await make({ w: start.slice() }, { decay: 0.999 });
    for (const values of params) ema.update({ w: values });
    shadows.push(new Uint32Array(ema.shadow('w').buffer));
  }
  assert.deepEqual(shadows[0], shadows[1]);
});

test("one copy's withEma holds its arrays against the other copy's EMAs, both ways", { skip }, async () => {
  const cjs = require('../../dist/cjs/index.cjs');
  for (const [holder, other] of [[createEma, cjs.createEma], [cjs.createEma, createEma]]) {
    const weights = Float32Array.of(1, 2, 3);
    const evaluating = await holder({ w: weights }, { decay: 0.5 });
    const bystander = await other({ w: weights.slice() }, { decay: 0.5 });
    await evaluating.withEma({ w: weights }, () => {
      assert.throws(() => bystander.update({ w: weights }), { message: /withEma/ });
      assert.throws(() => bystander.copyTo({ w: weights }), { message: /withEma/ });
    });
    bystander.update({ w: weights }); // free again once the scope has closed
  }
});
