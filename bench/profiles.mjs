// Several power-function profiles in one EMA (issue 12, item 2) against
// separate EMAs and against the same C core built natively, at the 1M and
// 16M models (bench/lib/models.mjs), in both Wasm builds:
//
//   2 profiles, one EMA    createEma(params, { recipe: 'power', sigmaRel: [0.05, 0.10] }),
//                          ema.update(params): each parameter read once
//   2 separate EMAs        one power EMA per sigmaRel, each update(params), timed together
//   1 profile, one EMA     the first alone: what the second profile adds
//   ... resident           the same with { resident: true }: no copy into Wasm memory
//   native C               bench/profiles.c: the same groups of contexts, ema_update_at
//                          with the parameters as pointers (or resident), gcc -O3 and
//                          gcc -O3 -march=native (bench/lib/profiles-native.mjs)
//
//   node bench/profiles.mjs                  full run (a few minutes)
//   node bench/profiles.mjs --quick          fewer repetitions, a smoke test
//   node bench/profiles.mjs --only 16M       some models (default 1M,16M)
//   node bench/profiles.mjs --rounds N       N interleaved rounds instead of the model's plan
//   node bench/profiles.mjs --json PATH      results file (default build/bench-profiles.json)
//   node bench/profiles.mjs --no-native      skip the native rows
//   node bench/profiles.mjs --wasm DIR       time DIR/ema-simd.wasm and DIR/ema-scalar.wasm
//                                            (a candidate build) instead of the built-in modules
//
// Before anything is timed every group of every build must hold the same
// shadows, bit for bit, per profile (the fused SIMD EMA's are the reference)
// after the same steps; the run stops otherwise. Those steps also set the
// state every row is timed in (VERIFY_STEPS). Timing: interleaved rounds
// and medians, as bench/compare.mjs (bench/lib/timing.mjs).

import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

import { hasWasmSimd } from '../js/index.js';
import { createCommandLine, positiveInteger, resolvedPath, UsageError } from '../scripts/flags.mjs';
import { modelsNamed, paramCount } from './lib/models.mjs';
import { fillRandom, makeParams } from './lib/params.mjs';
import {
  createGroups,
  disposeGroups,
  groupHashes,
  groupOperation,
  GROUPS,
  profilesUpdated,
  referenceOf,
  stagingCopyOperation,
  stepGroups,
} from './lib/profiles-emas.mjs';
import { buildNativeProfiles, NativeProfilesRemote } from './lib/profiles-native.mjs';
import { remoteRun, whenReady } from './lib/remotes.mjs';
import { runMain, writeResults } from './lib/run.mjs';
import { median, timeInterleaved, timeOps } from './lib/timing.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SIGMA_RELS = [0.05, 0.1];
// The verification's steps, which also set the state every row is timed in.
// `values`: every parameter drawn anew in [-1, 1) ('fill') or moved by a draw
// times DRIFT ('drift', as training moves weights: a shadow stays near its
// parameter, as in real use, where the exact fused multiply-add almost never
// needs its float64 fallback); `samples`: the step's samples (none: the batch
// size, 1). The first steps have weights near 1, where lerp_ takes its
// parameter branch; the step of 10,000 samples puts t at 10,000, after which
// the weights are (gamma + 1) / t, about 1.8e-3 and 7.9e-4, as in the middle
// of a training run (lerp_'s shadow branch).
const VERIFY_STEPS = [
  { values: 'fill' },
  { values: 'drift' },
  { values: 'drift' },
  { values: 'drift', samples: 10000 },
  { values: 'drift' },
  { values: 'drift' },
];
const DRIFT = 2 ** -7; // bench/profiles.c's DRIFT
const WASM_BUILDS = [
  { id: 'simd', label: 'Wasm SIMD128', simd: true },
  { id: 'scalar', label: 'Wasm scalar', simd: false },
];
// update(params)'s copy into Wasm memory, alone: a row of its own.
const COPY_BUILD = { id: 'copy', label: 'JS, no EMA' };
const COPY_GROUP = { id: 'stagingCopy', label: "update(params)'s copy alone", single: true };
const TARGET_MODEL = '16M';
const USAGE = `usage: node bench/profiles.mjs [--quick] [--only MODEL[,MODEL]] [--rounds N] [--json PATH] [--no-native] [--wasm DIR]
  models: 1M, 16M (default both; any of bench/lib/models.mjs)
  --rounds N     interleaved rounds (default: the model's plan)
  --json PATH    where to write the results (default build/bench-profiles.json)
  --no-native    skip the native C rows (no gcc build)
  --wasm DIR     DIR/ema-simd.wasm and DIR/ema-scalar.wasm instead of the built-in modules`;

