// What a run produces, as bench/results.json holds it. scripts/readme-perf.mjs
// reads this file for the README's performance section: a field renamed
// here must be renamed there.
//
//   { ...environment (tool, date, node, v8, cpu, cores, memoryGB, platform,
//     os, wasmSimd, quick, decay, warmupDecay, native?), durationSeconds,
//     models: [{ key, label, tensors, params }],
//     variants: [{ id, label, bytesPerParam, ref, refScale }],
//     bitIdentical, verification: [Verification.result per model],
//     targets: [evaluateTargets()], notes: [string], results: [row],
//     rounding: null or { sizes, rows: [kernels.mjs roundingSummary() row] } }

import os from 'node:os';
import process from 'node:process';

import { hasWasmSimd } from '../../js/index.js';
import { ROUNDING_SIZES } from './kernels.mjs';
import { DECAY, paramCount } from './models.mjs';
import { median } from './timing.mjs';
import { VARIANT, VARIANTS } from './variants.mjs';

/** The machine, runtime and settings of this run; `native` is added once bench_native is built. */
export function describeEnvironment(options) {
  const cpus = os.cpus();
  return {
    tool: 'bench/compare.mjs',
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    platform: `${process.platform} ${process.arch}`,
    os: `${os.type()} ${os.release()}`,
    wasmSimd: hasWasmSimd(),
    quick: options.quick,
    decay: DECAY,
    warmupDecay: true,
  };
}

/**
 * One model's result rows from its timed variants ({ id, label, bytes,
 * samples }, in VARIANTS order): the statistics of the samples, throughput,
 * and the ratios to each row's reference and to the plain JS loop.
 * `storeRestoreSplits` (variant id -> { store, restore }) adds the medians
 * of the two halves to the store+restore rows.
 */
export function resultRows({ model, spec, plan, timed, storeRestoreSplits }) {
  const totalParams = paramCount(spec);
  const rows = timed.map((variant) => {
    const sorted = variant.samples.slice().sort((a, b) => a - b);
    const medianMs = median(sorted);
    const row = {
      model: model.key,
      modelLabel: model.label,
      params: totalParams,
      tensors: spec.length,
      variant: variant.id,
      label: variant.label,
      reps: sorted.length,
      warmup: plan.warmup,
      medianMs,
      minMs: sorted[0],
      mParamsPerSecond: totalParams / medianMs / 1e3,
      gbPerSecond: (totalParams * variant.bytes) / medianMs / 1e6,
      bytesPerParam: variant.bytes,
      samplesMs: variant.samples.map((ms) => Number(ms.toFixed(5))),
    };
    const split = storeRestoreSplits.get(variant.id);
    if (split) {
      row.storeMedianMs = median(split.store.sort((a, b) => a - b));
      row.restoreMedianMs = median(split.restore.sort((a, b) => a - b));
    }
    return row;
  });
  const byId = new Map(rows.map((row) => [row.variant, row]));
  for (const row of rows) {
    const variant = VARIANT.get(row.variant);
    const ref = variant.ref && byId.get(variant.ref);
    if (ref) {
      row.ref = variant.ref;
      row.refScale = variant.refScale ?? 1;
      row.ratioVsRef = row.medianMs / (ref.medianMs * row.refScale);
    }
    const js = byId.get('jsLoop');
    if (variant.jsLoop && js) row.speedupVsJsLoop = js.medianMs / row.medianMs;
  }
  return rows;
}

/** The results.json document (see the top of this file). */
export function resultsDocument({ environment, durationSeconds, models, verification, targets, notes, rows, rounding = null }) {
  return {
    ...environment,
    durationSeconds,
    models: models.map((model) => {
      const spec = model.spec();
      return { key: model.key, label: model.label, tensors: spec.length, params: paramCount(spec) };
    }),
    variants: VARIANTS.map(({ id, label, bytes, ref, refScale }) => ({ id, label, bytesPerParam: bytes, ref, refScale })),
    bitIdentical: true,
    verification,
    targets,
    notes,
    results: rows,
    rounding: rounding && { sizes: ROUNDING_SIZES, rows: rounding },
  };
}
