// The C/JS boundary seen from both sides (include/ema_stream.h, src/wasm_exports.txt):
//   - the module's version is the package's;
//   - every constant js/ still copies from C equals what the module reports
//     (ema_abi_value, the dtype names, the status numbers of ema_status.h);
//   - ema_step_apply_staged, which js/ does not call yet, works in the module;
//   - the export list equals each built module's exports, holds everything
//     js/ calls (exports.NAME) or requires (REQUIRED_EXPORTS), and holds
//     nothing else unless tagged `tests` or `toolchain`;
//   - the headers agree with the list: a function marked "Native only" is not
//     exported, and every other function they declare is.
// js/ is read as source text here: constants are found by name wherever they
// live, exported ones are imported from their module, the others are parsed.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { instantiate } from '../../js/boundary.js';
import { loadModule } from '../../js/loader.js';
import { REQUIRED_EXPORTS } from '../../js/wasm-source.js';
import { BUILDS, buildName, referenceStep, warmupDecay } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (path) => readFileSync(join(root, path), 'utf8');
const packageVersion = JSON.parse(read('package.json')).version;

// ---- C side: headers and the export list -------------------------------------

/** The ema_abi enum of include/ema_stream.h: { STAGING_FLOATS: 1, ... }. */
const ABI_IDS = Object.fromEntries(
  [...read('include/ema_stream.h').matchAll(/^\s*EMA_ABI_([A-Z0-9_]+) = (\d+)/gm)].map(([, name, id]) => [name, Number(id)]),
);

/** include/ema_status.h's codes by JS's spelling: { OK: 0, NULL_ARGUMENT: 1, ... }. */
const STATUS_CODES = Object.fromEntries(
  [...read('include/ema_status.h').matchAll(/^\s*EMA_(?:ERROR_)?([A-Z0-9_]+) = (\d+)/gm)].map(([, name, code]) => [name, Number(code)]),
);

/** src/wasm_exports.txt: [{ name, tag, line }], tag '' | 'tests' | 'toolchain'. */
const EXPORT_LIST = read('src/wasm_exports.txt')
  .split('\n')
  .map((text, index) => ({ text: text.replace(/#.*$/, '').trim(), line: index + 1 }))
  .filter(({ text }) => text !== '')
  .map(({ text, line }) => {
    const match = /^([A-Za-z_]\w*)(?:\s+(tests|toolchain))?$/.exec(text);
    assert.ok(match, `src/wasm_exports.txt:${line}: cannot read '${text}'`);
    return { name: match[1], tag: match[2] ?? '', line };
  });
const LISTED = new Set(EXPORT_LIST.map((entry) => entry.name));

// ---- JS side: the sources of js/ ------------------------------------------------

function sourcesUnder(dir) {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return path === 'js/wasm' ? [] : sourcesUnder(path); // js/wasm/: generated base64
    return entry.name.endsWith('.js') ? [{ path, text: read(path) }] : [];
  });
}
const JS_SOURCES = sourcesUnder('js');

/** Every `exports.NAME` in js/ (the way js/ calls the module): Map name -> files. */
const CALLED = new Map();
for (const { path, text } of JS_SOURCES) {
  // `exports.NAME` or `x.exports.NAME`; not a path such as './wasm/exports.js'.
  for (const [, name] of text.matchAll(/(?<![\w$/])exports\.(?!js\b)([A-Za-z_$][\w$]*)/g)) {
    CALLED.set(name, [...new Set([...(CALLED.get(name) ?? []), path])]);
  }
}

/** Every top-level `const NAME = ...;` in js/ with its file, line and whether it is exported. */
const DECLARATIONS = JS_SOURCES.flatMap(({ path, text }) =>
  [...text.matchAll(/^(export )?const ([A-Z][A-Z0-9_]*) = ([^;]*);/gm)].map((match) => ({
    name: match[2],
    exported: match[1] !== undefined,
    source: match[3],
    where: `${path}:${text.slice(0, match.index).split('\n').length}`,
    path,
  })),
);

/** A numeric expression of source text (literals, + - * / << and parentheses), or undefined. */
function evaluateNumber(source) {
  const expression = source.replace(/\/\/.*$/gm, '').trim();
  if (!/^[\d_xXa-fA-F\s+\-*/<>()]+$/.test(expression) || !/^\(*\d/.test(expression)) return undefined;
  try {
    return Function(`"use strict"; return (${expression.replaceAll('_', '')});`)();
  } catch {
    return undefined;
  }
}

/** The value of a declaration: imported when js/ exports it, else parsed from its source. */
async function valueOf(declaration) {
  if (declaration.exported) return (await import(pathToFileURL(join(root, declaration.path)).href))[declaration.name];
  return evaluateNumber(declaration.source);
}

// ---- the module ------------------------------------------------------------------

async function moduleOf(simd) {
  const { module } = await loadModule(simd, undefined, 'test');
  const { exports, memory } = instantiate(module);
  const string = (pointer) => {
    const bytes = new Uint8Array(memory.buffer, pointer >>> 0);
    return new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)));
  };
  const abi = (name) => {
    assert.ok(name in ABI_IDS, `EMA_ABI_${name} is not in include/ema_stream.h`);
    return exports.ema_abi_value(ABI_IDS[name]) >>> 0;
  };
  return { module, exports, memory, string, abi };
}