const { readOptions } = createCommandLine({
  program: 'bench/profiles',
  usage: USAGE,
  defaults: {
    quick: false,
    models: modelsNamed('1M,16M'),
    rounds: null,
    jsonPath: path.join(ROOT, 'build', 'bench-profiles.json'),
    native: true,
    wasmDir: null,
  },
  valueFlags: {
    '--only': [
      'models',
      (text, flag) => {
        const models = modelsNamed(text);
        if (models === null) throw new UsageError(`${flag}: unknown model in '${text}'`);
        return models;
      },
    ],
    '--rounds': ['rounds', positiveInteger],
    '--json': ['jsonPath', resolvedPath],
    '--wasm': ['wasmDir', resolvedPath],
  },
  switches: { '--quick': ['quick', true], '--no-native': ['native', false] },
});

// ---- verification -------------------------------------------------------------

/** A 'drift' step: every parameter moves by a draw times DRIFT, rounded to float32 (as bench/profiles.c). */
function driftArrays(arrays, random) {
  for (const data of arrays) {
    for (let i = 0; i < data.length; i++) data[i] = Math.fround(data[i] + random() * DRIFT);
  }
}

/**
 * Steps every group of every build (and, concurrently, every native child)
 * through VERIFY_STEPS, then compares every profile's shadows and the last
 * weights with the fused SIMD EMA's. Returns { ok, lines, result }: the
 * lines say what differs.
 */
async function verify(model, params, random, wasm, remotes) {
  const arrays = params.map((p) => p.data);
  // As bench/profiles.c reads them: f or d, then :SAMPLES when given.
  const list = VERIFY_STEPS.map(({ values, samples }) => `${values[0]}${samples === undefined ? '' : `:${samples}`}`).join(',');
  const pending = Object.fromEntries(Object.entries(remotes).map(([id, remote]) => [id, remote.request(`verify ${list}`)]));
  let weights = null;
  for (const { values, samples } of VERIFY_STEPS) {
    if (values === 'fill') fillRandom(arrays, random);
    else driftArrays(arrays, random);
    for (const build of WASM_BUILDS) {
      const result = stepGroups(wasm[build.id], params, samples);
      if (build.id === 'simd') weights = result.profiles.map((profile) => Math.fround(profile.weight));
    }
  }
  const reference = referenceOf(wasm.simd, params, SIGMA_RELS);
  const expected = (group) => (group.single ? reference.hashes.slice(0, 1) : reference.hashes);
  const result = { model: model.key, steps: list, reference: reference.hashes, weights, builds: {} };
  const lines = [];
  const record = (buildId, hashes, buildWeights) => {
    const entry = { identical: true, hashes };
    for (const group of GROUPS) {
      if (hashes[group.id].join() !== expected(group).join()) {
        entry.identical = false;
        lines.push(`${buildId} ${group.id}: ${hashes[group.id].join(', ')} (reference ${expected(group).join(', ')})`);
      }
    }
    if (buildWeights !== undefined && buildWeights.join() !== weights.join()) {
      entry.identical = false;
      lines.push(`${buildId}: last weights ${buildWeights.join(', ')} (reference ${weights.join(', ')})`);
    }
    result.builds[buildId] = entry;
  };
  for (const build of WASM_BUILDS) record(build.id, groupHashes(wasm[build.id], params, reference));
  for (const [id, reply] of Object.entries(pending)) {
    const { hashes, weights: nativeWeights } = await reply;
    record(id, hashes, nativeWeights.map(Math.fround));
  }
  return { ok: lines.length === 0, lines, result };
}

// ---- one model ----------------------------------------------------------------

