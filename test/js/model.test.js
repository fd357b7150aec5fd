// Model-based tests. fast-check generates random sequences of API calls:
// optimizer steps, update / copyTo / store / restore in every params form,
// hostile params (wrong lengths and names, duplicates, Float64Array, Proxies,
// lying lengths, subclasses, other realms, detached buffers, getters that
// detach or re-enter), and withEma() scopes left open across later calls
// over arrays several EMAs share. Each call runs against the real EMAs and
// against a small pure-JS float32 model (EmaModel in model/shared.js) that
// predicts its result or its error (class, method, message). After EVERY call
// the test compares, bit for bit and NaN-safe, each EMA's numUpdates, decay
// and shadows, what a restore would write, and every user array (throwaway
// ones too). So a call that throws must have changed nothing; the one
// documented exception is restoring, which writes every array it can before
// it names the ones it could not.
//
// Three worlds, each on both builds (SIMD and scalar):
//   model/core.js  the core Ema: three EMAs over shared arrays and a resident one;
//   model/ort.js   ema-wasm/ort: two EMAs of one fake TrainingSession;
//   model/tfjs.js  ema-wasm/tfjs: three EMAs of fake tf.Variables.
//
// Seeded and bounded for npm test. EMA_WASM_FC_RUNS sets the runs per world
// and build (npm run test:model: 2000); EMA_WASM_FC_SEED and, from a failure
// report, EMA_WASM_FC_PATH replay a failure.
import { test } from 'node:test';

import fc from 'fast-check';

import { BUILDS, buildName } from './helpers.js';
import { coreWorld } from './model/core.js';
import { ortWorld } from './model/ort.js';
import { runCommands } from './model/shared.js';
import { tfjsWorld } from './model/tfjs.js';

const SEED = Number(process.env.EMA_WASM_FC_SEED ?? 20261129);
const RUNS = Number(process.env.EMA_WASM_FC_RUNS ?? 150);
const PATH = process.env.EMA_WASM_FC_PATH;
const MAX_COMMANDS = 40;

for (const simd of BUILDS) {
  for (const world of [coreWorld, ortWorld, tfjsWorld]) {
    test(`${world.title}: random call sequences match the float32 model, ${buildName(simd)} build`, async () => {
      const commands = fc.array(world.command, { minLength: 1, maxLength: MAX_COMMANDS, size: 'max' });
      await fc.assert(
        fc.asyncProperty(commands, (list) => runCommands(() => world.make(simd), list, world.handlers, world.check, world.close)),
        { seed: SEED, numRuns: RUNS, ...(PATH ? { path: PATH } : {}) },
      );
    });
  }
}
