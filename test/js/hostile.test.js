// The contract against hostile input: what is validated is what is used,
// restoring gives back every array it can, and no EMA can touch weights that
// another EMA's withEma() holds. Each test gives the values it must see.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';

import { createEma, loadEma } from '../../js/index.js';
import { BUILDS, buildName, randomArray, referenceStep, snapshot } from './helpers.js';

/** Detaches `buffer`, as a transfer to a worker does. */
function detach(buffer) {
  structuredClone(buffer, { transfer: [buffer] });
}

function rejectsWith(promise, ErrorClass, ...parts) {
  return assert.rejects(promise, (error) => {
    assert.equal(error.constructor, ErrorClass, `${error.constructor.name}: ${error.message}`);
    for (const part of parts) assert.ok(error.message.includes(part), `"${error.message}" should mention ${part}`);
    return true;
  });
}

function throwsWith(call, ErrorClass, ...parts) {
  assert.throws(call, (error) => {
    assert.equal(error.constructor, ErrorClass, `${error.constructor.name}: ${error.message}`);
    for (const part of parts) assert.ok(error.message.includes(part), `"${error.message}" should mention ${part}`);
    return true;
  });
}

const values = (array) => Array.from(array);

for (const simd of BUILDS) {
  describe(`what is validated is what is used, ${buildName(simd)} build`, () => {
    /** An EMA with two updates and a snapshot of everything it holds. */
    async function used() {
      const a = randomArray(5, 1);
      const b = randomArray(70000, 2); // larger than the staging window
      const params = { a, b };
      const ema = await createEma(params, { decay: 0.9, simd });
      a.set(randomArray(5, 3));
      ema.update(params);
      b.set(randomArray(70000, 4));
      ema.update(params);
      return { ema, a, b, before: snapshot(ema) };
    }

    test('a getter that detaches an already-checked array: a clear Error, counter and shadows unchanged', async () => {
      const { ema, a, b, before } = await used();
      const params = [
        { name: 'a', data: a },
        { name: 'b', get data() { detach(a.buffer); return b; } },
      ];
      throwsWith(() => ema.update(params), Error, "update: parameter 'a' cannot be used", 'detached');
      assert.deepEqual(snapshot(ema), before);
      assert.equal(ema.numUpdates, 2);
    });

    test('a getter that shrinks a resizable buffer already checked: refused before the step', async () => {
      const { ema, b, before } = await used();
      const buffer = new ArrayBuffer(5 * 4, { maxByteLength: 64 });
      const a = new Float32Array(buffer); // length-tracking
      a.set(randomArray(5, 9));
      const params = [
        { name: 'a', data: a },
        { name: 'b', get data() { buffer.resize(8); return b; } },
      ];
      throwsWith(() => ema.update(params), Error, "update: parameter 'a' has 2 elements; its shadow has 5");
      assert.deepEqual(snapshot(ema), before);

      const fixed = new Float32Array(new ArrayBuffer(20, { maxByteLength: 64 }), 0, 5);
      const shrink = [{ name: 'a', data: fixed }, { name: 'b', get data() { fixed.buffer.resize(4); return b; } }];
      throwsWith(() => ema.copyTo(shrink), Error, "copyTo: parameter 'a' cannot be used", 'shrunk');
      assert.deepEqual(snapshot(ema), before);
    });

    test('an own length property, a subclass and a user @@species are never consulted', async () => {
      const { ema, a, b } = await used();
      let userCode = 0;
      class Sneaky extends Float32Array {
        static get [Symbol.species]() { userCode++; return Float32Array; }
        get length() { userCode++; return 1; }
        set() { userCode++; }
        subarray() { userCode++; return new Float32Array(1); }
        slice() { userCode++; return new Float32Array(1); }
      }
      const sneakyB = new Sneaky(70000);
      Float32Array.prototype.set.call(sneakyB, b);
      const ownLength = Float32Array.from(a);
      Object.defineProperty(ownLength, 'length', { value: 1000 });
      const shadowA = ema.shadow('a');
      const shadowB = ema.shadow('b');
      const { decay } = ema.update([{ name: 'a', data: ownLength }, { name: 'b', data: sneakyB }]);
      referenceStep(shadowA, a, decay);
      referenceStep(shadowB, b, decay);
      assert.deepEqual(values(ema.shadow('a')), values(shadowA));
      assert.deepEqual(values(ema.shadow('b')), values(shadowB));
      ema.copyTo([{ name: 'a', data: ownLength }, { name: 'b', data: sneakyB }]);
      assert.equal(userCode, 0, 'no method or getter of the subclass ran');
      // copyTo wrote through the internal slots too.
      assert.deepEqual(values(new Float32Array(sneakyB.buffer, 0, 3)), values(shadowB.subarray(0, 3)));
    });

    test('a global @@species never sees a view of WebAssembly memory', async () => {
      const { ema, a, b } = await used();
      const descriptor = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Float32Array), Symbol.species);
      const seen = [];
      Object.defineProperty(Object.getPrototypeOf(Float32Array), Symbol.species, {
        configurable: true,
        get() { seen.push(this); return undefined; },
      });
      try {
        ema.update({ a, b });
        ema.copyTo({ a, b });
        ema.store({ a, b });
        ema.restore({ a, b });
        ema.shadow('a');
        ema.stateDict();
        await loadEma(ema.save());
        await ema.withEma({ a, b }, () => {});
      } finally {
        Object.defineProperty(Object.getPrototypeOf(Float32Array), Symbol.species, descriptor);
      }
      assert.deepEqual(seen, [], 'no species lookup happened');
    });

    test('getters that call back into the EMA: disposing, opening withEma, growing memory', async () => {
      const { ema, a, b } = await used();
      const disposing = [{ name: 'a', data: a }, { name: 'b', get data() { ema.dispose(); return b; } }];
      throwsWith(() => ema.update(disposing), Error, 'this EMA was disposed');

      const second = await used();
      let evaluation;
      const opening = { a: second.a, get b() { evaluation = second.ema.withEma({ a: second.a, b: second.b }, () => {}); return second.b; } };
      throwsWith(() => second.ema.update(opening), Error, 'update: not allowed while withEma() is running');
      await evaluation;
      assert.deepEqual(snapshot(second.ema), second.before);

      // A metadata getter that steps the EMA and grows its memory (a store of
      // another shape): the file holds one consistent state, the later one.
      const third = await used();
      const metadata = {
        get note() {
          third.ema.update({ a: third.a, b: third.b });
          third.ema.store({ big: new Float32Array(3_000_000) });
          return 'x';
        },
      };
      const bytes = third.ema.save({ metadata });
      const back = await loadEma(bytes, { simd });
      assert.equal(back.numUpdates, 3);
      assert.deepEqual([...back.stateDict()].map(([k, v]) => [k, values(v)]), [...third.ema.stateDict()].map(([k, v]) => [k, values(v)]));
    });

    test('a Proxy or a forged prototype that passes instanceof is a TypeError', async () => {
      const { ema, a, b, before } = await used();
      const proxy = new Proxy(b, {});
      assert.ok(proxy instanceof Float32Array);
      throwsWith(() => ema.update({ a, b: proxy }), TypeError, "parameter 'b' must be a Float32Array", 'posing as a Float32Array');
      const forged = Object.create(Float32Array.prototype);
      throwsWith(() => ema.copyTo({ a, b: forged }), TypeError, "parameter 'b' must be a Float32Array", 'not a real typed array');
      assert.deepEqual(snapshot(ema), before);
    });

    test('params behind a Proxy are read once: each property exactly one time', async () => {
      const { ema, a, b } = await used();
      const reads = new Map();
      const counted = (target, label) =>
        new Proxy(target, {
          get(object, key, receiver) {
            const name = `${label}.${String(key)}`;
            reads.set(name, (reads.get(name) ?? 0) + 1);
            return Reflect.get(object, key, receiver);
          },
        });
      const params = counted([counted({ name: 'a', data: a }, 'a'), counted({ name: 'b', data: b, shape: [70000] }, 'b')], 'params');
      ema.update(params);
      for (const [name, count] of reads) assert.equal(count, 1, `${name} read ${count} times`);
      assert.equal(reads.get('b.shape'), 1);
    });

    test('a buffer resized while createEma awaits compilation: the EMA takes what is there when it reads', async () => {
      const buffer = new ArrayBuffer(16, { maxByteLength: 64 });
      const w = new Float32Array(buffer);
      w.set([1, 2, 3, 4]);
      const pending = createEma({ w }, { simd });
      buffer.resize(8);
      const ema = await pending;
      assert.deepEqual(ema.shape('w'), [2]);
      assert.deepEqual(values(ema.shadow('w')), [1, 2]);

      const shaped = new ArrayBuffer(16, { maxByteLength: 64 });
      const pendingShaped = createEma([{ name: 'w', data: new Float32Array(shaped), shape: [4] }], { simd });
      shaped.resize(8);
      await rejectsWith(pendingShaped, Error, "parameter 'w'.shape [4] holds 4 elements but its data has 2");
    });

    test('arrays from another realm (vm, Jest) are accepted everywhere', async () => {
      const foreign = vm.runInNewContext('({ w: new Float32Array([1, 2, 3]), bytes: (n) => new Uint8Array(n) })');
      assert.ok(!(foreign.w instanceof Float32Array));
      const ema = await createEma({ w: foreign.w }, { decay: 0.5, useNumUpdates: false, simd });
      foreign.w.set([3, 4, 5]);
      assert.equal(ema.update({ w: foreign.w }).decay, 0.5);
      assert.deepEqual(values(ema.shadow('w')), [2, 3, 4]);
      ema.copyTo({ w: foreign.w });
      assert.deepEqual(values(foreign.w), [2, 3, 4]);
      const file = ema.save();
      const copy = foreign.bytes(file.length);
      copy.set(file);
      assert.deepEqual(values((await loadEma(copy, { simd })).shadow('w')), [2, 3, 4]);
    });

    test('nothing returned is a view of WebAssembly memory', async () => {
      const { ema } = await used();
      const returned = [ema.shadow('a'), ...ema.stateDict().values(), ema.save()];
      for (const array of returned) assert.equal(array.buffer.byteLength, array.byteLength);
    });
  });

  describe(`restore is best effort and complete, ${buildName(simd)} build`, () => {
    test('withEma: fn transfers one buffer; every other array gets its training weights back, one error names the lost one', async () => {
      const arrays = { a: randomArray(4, 1), b: randomArray(3, 2), c: randomArray(70000, 3) };
      const training = Object.fromEntries(Object.entries(arrays).map(([k, v]) => [k, v.slice()]));
      const ema = await createEma(arrays, { decay: 0.5, simd });
      for (const array of Object.values(arrays)) array.fill(7);
      ema.update(arrays);
      for (const [name, array] of Object.entries(arrays)) array.set(training[name]);
      const params = { ...arrays, frozen: Float32Array.of(9) };
      const entries = Object.entries(params).map(([name, data]) => ({ name, data, trainable: name !== 'frozen' }));

      await rejectsWith(
        ema.withEma(entries, () => {
          assert.deepEqual(values(arrays.a), values(ema.shadow('a')));
          detach(arrays.b.buffer);
        }),
        Error,
        'withEma: could not write the stored weights back into 1 of 4 arrays',
        "'b' (its ArrayBuffer was detached",
        'Every other array was restored',
      );
      assert.deepEqual(values(arrays.a), values(training.a));
      assert.deepEqual(values(arrays.c), values(training.c));
      assert.deepEqual(values(params.frozen), [9]);

      // The training weights of 'b' are still stored: a fresh array gets them.
      const b = new Float32Array(3);
      ema.restore([...entries.filter((e) => e.name !== 'b'), { name: 'b', data: b, trainable: true }]);
      assert.deepEqual(values(b), values(training.b));
    });

    test('restore: a detached array among others; the rest are written and the error says why', async () => {
      const a = Float32Array.of(1, 2);
      const b = Float32Array.of(3, 4);
      const ema = await createEma({ a, b }, { simd });
      ema.store({ a, b });
      a.fill(0);
      b.fill(0);
      detach(a.buffer);
      throwsWith(() => ema.restore({ a, b }), Error, "restore: could not write the stored weights back into 1 of 2 arrays: 'a'");
      assert.deepEqual(values(b), [3, 4]);
    });

    test('fn throws and restore also fails: the restore error, with fn\'s error as its cause', async () => {
      const a = Float32Array.of(1, 2);
      const ema = await createEma({ a }, { simd });
      const thrown = new Error('evaluation failed');
      await assert.rejects(
        ema.withEma({ a }, () => { detach(a.buffer); throw thrown; }),
        (error) => /could not write the stored weights back/.test(error.message) && error.cause === thrown,
      );
    });
  });

  describe(`scopes across EMAs, ${buildName(simd)} build`, () => {
    async function twoEmas() {
      const w = randomArray(6, 1);
      const b = randomArray(2, 2);
      const params = { w, b };
      const fast = await createEma(params, { decay: 0.9, simd });
      const slow = await createEma(params, { decay: 0.99, simd });
      for (let step = 0; step < 3; step++) {
        w.set(randomArray(6, 10 + step));
        fast.update(params);
        slow.update(params);
      }
      return { params, fast, slow, training: { w: w.slice(), b: b.slice() } };
    }

    test('two withEma over the same arrays, not awaited: the second is refused; fn sees its own EMA; nothing is lost', async () => {
      const { params, fast, slow, training } = await twoEmas();
      let seen = null;
      const first = fast.withEma(params, async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        seen = values(params.w);
      });
      const second = slow.withEma(params, () => { throw new Error('must not run'); });
      await rejectsWith(second, Error, "withEma: parameter 'w' is held by an open withEma() of an EMA of 'w', 'b'");
      await first;
      assert.deepEqual(seen, values(fast.shadow('w')));
      assert.deepEqual(values(params.w), values(training.w));
      assert.deepEqual(values(params.b), values(training.b));
    });

    test('while one EMA holds the arrays, another may not update from, copy into, store or restore them', async () => {
      const { params, fast, slow, training } = await twoEmas();
      slow.store(params);
      const before = snapshot(slow, [{ name: 'w', length: 6 }, { name: 'b', length: 2 }]);
      await fast.withEma(params, () => {
        for (const method of ['update', 'copyTo', 'store', 'restore']) {
          throwsWith(() => slow[method](params), Error, `${method}: parameter 'w' is held by an open withEma()`);
        }
        // Another view of the same memory is the same memory.
        throwsWith(() => slow.update({ w: new Float32Array(params.w.buffer), b: Float32Array.of(0, 0) }), Error, 'held');
        // Other arrays are free.
        slow.update({ w: new Float32Array(6), b: new Float32Array(2) });
      });
      assert.deepEqual(values(params.w), values(training.w));
      assert.equal(slow.numUpdates, before.numUpdates + 1);
    });

    test('two copies of the package in one app still see each other\'s holds', async () => {
      const copy = mkdtempSync(join(tmpdir(), 'ema-wasm-copy-'));
      cpSync(fileURLToPath(new URL('../../js', import.meta.url)), join(copy, 'js'), { recursive: true });
      cpSync(fileURLToPath(new URL('../../dist', import.meta.url)), join(copy, 'dist'), { recursive: true });
      try {
        const other = await import(pathToFileURL(join(copy, 'js', 'index.js')).href);
        const w = Float32Array.of(1, 2);
        const mine = await createEma({ w }, { simd });
        const theirs = await other.createEma({ w }, { simd });
        await mine.withEma({ w }, () => {
          throwsWith(() => theirs.update({ w }), Error, "update: parameter 'w' is held by an open withEma()");
        });
        assert.equal(theirs.update({ w }).decay, Math.fround(2 / 11));
      } finally {
        rmSync(copy, { recursive: true, force: true });
      }
    });

    test('disjoint views of one buffer do not conflict', async () => {
      const buffer = new ArrayBuffer(64);
      const left = new Float32Array(buffer, 0, 8);
      const right = new Float32Array(buffer, 32, 8);
      const one = await createEma({ w: left }, { simd });
      const two = await createEma({ w: right }, { simd });
      const empty = new Float32Array(buffer, 16, 0); // inside left's bytes, but touches none
      const three = await createEma({ w: empty }, { simd });
      await one.withEma({ w: left }, () => {
        two.update({ w: right });
        three.update({ w: empty });
      });
      assert.equal(two.numUpdates, 1);
      assert.equal(three.numUpdates, 1);
    });

    test('a resident EMA\'s whole memory is held, its backup included', async () => {
      const resident = await createEma({ w: Float32Array.of(1, 2, 3, 4) }, { resident: true, simd });
      const training = Float32Array.of(11, 22, 33, 44);
      resident.param('w').set(training);
      const all = new Float32Array(resident.param('w').buffer); // every byte of its memory
      const other = await createEma({ w: all }, { simd });
      await resident.withEma(() => {
        throwsWith(() => other.copyTo({ w: all }), Error, "copyTo: parameter 'w' is held by an open withEma()");
      });
      assert.deepEqual(values(resident.param('w')), values(training));
    });

    test('a resident EMA\'s parameters are held too', async () => {
      const resident = await createEma({ w: Float32Array.of(1, 2, 3) }, { resident: true, simd });
      const view = resident.param('w');
      const other = await createEma({ w: Float32Array.of(0, 0, 0) }, { simd });
      await resident.withEma(() => {
        throwsWith(() => other.update({ w: view }), Error, "update: parameter 'w' is held by an open withEma()");
      });
      await other.withEma({ w: view }, () => {
        throwsWith(() => resident.update(), Error, "update: the resident EMA's memory is held by an open withEma()");
      });
    });
  });
}