async function benchModel(model, options, nativeBuilds, modules, notes) {
  const plan = { ...(options.quick ? model.quick : model.full) };
  if (options.rounds !== null) plan.rounds = options.rounds;
  const spec = model.spec();
  const { params, random } = makeParams(spec);
  const totalParams = paramCount(spec);
  const say = (text) => console.log(`[${model.key}] ${text}`);
  say(`${totalParams.toLocaleString('en-US')} params in ${spec.length} tensors; profiles sigmaRel ${SIGMA_RELS.join(', ')}`);

  // The native children start first and fill their own copies meanwhile.
  const remotes = Object.fromEntries(nativeBuilds.map((build) => [build.id, new NativeProfilesRemote(build, spec, SIGMA_RELS)]));
  const wasm = {};
  for (const build of WASM_BUILDS) wasm[build.id] = await createGroups(params, SIGMA_RELS, build.simd, modules?.[build.id]);
  await whenReady(remotes, model, notes);

  const t0 = performance.now();
  const verification = await verify(model, params, random, wasm, remotes);
  say(
    `verify: steps ${verification.result.steps} (f: new values, d: drift, :samples), every group of ` +
      `${[...WASM_BUILDS.map((b) => b.id), ...Object.keys(remotes)].join(', ')}: ` +
      `${verification.ok ? 'bit-identical per profile' : 'MISMATCH'}, hashes ${verification.result.reference.join(', ')}; ` +
      `weights now ${verification.result.weights.map((w) => w.toPrecision(3)).join(', ')} (${(performance.now() - t0).toFixed(0)} ms)`,
  );
  if (!verification.ok) {
    for (const line of verification.lines) console.log(`[${model.key}] differs: ${line}`);
    for (const remote of Object.values(remotes)) remote.close();
    process.exit(1);
  }

  const counter = { next: 0 };
  const timed = [];
  for (const build of WASM_BUILDS) {
    for (const group of GROUPS) {
      const { op, touch } = groupOperation(group, wasm[build.id][group.id], params);
      timed.push({ build, group, samples: [], run: async (warmup, reps) => timeOps(op, touch, warmup, reps, counter) });
    }
  }
  const copy = stagingCopyOperation(params);
  timed.push({ build: COPY_BUILD, group: COPY_GROUP, samples: [], run: async (warmup, reps) => timeOps(copy.op, copy.touch, warmup, reps, counter) });
  for (const build of nativeBuilds) {
    if (!remotes[build.id]) continue;
    for (const group of GROUPS) timed.push({ build, group, samples: [], run: remoteRun(remotes[build.id], `time ${group.id}`, model, notes) });
  }
  const t1 = performance.now();
  await timeInterleaved(timed, plan, plan.rounds);
  say(`timed ${timed.length} rows: ${plan.warmup} warm-up, ${plan.rounds} interleaved rounds (${((performance.now() - t1) / 1e3).toFixed(1)} s)`);
  for (const build of WASM_BUILDS) disposeGroups(wasm[build.id]);
  for (const remote of Object.values(remotes)) remote.close();

  const rows = timed.map(({ build, group, samples }) => {
    const sorted = samples.slice().sort((a, b) => a - b);
    const medianMs = median(sorted);
    const profiles = profilesUpdated(group, SIGMA_RELS);
    return {
      model: model.key,
      params: totalParams,
      tensors: spec.length,
      build: build.id,
      buildLabel: build.label,
      group: group.id,
      label: group.label,
      profiles,
      samples: sorted.length,
      medianMs,
      minMs: sorted[0],
      gElementsPerSecond: (totalParams * profiles) / (medianMs * 1e6),
    };
  });
  return { rows, verification: verification.result };
}

// ---- ratios, targets, report --------------------------------------------------------

