// The user's side of node-versions.test.js, shared by esm.mjs and cjs.cjs so
// that the two differ only in how they load ema-wasm. It runs on every Node
// of the matrix, down to 18.0.0, so it uses nothing newer than that.
'use strict';

const { readFileSync, realpathSync } = require('node:fs');
const { dirname, join, relative, sep } = require('node:path');

/** A float32 array's bit patterns, as plain numbers for JSON. */
function bitsOf(float32) {
  return Array.from(new Uint32Array(float32.buffer, float32.byteOffset, float32.length));
}

function shadowBits(ema, names) {
  return Object.fromEntries(names.map((name) => [name, bitsOf(ema.shadow(name))]));
}

function asParams(entries) {
  return entries.map(({ name, values }) => ({ name, data: Float32Array.from(values) }));
}

/**
 * For each build: an EMA over the inputs' initial weights, one update per
 * entry of `inputs.updates`, then a save to a file and a load back, and the
 * metadata of a second save. `api` holds what the caller imported or required.
 */
async function exercise(api, inputsPath, folder) {
  const { createEma, loadEma, readMetadata, saveEmaFile, loadEmaFile } = api;
  for (const [name, value] of Object.entries({ createEma, loadEma, readMetadata, saveEmaFile, loadEmaFile })) {
    if (typeof value !== 'function') throw new TypeError(`ema-wasm gave no function ${name}`);
  }
  const inputs = JSON.parse(readFileSync(inputsPath, 'utf8'));
  const names = inputs.initial.map(({ name }) => name);
  const builds = [];
  for (const simd of [true, false]) {
    const ema = await createEma(asParams(inputs.initial), { decay: inputs.decay, useNumUpdates: true, simd });
    const decays = inputs.updates.map((update) => ema.update(asParams(update)).decay);

    const file = join(folder, `ema-${simd ? 'simd' : 'scalar'}.safetensors`);
    await saveEmaFile(ema, file);
    const loaded = await loadEmaFile(file, { simd });

    // loadEma is the in-memory twin of loadEmaFile; the file test covers
    // both, this one proves the main entry's export is the working one.
    const fromBytes = await loadEma(ema.save(), { simd });

    builds.push({
      simd: ema.simd,
      decays,
      numUpdates: ema.numUpdates,
      shadows: shadowBits(ema, names),
      loaded: { simd: loaded.simd, names: loaded.names, numUpdates: loaded.numUpdates, shadows: shadowBits(loaded, names) },
      fromBytes: { numUpdates: fromBytes.numUpdates, shadows: shadowBits(fromBytes, names) },
      metadataStep: (await readMetadata(ema.save({ metadata: { step: '3' } }))).step,
    });
    ema.dispose();
    loaded.dispose();
    fromBytes.dispose();
  }
  return { node: process.version, builds };
}

/**
 * The files of the installed ema-wasm that went through CommonJS loading
 * (require.cache), relative to the package folder. ESM imports never appear
 * there, so this tells which copy of the package ran.
 */
function packageFilesInRequireCache() {
  const packageFolder = realpathSync(dirname(require.resolve('ema-wasm/package.json')));
  return Object.keys(require.cache)
    .filter((file) => file.startsWith(packageFolder + sep))
    .map((file) => relative(packageFolder, file).split(sep).join('/'))
    .sort();
}

module.exports = { exercise, packageFilesInRequireCache };