describe('clear errors and limits', () => {
  test('an unknown-name error for a million tensors stays short and counts the rest', async () => {
    const ema = await createEma({ w: new Float32Array(1) });
    const params = new Map([['w', new Float32Array(1)]]);
    for (let i = 0; i < 1_000_000; i++) params.set(`x${i}`, new Float32Array(0));
    assert.throws(
      () => ema.update(params),
      (error) => error.message.length < 400 && /'x0', 'x1', 'x2', 'x3', 'x4' and 999,995 more/.test(error.message),
    );
  });

  test('more tensors than EMA_MAX_SLOTS is a RangeError naming the limit', async () => {
    const params = Array.from({ length: 1_048_577 }, (_, i) => ({ name: `p${i}`, data: new Float32Array(0) }));
    await rejectsWith(createEma(params), RangeError, 'createEma: params has 1,048,577 entries; at most 1,048,576 (EMA_MAX_SLOTS)');
    // Checked before any entry is read: a Proxy claiming 2^32 - 1 entries is refused at once.
    const claims = new Proxy([], { get: (target, key) => (key === 'length' ? 2 ** 32 - 1 : assert.fail(`read ${String(key)}`)) });
    await rejectsWith(createEma(claims), RangeError, 'params has 4,294,967,295 entries');
  });

  test('a revoked Proxy as params, options or state is a TypeError that says so', async () => {
    const ema = await createEma({ w: new Float32Array(1) });
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    throwsWith(() => ema.update(proxy), TypeError, 'update: params cannot be inspected (a revoked Proxy?)');
    throwsWith(() => ema.save(proxy), TypeError, 'save: options cannot be inspected');
    throwsWith(() => ema.save({ metadata: proxy }), TypeError, 'save: options.metadata cannot be inspected');
    throwsWith(() => ema.loadStateDict(proxy), TypeError, 'loadStateDict: state cannot be inspected');
  });

  test('a method called on something else than its EMA is a TypeError saying how to call it', async () => {
    const ema = await createEma({ w: new Float32Array(1) });
    const { update } = ema;
    throwsWith(() => update({ w: new Float32Array(1) }), TypeError, 'update: called on undefined, not on an EMA', 'ema.update.bind(ema)');
    throwsWith(() => ema.store.call({}, {}), TypeError, 'store: called on an object (Object), not on an EMA');
    // The getter is inherited (BaseEma): find it on the prototype chain.
    let prototype = Object.getPrototypeOf(ema);
    while (!Object.hasOwn(prototype, 'numUpdates')) prototype = Object.getPrototypeOf(prototype);
    throwsWith(() => Object.getOwnPropertyDescriptor(prototype, 'numUpdates').get.call(null), TypeError, 'numUpdates: called on null');
    ema.dispose();
    throwsWith(() => ema.update({ w: new Float32Array(1) }), Error, 'update: this EMA was disposed');
  });

  test('own getters on the EMA object are never consulted by its methods', async () => {
    const w = Float32Array.of(1, 2);
    const ema = await createEma({ w });
    for (const key of ['numUpdates', 'decay', 'byteLength']) {
      Object.defineProperty(ema, key, { get: () => assert.fail(`${key} getter ran`) });
    }
    ema.update({ w });
    ema.store({ w, big: new Float32Array(100000) });
    await ema.withEma({ w }, () => {});
    await loadEma(ema.save());
    ema.stateDict();
  });

  test('the counter at its limit: update is a RangeError naming it, and changes nothing', async () => {
    const w = Float32Array.of(1);
    const ema = await createEma({ w });
    ema.loadStateDict(new Map([['num_updates', Int32Array.of(2147483637)]]), { strict: false });
    const before = snapshot(ema);
    throwsWith(() => ema.update({ w }), RangeError, 'num_updates is 2147483637', 'EMA_MAX_NUM_UPDATES');
    assert.deepEqual(snapshot(ema), before);
  });

  test('a detached array in createEma, store and copyTo is refused by name, never a raw engine error', async () => {
    const w = Float32Array.of(1, 2);
    const ema = await createEma({ w });
    detach(w.buffer);
    await rejectsWith(createEma({ w }), Error, "createEma: parameter 'w' cannot be used: its ArrayBuffer was detached");
    throwsWith(() => ema.store({ w }), Error, "store: parameter 'w' cannot be used");
    throwsWith(() => ema.copyTo({ w }), Error, "copyTo: parameter 'w' cannot be used");
    throwsWith(() => ema.loadStateDict({ w }, { strict: false }), Error, "loadStateDict: state 'w' cannot be read");
  });

  test('a megabyte-long name is cut short in every message', async () => {
    const name = 'n'.repeat(1_000_000);
    const ema = await createEma({ [name]: new Float32Array(2) });
    const calls = [
      () => ema.update({ [name]: new Float64Array(2) }),
      () => ema.update({ [name]: new Float32Array(3) }),
      () => ema.update([{ name, data: new Float32Array(2), trainable: false }]),
      () => ema.shadow(`${name}x`),
      () => ema.update([{ name, data: new Float32Array(2), shape: [3] }]),
      () => ema.loadStateDict({ [name]: new Float32Array(3) }, { strict: false }),
    ];
    for (const call of calls) {
      assert.throws(call, (error) => error.message.length < 1000 && error.message.includes('nnn…'));
    }
  });

  test('empty arrays on resizable and growable buffers are fine; shrunk ones are named as such', async () => {
    const resizable = new ArrayBuffer(16, { maxByteLength: 64 });
    const atEnd = new Float32Array(resizable, 16);
    const growable = new Float32Array(new SharedArrayBuffer(0, { maxByteLength: 64 }));
    const ema = await createEma({ atEnd, growable, w: Float32Array.of(1) });
    ema.update({ atEnd, growable, w: Float32Array.of(2) });
    resizable.resize(8); // atEnd now lies past the end
    throwsWith(() => ema.update({ atEnd, growable, w: Float32Array.of(2) }), Error, "parameter 'atEnd' cannot be used: it lies outside its resizable ArrayBuffer");
  });

  test('a shape product past 2^53 with a zero is 0; a file dimension past 2^53 is refused by name', async () => {
    const huge = new Array(20).fill(Number.MAX_SAFE_INTEGER).concat(0);
    await rejectsWith(createEma([{ name: 'w', data: new Float32Array(0), shape: huge }]), RangeError, "createEma: parameter 'w'.shape", 'cannot be saved');
    // A valid file with an empty shadow whose shape has a dimension past 2^53.
    const header = JSON.stringify({
      decay: { dtype: 'F32', shape: [], data_offsets: [0, 4] },
      num_updates: { dtype: 'I32', shape: [], data_offsets: [4, 8] },
      w: { dtype: 'F32', shape: [0, 9007199254740993], data_offsets: [8, 8] },
    });
    const file = new Uint8Array(8 + header.length + 8);
    new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
    file.set(new TextEncoder().encode(header), 8);
    await rejectsWith(loadEma(file), RangeError, "loadEma: shadow 'w' has a dimension past 2^53 - 1");
  });

  test('a shape with more than 32 dimensions is a RangeError (the safetensors limit)', async () => {
    await rejectsWith(createEma([{ name: 'w', data: new Float32Array(1), shape: new Array(33).fill(1) }]), RangeError, '33 dimensions', 'at most 32');
  });
});