/** The ratios of one model and build: { model, build, separateOverFused, ..., vsNative: { id: ratio } }. */
function ratiosOf(rows, nativeBuilds) {
  const get = (model, build, group) => rows.find((r) => r.model === model && r.build === build && r.group === group);
  const ratios = [];
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    for (const build of [...new Set(rows.filter((r) => r.model === model && r.group === 'fused').map((r) => r.build))]) {
      const at = (group) => get(model, build, group)?.medianMs;
      const entry = {
        model,
        build,
        separateOverFused: at('separate') / at('fused'),
        residentSeparateOverFused: at('residentSeparate') / at('residentFused'),
        fusedOverSingle: at('fused') / at('single'),
        // Wasm: update(params) is the copy then the kernel; the kernels' ratio with the copy taken out.
        kernelFusedOverSingle: undefined,
        fusedOverNative: {},
        residentFusedOverNative: {},
      };
      if (WASM_BUILDS.some((b) => b.id === build)) {
        const copyMs = get(model, COPY_BUILD.id, COPY_GROUP.id)?.medianMs;
        if (copyMs !== undefined) entry.kernelFusedOverSingle = (at('fused') - copyMs) / (at('single') - copyMs);
        for (const native of nativeBuilds) {
          const nativeFused = get(model, native.id, 'fused');
          const nativeResident = get(model, native.id, 'residentFused');
          if (nativeFused) entry.fusedOverNative[native.id] = at('fused') / nativeFused.medianMs;
          if (nativeResident) entry.residentFusedOverNative[native.id] = at('residentFused') / nativeResident.medianMs;
        }
      }
      ratios.push(entry);
    }
  }
  return ratios;
}

function evaluateTargets(ratios) {
  const simd = ratios.find((r) => r.model === TARGET_MODEL && r.build === 'simd');
  const verdict = (value, ok, detail) => (value === undefined || Number.isNaN(value) ? { met: null, value: null, detail: 'not measured' } : { met: ok, value, detail });
  const speedup = simd?.separateOverFused;
  const vsNative = simd?.fusedOverNative.native;
  return [
    {
      id: 'profilesVsSeparate',
      text: `two profiles in one EMA >= 1.4x faster than two separate EMAs (update(params), Wasm SIMD128, ${TARGET_MODEL})`,
      ...verdict(speedup, speedup >= 1.4, `separate / fused = ${speedup?.toFixed(2)}x`),
    },
    {
      id: 'profilesVsNative',
      text: `two profiles in one EMA (update(params), Wasm SIMD128) within 1.2x of the same fused loop in native C (ema_update_at, gcc -O3), ${TARGET_MODEL}`,
      ...verdict(vsNative, vsNative <= 1.2, `Wasm / native = ${vsNative?.toFixed(2)}x`),
    },
  ];
}

