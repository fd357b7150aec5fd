// Memory near the wasm32 limit: a model whose shadows fit works, and
// anything that cannot fit is a RangeError that gives the bytes needed and
// the 4 GiB limit before anything changes. These tests allocate up to ~4.5 GB
// of (mostly untouched) memory and take a few seconds.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createEma } from '../../js/index.js';

const LIMIT_TEXT = 'a wasm32 memory holds at most 4 GiB (4,294,967,296 bytes, of which 4,294,901,760 are usable here)';

function rangeErrorNaming(...parts) {
  return (error) => {
    assert.equal(error.constructor, RangeError, `${error.constructor.name}: ${error.message}`);
    for (const part of parts) assert.ok(error.message.includes(part), `"${error.message}" should mention ${part}`);
    return true;
  };
}

describe('memory limits', () => {
  test('one 2 GiB tensor: created, updated exactly past the 2 GiB address, and a withEma that cannot fit is refused', async () => {
    const n = 2 ** 29; // 2 GiB of float32
    const w = new Float32Array(n);
    w[n - 1] = 3;
    const ema = await createEma({ w }, { decay: 0.5, useNumUpdates: false });
    assert.ok(ema.byteLength > 2 ** 31);
    w[n - 1] = 5;
    assert.equal(ema.update({ w }).decay, 0.5);
    const shadow = ema.shadow('w');
    assert.equal(shadow[n - 1], 4); // 3 - 0.5 * (3 - 5)
    assert.equal(shadow[0], 0);

    // The backup for withEma would need 2 GiB more: refused, nothing changed.
    await assert.rejects(
      ema.withEma({ w }, () => assert.fail('fn must not run')),
      rangeErrorNaming('withEma: not enough WebAssembly memory for the backup of 1 array: 2,147,484,424 bytes (2 GiB) needed beside the', 'this EMA already uses', LIMIT_TEXT),
    );
    assert.equal(w[n - 1], 5);
    assert.equal(ema.numUpdates, -1);
    assert.throws(() => ema.store({ w }), rangeErrorNaming('store: not enough WebAssembly memory for the backup of 1 array'));
    assert.throws(() => ema.restore({ w }), /nothing is stored/);
    ema.dispose();
  });

  test('shadows over the limit are refused at creation, before any memory is taken', async () => {
    const largest = 1_073_385_008; // float32 parameters whose shadows fit (see README)
    await assert.rejects(
      createEma({ w: new Float32Array(largest + 1) }),
      rangeErrorNaming('createEma: not enough WebAssembly memory for the shadows: 4,294,901,768 bytes (4 GiB) needed;', LIMIT_TEXT),
    );
    await assert.rejects(createEma({ w: new Float32Array(2 ** 30) }), rangeErrorNaming('for the shadows: 4,296,328,968 bytes'));
    const split = { a: new Float32Array(600_000_000), b: new Float32Array(600_000_000) };
    await assert.rejects(createEma(split), rangeErrorNaming('for the shadows: 4,801,'));
  });

  test('resident mode needs three times the shadows: refused above a third of the limit', async () => {
    await assert.rejects(
      createEma({ w: new Float32Array(400_000_000) }, { resident: true }),
      rangeErrorNaming('createEma: not enough WebAssembly memory for the shadows, the resident parameters and their backup: 4,801,', LIMIT_TEXT),
    );
  });
});

// The README's largest models, built for real: about a minute and 9 GB of
// memory, so only on request (npm run test:limits sets EMA_WASM_HEAVY=1).
const heavy = process.env.EMA_WASM_HEAVY === '1' ? false : 'set EMA_WASM_HEAVY=1 (npm run test:limits) to build the largest models';

describe('the largest model of each mode works', () => {
  /** A tensor of n zeros with 3 in its last element, updated once towards 5. */
  async function largest(n, options, use) {
    const w = new Float32Array(n);
    w[n - 1] = 3;
    const ema = await createEma({ w }, { decay: 0.5, useNumUpdates: false, ...options });
    await use(ema, w);
    ema.dispose();
  }

  test('update and copyTo: 1,073,385,008 parameters', { skip: heavy }, async () => {
    await largest(1_073_385_008, {}, (ema, w) => {
      w[w.length - 1] = 5;
      ema.update({ w });
      ema.copyTo({ w });
      assert.equal(w[w.length - 1], 4);
    });
  });

  test('withEma: 536,692,400 parameters', { skip: heavy }, async () => {
    await largest(536_692_400, {}, async (ema, w) => {
      w[w.length - 1] = 5;
      ema.update({ w });
      await ema.withEma({ w }, () => assert.equal(w[w.length - 1], 4));
      assert.equal(w[w.length - 1], 5);
    });
  });

  test('resident: 357,794,864 parameters', { skip: heavy }, async () => {
    await largest(357_794_864, { resident: true }, async (ema) => {
      const param = ema.param('w');
      param[param.length - 1] = 5;
      ema.update();
      await ema.withEma(() => assert.equal(ema.param('w')[param.length - 1], 4));
      assert.equal(ema.param('w')[param.length - 1], 5);
    });
  });
});
