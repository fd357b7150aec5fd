// The goals the benchmark was built to check, each with its verdict per
// model: met, missed, or not measured (null) when a row it needs did not run
// (a model not chosen, --no-native, --no-tfjs). Printed after the table and
// kept in results.json, where scripts/readme-perf.mjs lists them.

import { FUSED_FAMILIES, ROUNDING_SIZES } from './kernels.mjs';

/**
 * The targets, as [{ id, text, met, checks: [{ model, value, ok, detail }] }],
 * from the result rows of every model run and the rounding section's rows
 * (kernels.mjs roundingSummary(), or null when it did not run).
 */
export function evaluateTargets(rows, rounding = null) {
  const get = (model, id) => rows.find((row) => row.model === model && row.variant === id);
  const models = [...new Set(rows.map((row) => row.model))];
  const fmt = (x, digits = 2) => x.toFixed(digits);
  const targets = [];
  const add = (id, text, checks) => {
    const measured = checks.filter((check) => check !== null);
    targets.push({
      id,
      text,
      met: measured.length === 0 ? null : measured.every((check) => check.ok),
      checks: measured,
    });
  };
  const ratioCheck = (model, id, refId, limit, scale = 1) => {
    const row = get(model, id);
    const ref = get(model, refId);
    if (!row || !ref) return null;
    const value = row.medianMs / (ref.medianMs * scale);
    return { model, value, ok: value <= limit, detail: `${model}: ${fmt(row.medianMs, 3)} / ${fmt(ref.medianMs * scale, 3)} ms = ${fmt(value)}x` };
  };
  const speedupCheck = (model, id, refId, atLeast, strict = false) => {
    const row = get(model, id);
    const ref = get(model, refId);
    if (!row || !ref) return null;
    const value = ref.medianMs / row.medianMs;
    return { model, value, ok: strict ? value > atLeast : value >= atLeast, detail: `${model}: ${fmt(ref.medianMs, 3)} / ${fmt(row.medianMs, 3)} ms = ${fmt(value)}x faster` };
  };

  add('updateVsNative', 'update(params) (SIMD) within 1.15x of native copy-in + update',
    models.map((model) => ratioCheck(model, 'simd', 'nativeCopyin', 1.15)));
  add('updateVsJsLoop', 'update(params) (SIMD) >= 4.5x faster than the plain JS loop at 16M+ (ResNet-50, 64M)',
    ['resnet50', '64M'].map((model) => speedupCheck(model, 'simd', 'jsLoop', 4.5)));
  add('tfjsCpu', 'TF.js adapter >= 20x faster than idiomatic TF.js on cpu (1M)',
    [speedupCheck('1M', 'tfjsCpuAdapter', 'tfjsCpuIdiomatic', 20)]);
  add('tfjsWasm', 'TF.js adapter faster than idiomatic TF.js on wasm (1M)',
    [speedupCheck('1M', 'tfjsWasmAdapter', 'tfjsWasmIdiomatic', 1, true)]);
  add('copyTo', 'copyTo within 1.2x of TypedArray.set',
    models.map((model) => ratioCheck(model, 'copyTo', 'set', 1.2)));
  const tiny = get('tiny2000', 'simd');
  add('tiny', '2000 tiny tensors: one update(params) < 0.5 ms',
    [tiny ? { model: 'tiny2000', value: tiny.medianMs, ok: tiny.medianMs < 0.5, detail: `tiny2000: ${fmt(tiny.medianMs, 3)} ms` } : null]);
  add('resident', 'resident update() within 1.1x of native update alone',
    models.map((model) => ratioCheck(model, 'resident', 'nativeDirect', 1.1)));
  const fusedCheck = (family, level) => {
    const row = rounding?.find((r) => r.build === 'simd' && r.family === family && r.level === level);
    if (!row || row.timeVsUnfused === undefined) return null;
    const value = row.timeVsUnfused;
    return { model: level, value, ok: value <= 2, detail: `${level} ${family}: ${fmt(value)}x (${fmt(row.gElementsPerSecond)} G el/s)` };
  };
  add('fusedRounding', 'fused-rounding kernels (lerp_, one rounding) within 2x of the unfused kernel, Wasm SIMD, at 1M and 16M',
    ROUNDING_SIZES.flatMap((level) => FUSED_FAMILIES.map((family) => fusedCheck(family, level))));
  return targets;
}