function formatTable(header, lines, leftColumns) {
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const format = (cells) =>
    cells
      .map((cell, column) => (column < leftColumns ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join('  ')
      .trimEnd();
  const out = [format(header), widths.map((width) => '-'.repeat(width)).join('  ')];
  lines.forEach((line, index) => {
    if (index > 0 && (line[0] !== lines[index - 1][0] || line[1] !== lines[index - 1][1])) out.push('');
    out.push(format(line));
  });
  return out.join('\n');
}

const ratio = (x) => (x === undefined || Number.isNaN(x) ? '' : `${x.toFixed(2)}x`);

function printReport({ rows, ratios, targets, notes, nativeBuilds }) {
  console.log('');
  console.log(
    formatTable(
      ['model', 'build', 'update', 'median ms', 'min ms', 'G el/s'],
      rows.map((r) => [r.model, r.buildLabel, r.label, r.medianMs.toFixed(3), r.minMs.toFixed(3), r.gElementsPerSecond.toFixed(2)]),
      3,
    ),
  );
  console.log('');
  const nativeHeaders = nativeBuilds.map((b) => `fused / ${b.label}`);
  console.log(
    formatTable(
      ['model', 'build', 'separate / fused', 'resident: separate / fused', 'fused / 1 profile', 'kernels: fused / 1 profile', ...nativeHeaders],
      ratios.map((r) => [
        r.model,
        WASM_BUILDS.find((b) => b.id === r.build)?.label ?? nativeBuilds.find((b) => b.id === r.build)?.label ?? r.build,
        ratio(r.separateOverFused),
        ratio(r.residentSeparateOverFused),
        ratio(r.fusedOverSingle),
        ratio(r.kernelFusedOverSingle),
        ...nativeBuilds.map((b) => ratio(r.fusedOverNative[b.id])),
      ]),
      2,
    ),
  );
  console.log('');
  console.log('G el/s: shadow elements written per second (parameters x profiles updated), at the median.');
  console.log('separate / fused: time of the two separate EMAs over that of the one EMA of two profiles (higher: the');
  console.log('fused update gains more); kernels: the same for update(params) with its copy taken out (the copy row);');
  console.log('fused / native: the Wasm fused update over the native one (lower is better).');
  console.log('Native: bench/profiles.c with the C core, -ffp-contract=off; ema_update_at with the parameters as pointers');
  console.log('(no copy), or resident. Its lerp_ kernel is the scalar one (f32-vlerp-scalar-u4: exact fma emulation,');
  console.log('there is no x86 SIMD variant); the -march=native row is the same code as gcc auto-vectorises it for this CPU.');
  console.log("Wasm: update(params) copies every parameter into linear memory (the staging window, 64K floats) before");
  console.log("the kernel: 'update(params)'s copy alone' times that copy with no kernel; resident rows do not copy.");
  console.log('Timed after the verification steps: t = 10,000 samples, weights about 1.8e-3 and 7.9e-4, each shadow');
  console.log("near its parameter (as in training); with unrelated values (a shadow far from its parameter) the exact");
  console.log("fused multiply-add's float64 fallback runs often and every row is several times slower.");
  console.log('');
  console.log('targets (issue 12, item 2):');
  for (const target of targets) {
    console.log(`  [${target.met === null ? 'not measured' : target.met ? 'MET' : 'MISSED'}] ${target.text}: ${target.detail}`);
  }
  if (notes.length > 0) {
    console.log('');
    console.log('notes:');
    for (const note of notes) console.log(`  - ${note}`);
  }
}

async function main() {
  const options = readOptions(process.argv.slice(2));
  if (options === null) return;
  const started = performance.now();
  if (!hasWasmSimd()) throw new Error('this runtime has no WebAssembly SIMD; the benchmark compares the SIMD build');
  const environment = {
    tool: 'bench/profiles.mjs',
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    platform: `${process.platform} ${process.arch}`,
    quick: options.quick,
    sigmaRels: SIGMA_RELS,
    verifySteps: VERIFY_STEPS,
    drift: DRIFT,
  };
  console.log('ema-wasm: several power profiles in one EMA (bench/profiles.mjs)');
  console.log(`date:  ${environment.date}`);
  console.log(`node:  ${environment.node} (V8 ${environment.v8}), ${environment.platform}`);
  console.log(`cpu:   ${environment.cpu}, ${environment.cores} cores, ${environment.memoryGB} GB`);
  console.log(`mode:  ${options.quick ? 'quick' : 'full'}; power recipe, sigmaRel ${SIGMA_RELS.join(' and ')}; models ${options.models.map((m) => m.key).join(', ')}`);

  let modules = null;
  if (options.wasmDir !== null) {
    modules = {};
    for (const build of WASM_BUILDS) {
      const file = path.join(options.wasmDir, `ema-${build.id}.wasm`);
      modules[build.id] = await WebAssembly.compile(readFileSync(file));
    }
    environment.wasm = options.wasmDir;
    console.log(`wasm:  ${options.wasmDir} (ema-simd.wasm, ema-scalar.wasm), not the built-in modules`);
  }
  const notes = [];
  let nativeBuilds = [];
  if (options.native) {
    const built = buildNativeProfiles();
    nativeBuilds = built.builds;
    notes.push(...built.notes);
    environment.native = nativeBuilds.map((b) => `${b.label}: ${b.compiler}, ${b.flags.join(' ')} -ffp-contract=off -fno-fast-math (scalar kernels)`);
    for (const line of environment.native) console.log(`native: ${line}`);
  } else {
    notes.push('native rows skipped (--no-native)');
  }
  console.log('');

  const rows = [];
  const verification = [];
  for (const model of options.models) {
    const result = await benchModel(model, options, nativeBuilds, modules, notes);
    rows.push(...result.rows);
    verification.push(result.verification);
  }
  const ratios = ratiosOf(rows, nativeBuilds);
  const targets = evaluateTargets(ratios);
  printReport({ rows, ratios, targets, notes, nativeBuilds });

  const durationSeconds = Number(((performance.now() - started) / 1e3).toFixed(1));
  const json = { ...environment, durationSeconds, models: options.models.map((m) => m.key), verification, targets, notes, rows, ratios };
  writeResults(options.jsonPath, json);
}

runMain(main);