/**
 * What each C constant that js/ may copy must equal, by the JS name it goes by
 * (the copies found in js/ when this was written; a copy under a new name is
 * caught below by its value).
 */
function expectedConstants(abi) {
  return {
    STAGING_FLOATS: abi('STAGING_FLOATS'),
    SEGMENT_CAPACITY: abi('SEGMENT_CAPACITY'),
    SEGMENT_WORDS: abi('SEGMENT_WORDS'),
    MAX_SLOTS: abi('MAX_SLOTS'),
    MAX_ENTRIES: abi('MAX_SLOTS'), // resolve.js: the most entries one call reads (EMA_MAX_SLOTS)
    ARENA_ALIGNMENT: abi('ALIGNMENT'),
    MAX_RANK: abi('MAX_RANK'),
    MAX_NUM_UPDATES: abi('MAX_NUM_UPDATES'),
    MAX_HEADER_BYTES: abi('ST_MAX_HEADER_BYTES'),
    STAGING_BYTES: abi('STAGING_FLOATS') * 4,
    SEGMENT_TABLE_BYTES: abi('SEGMENT_CAPACITY') * abi('SEGMENT_WORDS') * 4,
    PER_ARRAY_BYTES: abi('REGION_BYTES_PER_ARRAY'),
    CORE_RESERVED_BYTES: abi('INITIAL_MEMORY_BYTES'), // memory-budget.js: -sINITIAL_MEMORY
    MIN_PAGES: abi('INITIAL_MEMORY_BYTES') / 65536, // loader/boundary: -sINITIAL_MEMORY in pages
    SCHEDULE_BYTES: abi('SCHEDULE_BYTES'), // boundary.js: struct ema_schedule
    STEP_INFO_BYTES: abi('STEP_INFO_BYTES'), // boundary.js: struct ema_step_info
    MAX_PROFILES: abi('MAX_PROFILES'), // recipes.js, boundary.js: EMA_MAX_PROFILES
    MAX_SNAPSHOTS: abi('MAX_POSTHOC_SNAPSHOTS'), // snapshots.js: EMA_MAX_POSTHOC_SNAPSHOTS
  };
}

for (const simd of BUILDS) {
  describe(`C ABI, ${buildName(simd)} build`, () => {
    test('the module is the package version (ema_version_string, ema_version_number)', async () => {
      const { exports, string } = await moduleOf(simd);
      assert.equal(string(exports.ema_version_string()), packageVersion, 'ema_version_string() vs package.json');
      const [major, minor, patch] = packageVersion.split(/[.+-]/).map(Number);
      assert.equal(exports.ema_version_number() >>> 0, major * 10000 + minor * 100 + patch);
    });

    test('ema_abi_value answers every id of include/ema_stream.h, and 0 for others', async () => {
      const { exports, abi } = await moduleOf(simd);
      assert.ok(Object.keys(ABI_IDS).length >= 12, 'the ema_abi enum was read');
      for (const name of Object.keys(ABI_IDS)) assert.ok(abi(name) > 0, `EMA_ABI_${name} is ${abi(name)}`);
      const unknown = Math.max(...Object.values(ABI_IDS)) + 1;
      for (const id of [0, unknown, 0xffffffff]) assert.equal(exports.ema_abi_value(id), 0, `id ${id}`);
    });

    test('every copy of a C constant in js/ equals the module (imported when exported, else parsed)', async (t) => {
      const { abi } = await moduleOf(simd);
      const expected = expectedConstants(abi);
      const checked = [];
      for (const declaration of DECLARATIONS.filter(({ name }) => name in expected)) {
        const value = await valueOf(declaration);
        assert.equal(value, expected[declaration.name], `${declaration.where}: ${declaration.name} = ${declaration.source}`);
        checked.push(`${declaration.name} (${declaration.where})`);
      }
      // A copy under another name: a declaration whose value is one of the
      // distinctive C values (small ones such as 3, 32 or 64 would match
      // unrelated constants, and 65536 is also a Wasm page).
      const distinctive = new Set([
        expected.SEGMENT_CAPACITY, expected.MAX_SLOTS, expected.MAX_NUM_UPDATES, expected.MAX_HEADER_BYTES,
        expected.STAGING_BYTES, expected.SEGMENT_TABLE_BYTES, expected.CORE_RESERVED_BYTES,
      ]);
      for (const declaration of DECLARATIONS.filter(({ name }) => !(name in expected))) {
        const value = evaluateNumber(declaration.source);
        assert.ok(
          !distinctive.has(value),
          `${declaration.where}: ${declaration.name} = ${declaration.source} looks like a copy of a C constant; ` +
            'read it from the module (ema_abi_value) or add it to expectedConstants() in test/js/c-abi.test.js',
        );
      }
      t.diagnostic(`checked: ${checked.join(', ') || 'none (js/ reads them all from the module)'}`);
    });

    test('the power profile: sigma_rel and gamma, each the inverse of the other, in Wasm as natively', async () => {
      const { exports, memory } = await moduleOf(simd);
      const out = exports.malloc(8);
      const gammaOf = (sigmaRel) => {
        const status = exports.ema_gamma_of_sigma_rel(sigmaRel, out);
        return status === 0 ? new Float64Array(memory.buffer, out, 1)[0] : -status;
      };
      // EDM2's two profiles (Karras et al. 2024): gamma 16.97 and 6.94.
      assert.equal(gammaOf(0.05).toFixed(2), '16.97');
      assert.equal(gammaOf(0.1).toFixed(2), '6.94');
      assert.equal(gammaOf(Math.sqrt(1 / 12)), 0, 'the widest profile is gamma 0');
      for (const sigmaRel of [0.001, 0.05, 0.1, 0.2, 0.28]) {
        const back = exports.ema_sigma_rel_of_gamma(gammaOf(sigmaRel));
        assert.ok(Math.abs(back - sigmaRel) <= 4 * Number.EPSILON * sigmaRel, `${sigmaRel} -> ${back}`);
      }
      for (const bad of [0, -0.1, 0.3, NaN]) assert.equal(gammaOf(bad), -STATUS_CODES.INVALID_SCHEDULE, `sigma_rel ${bad}`);
      assert.ok(Number.isNaN(exports.ema_sigma_rel_of_gamma(-1)));
      exports.free(out);
    });

    test("js/'s recipe, rounding, non-finite, action and slot-mode numbers are include/ema.h's", async () => {
      const header = read('include/ema.h');
      const enumOf = (prefix) => Object.fromEntries(
        [...header.matchAll(new RegExp(`^\\s*EMA_${prefix}_([A-Z0-9_]+) = (\\d+)`, 'gm'))].map(([, name, value]) => [name, Number(value)]),
      );
      const recipes = await import('../../js/recipes.js');
      const recipeIds = enumOf('RECIPE');
      for (const name of recipes.RECIPE_NAMES) {
        const id = recipeIds[name.toUpperCase().replace('-', '_')];
        assert.equal(id, recipes.RECIPE_IDS[name], `recipe '${name}'`);
      }
      assert.equal(recipes.RECIPE_NAMES.length, recipeIds.LIMIT, 'every recipe of ema.h has a name in js/');
      const rounding = enumOf('ROUNDING');
      for (const [name, value] of Object.entries(recipes.ROUNDING)) assert.equal(value, rounding[name], `EMA_ROUNDING_${name}`);
      const nonFinite = enumOf('NONFINITE');
      for (const [name, value] of Object.entries(recipes.NONFINITE)) {
        assert.equal(value, nonFinite[{ allow: 'ALLOW', skip: 'SKIP', throw: 'ERROR' }[name]], `nonFinite '${name}'`);
      }
      const boundary = JS_SOURCES.find(({ path }) => path === 'js/boundary.js').text;
      const slotModes = enumOf('SLOT');
      const declared = /const SLOT_MODE = Object\.freeze\(\{ (.*?) \}\);/.exec(boundary)[1];
      for (const [, name, value] of declared.matchAll(/(\w+): (\d+)/g)) assert.equal(Number(value), slotModes[name.toUpperCase()], `slot mode '${name}'`);
      const actions = enumOf('ACTION');
      const names = JSON.parse(/const ACTION_NAMES = (\[.*?\]);/.exec(boundary)[1].replaceAll("'", '"'));
      assert.equal(names.length, Object.keys(actions).length, 'one name per ema_action');
      for (const [name, value] of Object.entries(actions)) {
        assert.equal(names[value], { AVERAGE: 'averaged', COPY: 'copied', SKIP: 'skipped', SKIP_NONFINITE: 'skipped' }[name], `EMA_ACTION_${name}`);
      }
      assert.equal(Number(/const ACTION_SKIP_NONFINITE = (\d+);/.exec(boundary)[1]), actions.SKIP_NONFINITE);
      assert.equal(Number(/const ACTION_SKIP = (\d+);/.exec(boundary)[1]), actions.SKIP);
    });

    test("js/'s status numbers are include/ema_status.h's", async () => {
      assert.equal(STATUS_CODES.OK, 0);
      assert.equal(STATUS_CODES.INVALID_ARGUMENT, 37, 'ema_status.h was read to the end');
      for (const { where, source } of DECLARATIONS.filter(({ name }) => name === 'STATUS')) {
        const pairs = [...source.matchAll(/\b([A-Z][A-Z0-9_]*): (\d+)/g)];
        assert.ok(pairs.length > 0, `${where}: STATUS has entries`);
        for (const [, name, code] of pairs) {
          assert.equal(Number(code), STATUS_CODES[name], `${where}: STATUS.${name} vs EMA_ERROR_${name} (or EMA_${name})`);
        }
      }
    });

    test("js/'s dtype table is ema_st_dtype_name's", async () => {
      const { exports, string, abi } = await moduleOf(simd);
      const names = Array.from({ length: abi('ST_DTYPE_LIMIT') }, (_, dtype) => {
        const pointer = exports.ema_st_dtype_name(dtype);
        return pointer === 0 ? null : string(pointer);
      });
      assert.equal(names[0], null, 'no dtype 0');
      assert.equal(exports.ema_st_dtype_name(names.length), 0, 'ST_DTYPE_LIMIT is one past the last dtype');
      for (const { where, source } of DECLARATIONS.filter(({ name }) => name === 'DTYPE_NAMES')) {
        const table = JSON.parse(source.replace(/\/\/.*$/gm, '').replaceAll("'", '"'));
        assert.deepEqual(table, names, `${where}: DTYPE_NAMES`);
      }
    });

    test("the parser's working memory per header byte covers its tensor table", async (t) => {
      // Parsing a header of N bytes needs its copy (N), the decoded strings
      // (at most N) and the tensor table, which grows by doubling: up to
      // 2 x EMA_ABI_ST_TENSOR_BYTES per entry, and the smallest entry is:
      const smallestEntry = '"":{"dtype":"U8","shape":[],"data_offsets":[0,1]},'.length;
      const { abi } = await moduleOf(simd);
      const needed = 2 + (2 * abi('ST_TENSOR_BYTES')) / smallestEntry;
      const sizings = JS_SOURCES.flatMap(({ path, text }) =>
        [...text.matchAll(/instantiate\(\w+, (\d+) \* header(?:\.length|Bytes)/g)].map((match) => ({ path, factor: Number(match[1]) })),
      );
      for (const { path, factor } of sizings) {
        assert.ok(factor >= needed, `${path}: ${factor} bytes per header byte, ${needed.toFixed(1)} needed`);
      }
      t.diagnostic(`parser sizings checked: ${sizings.map(({ path, factor }) => `${factor} x header in ${path}`).join(', ') || 'none found'}`);
    });

    test("ema_step_apply_staged applies the context's own table and window, bit for bit as LitEma", async () => {
      const { exports, memory, abi } = await moduleOf(simd);
      const u32 = () => new Uint32Array(memory.buffer);
      const f32 = () => new Float32Array(memory.buffer);
      const lengths = [5, 70];
      const initial = lengths.map((length, slot) => Float32Array.from({ length }, (_, i) => i * 0.25 - slot));
      const pieces = [[1, 3, 60], [0, 0, 5], [1, 0, 3], [1, 63, 7]]; // [slot, offset, count]: every element once
      const valueAt = (slot, index) => slot * 100 + index + 0.5;
      const packed = pieces.flatMap(([slot, offset, count]) => Array.from({ length: count }, (_, i) => valueAt(slot, offset + i)));
      const lengthsPointer = exports.malloc(8) >>> 0;
      const out = exports.malloc(4) >>> 0;
      u32().set(lengths, lengthsPointer >>> 2);
      assert.equal(exports.ema_create(out, 0.75, 1, lengths.length, lengthsPointer), STATUS_CODES.OK);
      const context = u32()[out >>> 2];
      lengths.forEach((_, slot) => f32().set(initial[slot], exports.ema_shadow(context, slot) >>> 2));
      assert.equal(exports.ema_step_apply_staged(context, 0), STATUS_CODES.NO_STEP, 'before ema_step_begin');
      assert.equal(exports.ema_step_begin_at(context, -(2n ** 63n), 0), STATUS_CODES.OK); // EMA_NO_STEP
      f32().set(packed, exports.ema_staging(context) >>> 2);
      u32().set(pieces.flat(), exports.ema_segment_table(context) >>> 2);
      assert.equal(exports.ema_step_apply_staged(context, pieces.length), STATUS_CODES.OK);
      const overflow = exports.ema_step_apply_staged(context, abi('SEGMENT_CAPACITY') + 1);
      assert.equal(overflow, STATUS_CODES.SEGMENT_OVERFLOW, 'more segments than the table holds');
      lengths.forEach((length, slot) => {
        const start = exports.ema_shadow(context, slot) >>> 2;
        const expected = initial[slot].slice();
        referenceStep(expected, Float32Array.from({ length }, (_, i) => valueAt(slot, i)), warmupDecay(0.75, 1));
        assert.deepEqual(new Uint32Array(f32().slice(start, start + length).buffer), new Uint32Array(expected.buffer), `slot ${slot}`);
      });
      exports.ema_destroy(context);
    });

    test('the one-profile calls are profile 0 of ema_create_profiles (ema_create_scheduled, ema_get_schedule, ema_copy_to_resident)', async () => {
      const { exports, memory } = await moduleOf(simd);
      const u32 = () => new Uint32Array(memory.buffer);
      const f32 = () => new Float32Array(memory.buffer);
      const scratch = exports.malloc(8 + 2 * 96 + 8) >>> 0; // context pointer, two schedules, a slot length
      const schedules = scratch + 8;
      const lengthPointer = scratch + 8 + 2 * 96;
      u32()[lengthPointer >>> 2] = 3;
      for (const index of [0, 1]) assert.equal(exports.ema_schedule_defaults(schedules + index * 96, 7), STATUS_CODES.OK); // power
      const view = () => new DataView(memory.buffer);
      view().setFloat64(schedules + 96 + 88, 0.1, true); // profile 1's sigma_rel
      assert.equal(exports.ema_create_profiles(scratch, 2, schedules, 1, lengthPointer), STATUS_CODES.OK);
      const profiles = u32()[scratch >>> 2];
      assert.equal(exports.ema_profile_count(profiles), 2);
      assert.equal(exports.ema_create_scheduled(scratch, schedules, 1, lengthPointer), STATUS_CODES.OK);
      const single = u32()[scratch >>> 2];
      assert.equal(exports.ema_profile_count(single), 1);
      assert.equal(exports.ema_get_schedule(profiles, schedules + 96), STATUS_CODES.OK);
      assert.equal(view().getFloat64(schedules + 96 + 88, true), 0.05, "ema_get_schedule gives profile 0's sigma_rel");
      assert.equal(exports.ema_resident_enable(profiles), STATUS_CODES.OK);
      f32().set([1, 2, 3], exports.ema_profile_shadow(profiles, 0, 0) >>> 2);
      f32().set([4, 5, 6], exports.ema_profile_shadow(profiles, 1, 0) >>> 2);
      assert.equal(exports.ema_shadow(profiles, 0), exports.ema_profile_shadow(profiles, 0, 0), "ema_shadow is profile 0's");
      assert.equal(exports.ema_copy_to_resident(profiles), STATUS_CODES.OK);
      const param = exports.ema_param(profiles, 0) >>> 2;
      assert.deepEqual([...f32().slice(param, param + 3)], [1, 2, 3]);
      assert.equal(exports.ema_copy_profile_to_resident(profiles, 1), STATUS_CODES.OK);
      assert.deepEqual([...f32().slice(param, param + 3)], [4, 5, 6]);
      exports.ema_destroy(profiles);
      exports.ema_destroy(single);
    });

    test('ema_profile_inner_product: the closed form in Wasm', async () => {
      const { exports } = await moduleOf(simd);
      // <p, p> = (g + 1)^2 / ((2g + 1) t); NaN for a profile that is not one.
      for (const [gamma, time] of [[0, 1], [6.94, 1000], [16.97, 37]]) {
        const want = (gamma + 1) ** 2 / ((2 * gamma + 1) * time);
        const got = exports.ema_profile_inner_product(gamma, time, gamma, time);
        assert.ok(Math.abs(got - want) <= 1e-15 * want, `gamma ${gamma}, t ${time}: ${got} vs ${want}`);
      }
      assert.ok(Number.isNaN(exports.ema_profile_inner_product(-1, 1, 1, 1)));
    });

    test('the module exports exactly src/wasm_exports.txt', async () => {
      const { module } = await moduleOf(simd);
      const exported = new Set(WebAssembly.Module.exports(module).map(({ name }) => name));
      const missing = [...LISTED].filter((name) => !exported.has(name));
      const unlisted = [...exported].filter((name) => !LISTED.has(name));
      assert.deepEqual(missing, [], 'listed in src/wasm_exports.txt but not exported (rebuild: bash scripts/build.sh)');
      assert.deepEqual(unlisted, [], 'exported but not listed in src/wasm_exports.txt');
    });
  });
}

/**
 * The functions the public headers declare: [{ name, header, native }], where
 * `native` is true when the comment block above the declaration (and its
 * group: declarations up to the next blank line share one comment) says
 * "Native only".
 */
function declaredFunctions() {
  return ['include/ema.h', 'include/ema_stream.h', 'include/ema_safetensors.h', 'include/ema_posthoc.h', 'include/ema_status.h'].flatMap((header) =>
    read(header)
      .split(/\n\s*\n/)
      .flatMap((group) => {
        const native = /\/\*[^]*?Native only[^]*?\*\//.test(group);
        return [...group.matchAll(/^[a-z_][\w ]*\**\s*\**(ema_\w+)\(/gm)].map(([, name]) => ({ name, header, native }));
      }),
  );
}

describe('the headers and the export list', () => {
  test('a function marked "Native only" is not exported; every other declared function is', () => {
    const functions = declaredFunctions();
    assert.ok(functions.length > 50, `the headers were read (${functions.length} functions)`);
    const exportedNative = functions.filter(({ name, native }) => native && LISTED.has(name));
    const unexported = functions.filter(({ name, native }) => !native && !LISTED.has(name));
    assert.deepEqual(exportedNative.map(({ name, header }) => `${name} (${header})`), [], 'marked Native only but exported');
    assert.deepEqual(
      unexported.map(({ name, header }) => `${name} (${header})`),
      [],
      'neither exported nor marked "Native only" in its header',
    );
    const declared = new Set(functions.map(({ name }) => name));
    const undeclared = EXPORT_LIST.filter(({ name, tag }) => name.startsWith('ema_') && tag !== 'toolchain' && !declared.has(name));
    assert.deepEqual(undeclared.map(({ name }) => name), [], 'exported but declared in no public header');
  });
});

describe('the export list and js/', () => {
  test('every export js/ calls is listed, and so is every REQUIRED_EXPORTS name', () => {
    assert.ok(CALLED.size > 20, `js/ was read (${CALLED.size} exports called)`);
    assert.ok(EXPORT_LIST.length > 40, `src/wasm_exports.txt was read (${EXPORT_LIST.length} names)`);
    const unlisted = [...CALLED].filter(([name]) => !LISTED.has(name)).map(([name, files]) => `${name} (${files.join(', ')})`);
    assert.deepEqual(unlisted, [], 'called by js/ but missing from src/wasm_exports.txt');
    assert.deepEqual(REQUIRED_EXPORTS.filter((name) => !LISTED.has(name)), [], 'js/wasm-source.js REQUIRED_EXPORTS');
  });

  test('every listed export is called by js/, unless tagged tests or toolchain', (t) => {
    // Only exports.NAME counts: REQUIRED_EXPORTS is generated from this very
    // list (js/wasm/exports.js), so it proves nothing about use.
    const uncalled = EXPORT_LIST.filter(({ name, tag }) => tag === '' && !CALLED.has(name));
    assert.deepEqual(
      uncalled.map(({ name, line }) => `${name} (src/wasm_exports.txt:${line})`),
      [],
      'listed but never called by js/: remove the export (the C function may stay, marked native only), ' +
        'or tag it `tests` if only tests need it',
    );
    const testSources = readdirSync(join(root, 'test/js'))
      .filter((name) => name.endsWith('.test.js'))
      .map((name) => read(`test/js/${name}`))
      .join('\n');
    for (const { name, line } of EXPORT_LIST.filter(({ tag }) => tag === 'tests')) {
      assert.ok(testSources.includes(name), `src/wasm_exports.txt:${line}: ${name} is tagged tests but no test/js/*.test.js uses it`);
      if (CALLED.has(name)) t.diagnostic(`${name} is tagged tests but js/ calls it now: the tag can go`);
    }
  });
});
