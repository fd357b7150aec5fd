// The browser demo page: controls, live charts and stats around the training
// run in train.js. TF.js comes from the <script> tags (window.tf), uPlot and
// ema-wasm from their ES modules; no build step.
//
// URL parameters prefill the controls and start a run at once:
//   /demo/?steps=300&backend=wasm&decay=0.99&warmup=1
// The page reports its state for tests and scripts on
//   document.body.dataset.status  'idle' | 'running' | 'done' | 'error'
//   window.emaDemo  { status, results, simd, build, backend, updateMs, error,
//                     posthoc, ... }
// where build is { build, threads, background, crossOriginIsolated } of the
// run's EMA (null before a run starts it: see describeBuild), and posthoc
// (see resetPosthoc) describes the post-hoc EMA section; a run is 'done' once
// its sweep is drawn and the slider is live.
//
// The EMAs ask for the threads build (train.js, EMA_THREADING), which runs
// when the page is cross-origin isolated: scripts/serve.mjs sends the
// COOP/COEP headers for that unless given --no-isolation.

import uPlot from '../../node_modules/uplot/dist/uPlot.esm.js';

import { lowestLoss, SWEEP_SIGMA_RELS, TRACKED_SIGMA_RELS } from '../lib/posthoc.mjs';
import { evalInterval, runTraining } from './train.js';

const WASM_PATHS = '/node_modules/@tensorflow/tfjs-backend-wasm/dist/';
const BACKENDS = ['cpu', 'wasm', 'webgl'];
const MAX_STEPS = 100000;
const COLORS = { raw: '#ea7a28', ema: '#2563eb', tracked: '#15803d', best: '#b91c1c' };
// The slider re-evaluates this long after it stops moving.
const POSTHOC_DEBOUNCE_MS = 120;
const URL_KEYS = ['steps', 'backend', 'decay', 'warmup'];

const demo = window.emaDemo;
const setStatus = window.emaDemoSetStatus;
const fail = window.emaDemoFail;

const $ = (id) => document.getElementById(id);
const form = $('controls');
const inputs = { decay: $('decay'), steps: $('steps'), backend: $('backend'), warmup: $('warmup') };
const slider = $('posthoc-slider');

// ---- configuration ------------------------------------------------------------

class ConfigError extends Error {}

function parseSteps(text) {
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(String(text)) || value < 1 || value > MAX_STEPS) {
    throw new ConfigError(`steps must be a whole number from 1 to ${MAX_STEPS}, got '${text}'`);
  }
  return value;
}

function parseDecay(text) {
  const value = Number(text);
  if (String(text).trim() === '' || !(value >= 0 && value <= 1)) {
    throw new ConfigError(`decay must be a number from 0 to 1, got '${text}'`);
  }
  return value;
}

function parseBackend(text) {
  if (!BACKENDS.includes(text)) {
    throw new ConfigError(`backend must be one of ${BACKENDS.join(', ')}, got '${text}'`);
  }
  return text;
}

function parseWarmup(text) {
  if (['1', 'true', 'on', 'yes'].includes(text)) return true;
  if (['0', 'false', 'off', 'no'].includes(text)) return false;
  throw new ConfigError(`warmup must be 1 or 0, got '${text}'`);
}

function readControls() {
  return {
    steps: parseSteps(inputs.steps.value),
    decay: parseDecay(inputs.decay.value),
    backend: parseBackend(inputs.backend.value),
    warmup: inputs.warmup.checked,
  };
}

/** Prefills the controls from the URL; returns true when a run should start. */
function applyUrlParameters() {
  const params = new URLSearchParams(window.location.search);
  const present = URL_KEYS.filter((key) => params.has(key));
  if (params.has('steps')) inputs.steps.value = String(parseSteps(params.get('steps')));
  if (params.has('decay')) inputs.decay.value = String(parseDecay(params.get('decay')));
  if (params.has('backend')) inputs.backend.value = parseBackend(params.get('backend'));
  if (params.has('warmup')) inputs.warmup.checked = parseWarmup(params.get('warmup'));
  return present.length > 0;
}

/** Puts the run's settings into the address bar, so the link repeats it. */
function rememberInUrl(config) {
  const params = new URLSearchParams({
    steps: String(config.steps),
    backend: config.backend,
    decay: String(config.decay),
    warmup: config.warmup ? '1' : '0',
  });
  window.history.replaceState(null, '', `${window.location.pathname}?${params}`);
}

// ---- charts -------------------------------------------------------------------

const charts = {};

/** The look of every axis: its line, grid and ticks. */
function axisStyle() {
  return { stroke: '#475569', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' } };
}

/** A y axis whose tick labels `format` writes. */
function valueAxis(format) {
  return { ...axisStyle(), size: 52, values: (u, values) => values.map(format) };
}

/**
 * A chart of an x series and two lines in `element`, given its scales,
 * series, axes (and hooks): 240 px high, as wide as the element (at least
 * 240 px, following it), no drag-zoom, no legend (the key is in the caption;
 * the stats above carry the latest values).
 */
function newChart(element, options) {
  const chart = new uPlot(
    {
      width: Math.max(240, element.clientWidth),
      height: 240,
      cursor: { drag: { x: false, y: false } },
      legend: { show: false },
      ...options,
    },
    [[], [], []],
    element,
  );
  new ResizeObserver(() => {
    const width = Math.max(240, element.clientWidth);
    if (width !== chart.width) chart.setSize({ width, height: chart.height });
  }).observe(element);
  return chart;
}

function makeChart(element, { format, range }) {
  return newChart(element, {
    scales: {
      x: { time: false, range: () => [0, Number(inputs.steps.value) || 1] },
      y: { range },
    },
    series: [
      { label: 'step', value: (u, v) => (v == null ? '—' : String(v)) },
      { label: 'raw', stroke: COLORS.raw, width: 1.5, value: (u, v) => (v == null ? '—' : format(v)) },
      { label: 'EMA', stroke: COLORS.ema, width: 2.5, value: (u, v) => (v == null ? '—' : format(v)) },
    ],
    axes: [{ label: 'step', ...axisStyle() }, valueAxis(format)],
  });
}

function niceTop(value, step) {
  return Math.ceil((value * 1.05) / step) * step;
}

function setUpCharts() {
  charts.loss = makeChart($('chart-loss'), {
    format: (v) => v.toFixed(2),
    range: (u, min, max) => [0, max == null || !Number.isFinite(max) ? 1.5 : niceTop(max, 0.25)],
  });
  charts.acc = makeChart($('chart-acc'), {
    format: (v) => `${Math.round(v)}%`,
    range: (u, min) => [min == null || !Number.isFinite(min) ? 0 : Math.max(0, Math.floor(min / 10) * 10 - 10), 100],
  });
  charts.posthoc = makePosthocChart($('chart-posthoc'));
}

/**
 * Held-out loss against sigma_rel: the sweep's reconstructions, the final
 * raw weights as a flat line, and (drawn by the hook) the tracked profiles,
 * the lowest loss and the slider's current width.
 */
function makePosthocChart(element) {
  const format = (v) => v.toFixed(3);
  const valueOf = (u, v) => (v == null ? '—' : format(v));
  const toCanvas = (u, value, scale) => u.valToPos(value, scale, true);
  const markers = (u) => {
    const { ctx } = u;
    const { top, height } = u.bbox;
    const state = demo.posthoc;
    const ratio = window.devicePixelRatio || 1;
    ctx.save();
    ctx.lineWidth = 1.5 * ratio;
    ctx.setLineDash([5 * ratio, 4 * ratio]);
    ctx.strokeStyle = COLORS.tracked;
    for (const sigmaRel of TRACKED_SIGMA_RELS) {
      const x = toCanvas(u, sigmaRel, 'x');
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    const dot = (sigmaRel, loss, color, radius) => {
      ctx.beginPath();
      ctx.fillStyle = color;
      ctx.arc(toCanvas(u, sigmaRel, 'x'), toCanvas(u, loss, 'y'), radius * ratio, 0, 2 * Math.PI);
      ctx.fill();
    };
    if (state.best !== null) dot(state.best.sigmaRel, state.best.loss, COLORS.best, 5);
    if (Number.isFinite(state.loss)) {
      const x = toCanvas(u, state.sigmaRel, 'x');
      ctx.strokeStyle = COLORS.ema;
      ctx.lineWidth = 1 * ratio;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      ctx.lineWidth = 2.5 * ratio;
      ctx.fillStyle = '#fff';
      ctx.beginPath();
      ctx.arc(x, toCanvas(u, state.loss, 'y'), 6 * ratio, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }
    ctx.restore();
  };
  return newChart(element, {
    scales: { x: { time: false, range: [0, 0.26] }, y: { range: (u, min, max) => paddedRange(min, max) } },
    series: [
      { label: 'sigma_rel', value: (u, v) => (v == null ? '—' : v.toFixed(2)) },
      { label: 'post-hoc EMA', stroke: COLORS.ema, width: 2.5, points: { size: 5 }, value: valueOf },
      { label: 'raw', stroke: COLORS.raw, width: 1.5, dash: [6, 4], points: { show: false }, value: valueOf },
    ],
    axes: [
      {
        label: 'σ_rel (EMA width relative to training time)',
        ...axisStyle(),
        splits: () => [0, 0.05, 0.1, 0.15, 0.2, 0.25],
        values: (u, values) => values.map((v) => v.toFixed(2)),
      },
      valueAxis(format),
    ],
    hooks: { draw: [markers] },
  });
}

/** [min, max] with some room around, so that no point sits on the edge. */
function paddedRange(min, max) {
  if (min == null || max == null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  const pad = Math.max(0.08 * (max - min), 0.005);
  return [Math.max(0, min - pad), max + pad];
}

function drawCharts(results) {
  const steps = results.map((r) => r.step);
  charts.loss.setData([steps, results.map((r) => r.rawLoss), results.map((r) => r.emaLoss)]);
  charts.acc.setData([steps, results.map((r) => 100 * r.rawAcc), results.map((r) => 100 * r.emaAcc)]);
}

// ---- stats --------------------------------------------------------------------

function setText(id, text) {
  $(id).textContent = text;
}

function formatMs(ms) {
  if (!Number.isFinite(ms)) return '—';
  // Without cross-origin isolation, browsers round performance.now() to
  // 0.1 ms (Chromium; coarser elsewhere): a single fast step can read as 0.
  if (ms === 0) return '< 0.1 ms';
  return ms < 0.1 ? `${ms.toFixed(3)} ms` : `${ms.toFixed(2)} ms`;
}

function pair(id, ema, raw) {
  const target = $(id);
  target.replaceChildren();
  const emaSpan = document.createElement('span');
  emaSpan.className = 'key-ema-text';
  emaSpan.textContent = ema;
  const rawSpan = document.createElement('span');
  rawSpan.className = 'key-raw-text';
  rawSpan.textContent = raw;
  target.append(emaSpan, document.createTextNode(' · '), rawSpan);
}

const percent = (fraction) => `${(100 * fraction).toFixed(1)}%`;

function resetStats(config) {
  setText('stat-step', `0 / ${config.steps}`);
  setText('stat-step-sub', `backend ${config.backend}: starting…`);
  setText('stat-decay', '—');
  setText('stat-decay-sub', config.warmup ? 'numUpdates 0\nwarmup on' : 'numUpdates -1\nwarmup off');
  setText('stat-update', '—');
  setText('stat-update-sub', 'mean · last, per step');
  setText('stat-loss', '—');
  setText('stat-acc', '—');
}

const BUILD_FILES = { threads: 'ema-threads.wasm (SIMD128)', simd: 'ema-simd.wasm', scalar: 'ema-scalar.wasm' };
const BUILD_NAMES = { threads: 'threads', simd: 'SIMD128', scalar: 'scalar' };

/** Why an EMA that asked for threads runs on one thread here. */
function singleThreadedBecause(build) {
  if (!window.crossOriginIsolated) return 'page not cross-origin isolated';
  if (build === 'scalar') return 'no WebAssembly SIMD in this browser';
  if (build === 'threads') return 'its workers did not start';
  if ((navigator.hardwareConcurrency ?? 1) < 2) return 'the browser reports one core';
  return 'the threads build cannot run here';
}

/** The line that says which build runs, e.g. 'EMA build: threads (2 threads, averaging in the background)'. */
function describeBuild({ build, threads, background }) {
  if (build === 'threads' && threads > 1) {
    return `EMA build: threads (${threads} threads${background ? ', averaging in the background' : ''})`;
  }
  return `EMA build: ${build} (single-threaded: ${singleThreadedBecause(build)})`;
}

/** The build line before a run has created its EMA. */
function describeIsolation() {
  return window.crossOriginIsolated
    ? 'EMA build: chosen when a run starts; the page is cross-origin isolated, so the threads build can run.'
    : 'EMA build: chosen when a run starts; the page is not cross-origin isolated (no COOP/COEP headers), so the ' +
        'single-threaded SIMD build runs.';
}

function showBuild({ simd, build, threads, background, parameters, tensors }) {
  demo.simd = simd;
  demo.build = { build, threads, background, crossOriginIsolated: window.crossOriginIsolated === true };
  const value = $('stat-build');
  value.textContent = BUILD_NAMES[build] ?? build;
  value.classList.toggle('good', simd);
  setText('stat-build-file', `${BUILD_FILES[build] ?? build}\n${parameters.toLocaleString('en')} weights, ${tensors} tensors`);
  setText('build-line', describeBuild(demo.build));
}

function showProgress(point, stats, config, startedAt) {
  const seconds = (performance.now() - startedAt) / 1000;
  setText('stat-step', `${point.step.toLocaleString('en')} / ${config.steps.toLocaleString('en')}`);
  setText('stat-step-sub', `backend ${demo.backend}\n${seconds.toFixed(1)} s`);
  setText('stat-decay', Number.isFinite(stats.decayUsed) ? stats.decayUsed.toFixed(4) : '—');
  setText(
    'stat-decay-sub',
    stats.numUpdates >= 0 ? `numUpdates ${stats.numUpdates.toLocaleString('en')}\nwarmup on` : 'numUpdates -1\nwarmup off',
  );
  setText('stat-update', formatMs(stats.updateMs.mean));
  // In the background, update() returns once the weights are copied.
  const what = demo.build?.background ? 'mean per step (copy-in)' : 'mean per step';
  setText('stat-update-sub', `${what}\nlast ${formatMs(stats.updateMs.last)}`);
  pair('stat-loss', point.emaLoss.toFixed(3), point.rawLoss.toFixed(3));
  pair('stat-acc', percent(point.emaAcc), percent(point.rawAcc));
}

function summarize(results, config, seconds) {
  const last = results[results.length - 1];
  const gain = 1 - last.emaLoss / last.rawLoss;
  const lossText =
    Math.abs(gain) < 0.01
      ? `the EMA and raw weights score alike (held-out loss ${last.emaLoss.toFixed(3)} vs ${last.rawLoss.toFixed(3)})`
      : gain > 0
        ? `the EMA weights reach a held-out loss of ${last.emaLoss.toFixed(3)} against ${last.rawLoss.toFixed(3)} for the raw weights (${(100 * gain).toFixed(0)}% lower)`
        : `the EMA weights trail the raw ones (held-out loss ${last.emaLoss.toFixed(3)} vs ${last.rawLoss.toFixed(3)}; the average still remembers early weights — try more steps or a smaller decay)`;
  return (
    `Done: ${config.steps.toLocaleString('en')} steps in ${seconds.toFixed(1)} s on the ${demo.backend} backend; ` +
    `${lossText}, accuracy ${percent(last.emaAcc)} vs ${percent(last.rawAcc)}.`
  );
}

// ---- post-hoc EMA ----------------------------------------------------------------

// The explorer of the last finished run (train.js), and the slider's latest request.
const posthoc = { explorer: null, request: 0, timer: null };

/** Forgets the last run's post-hoc state: frees its model, closes the slider. */
function resetPosthoc() {
  clearTimeout(posthoc.timer);
  posthoc.request += 1; // answers to earlier requests are dropped
  posthoc.explorer?.dispose();
  posthoc.explorer = null;
  slider.disabled = true;
  demo.posthoc = {
    status: 'idle', // 'idle' | 'sweeping' | 'ready'
    pending: false, // a slider value waits for its reconstruction
    sigmaRel: null,
    gamma: NaN,
    loss: NaN,
    accuracy: NaN,
    conditionNumber: NaN,
    amplification: NaN,
    warning: null,
    evaluations: 0,
    best: null, // { sigmaRel, loss, accuracy } of the sweep's lowest loss
    raw: null, // { loss, accuracy } of the final raw weights
    tracked: [], // [{ sigmaRel, loss, accuracy }] of the power EMA's own profiles
    snapshots: 0,
    sweep: [], // [{ sigmaRel, loss, accuracy, amplification, conditionNumber }]
  };
  charts.posthoc?.setData([[], [], []]);
  for (const id of ['posthoc-loss', 'posthoc-acc', 'posthoc-best', 'posthoc-coef']) setText(id, '—');
  $('posthoc-warning').hidden = true;
  setText('posthoc-status', 'The slider opens when a training run is done.');
}

const sigmaText = (sigmaRel) => sigmaRel.toFixed(3);

/** A readout: the value, and a small note on the line below. */
function valueWithNote(id, value, note) {
  const small = document.createElement('small');
  small.textContent = note;
  $(id).replaceChildren(document.createTextNode(`${value}\n`), small);
}

/** The coefficients' amplification (the sum of their magnitudes) and condition number. */
function showCoefficients(result, snapshots) {
  const { conditionNumber } = result;
  const condition = conditionNumber < 1e4 ? conditionNumber.toFixed(0) : conditionNumber.toExponential(1);
  valueWithNote('posthoc-coef', `Σ|c| ${result.amplification.toFixed(2)}`, `cond ${condition}, ${snapshots} snapshots`);
}

/** Shows a reconstruction's result (and keeps it on window.emaDemo.posthoc). */
function showPosthoc(result) {
  const state = demo.posthoc;
  Object.assign(state, {
    pending: false,
    sigmaRel: result.sigmaRel,
    gamma: result.gamma,
    loss: result.loss,
    accuracy: result.accuracy,
    conditionNumber: result.conditionNumber,
    amplification: result.amplification,
    warning: result.warning,
    evaluations: state.evaluations + 1,
  });
  const change = result.loss / state.raw.loss - 1;
  const sign = change <= 0 ? '−' : '+';
  const lossChange = `${sign}${Math.abs(100 * change).toFixed(1)}% vs raw ${state.raw.loss.toFixed(3)}`;
  valueWithNote('posthoc-loss', result.loss.toFixed(3), lossChange);
  valueWithNote('posthoc-acc', percent(result.accuracy), `raw ${percent(state.raw.accuracy)}`);
  showCoefficients(result, state.snapshots);
  const warning = $('posthoc-warning');
  warning.hidden = result.warning === null;
  warning.textContent = result.warning === null ? '' : `reconstruct() warns: ${result.warning}`;
  charts.posthoc.redraw(false, false);
}

/** Reconstructs and evaluates the EMA of the slider's width; only the latest request is shown. */
async function evaluateSlider() {
  if (posthoc.explorer === null) return;
  const sigmaRel = Number(slider.value);
  const request = ++posthoc.request;
  demo.posthoc.pending = true;
  const result = await posthoc.explorer.evaluate(sigmaRel);
  if (result === null || request !== posthoc.request) return;
  showPosthoc(result);
}

function onSlider() {
  $('posthoc-sigma').textContent = sigmaText(Number(slider.value));
  if (posthoc.explorer === null) return;
  demo.posthoc.pending = true;
  clearTimeout(posthoc.timer);
  posthoc.timer = setTimeout(() => evaluateSlider().catch(fail), POSTHOC_DEBOUNCE_MS);
}

/**
 * After a run, with its explorer in posthoc.explorer: reconstructs and
 * evaluates the EMA of every width of the sweep (the chart's curve and the
 * best width), then the slider's, and opens the slider.
 */
async function preparePosthoc(results) {
  const { explorer } = posthoc;
  const last = results[results.length - 1];
  const state = demo.posthoc;
  Object.assign(state, {
    status: 'sweeping',
    raw: { loss: last.rawLoss, accuracy: last.rawAcc },
    tracked: explorer.tracked.map(({ sigmaRel, loss, accuracy }) => ({ sigmaRel, loss, accuracy })),
    snapshots: explorer.snapshots,
  });
  setText(
    'posthoc-status',
    `Reconstructing ${SWEEP_SIGMA_RELS.length} EMA widths from ${explorer.snapshots} snapshots…`,
  );
  const sweep = [];
  for (const sigmaRel of SWEEP_SIGMA_RELS) {
    // Within the run: no new run can dispose the explorer meanwhile.
    sweep.push(await explorer.evaluate(sigmaRel));
  }
  const best = lowestLoss(sweep);
  Object.assign(state, {
    status: 'ready',
    best: { sigmaRel: best.sigmaRel, loss: best.loss, accuracy: best.accuracy },
    sweep: sweep.map(({ sigmaRel, loss, accuracy, amplification, conditionNumber }) => ({
      sigmaRel,
      loss,
      accuracy,
      amplification,
      conditionNumber,
    })),
  });
  charts.posthoc.setData([sweep.map((r) => r.sigmaRel), sweep.map((r) => r.loss), sweep.map(() => state.raw.loss)]);
  valueWithNote('posthoc-best', best.loss.toFixed(3), `at σ_rel ${best.sigmaRel.toFixed(2)}`);
  const tracked = state.tracked.map(({ sigmaRel, loss }) => `${sigmaRel.toFixed(2)}: ${loss.toFixed(3)}`).join(', ');
  const every = explorer.snapshotEvery === 1 ? 'step' : `${explorer.snapshotEvery} steps`;
  setText(
    'posthoc-status',
    `${explorer.snapshots} snapshots (${TRACKED_SIGMA_RELS.length} profiles, every ${every}). ` +
      `The tracked profiles themselves score ${tracked}; the red dot marks the lowest loss of the sweep.`,
  );
  slider.disabled = false;
  await evaluateSlider();
}

// ---- a run --------------------------------------------------------------------

let wasmPathsSet = false;

async function selectBackend(tf, name) {
  if (name === 'wasm') {
    if (typeof tf.wasm?.setWasmPaths !== 'function') {
      throw new Error('the TF.js wasm backend script (tf-backend-wasm.min.js) did not load');
    }
    if (!wasmPathsSet) {
      // Must come before the wasm backend first initialises.
      tf.wasm.setWasmPaths(WASM_PATHS);
      wasmPathsSet = true;
    }
  }
  let started = false;
  let cause = '';
  try {
    started = await tf.setBackend(name);
  } catch (error) {
    cause = `: ${error.message}`;
  }
  if (!started || tf.getBackend() !== name) {
    throw new Error(`TF.js could not start its ${name} backend${cause}; choose another backend`);
  }
}

let running = false;

function setRunning(value) {
  running = value;
  for (const element of form.elements) element.disabled = value;
  $('start').textContent = value ? 'Training…' : 'Start training';
}

async function run(config) {
  if (running) return;
  setRunning(true);
  $('error').hidden = true;
  Object.assign(demo, {
    status: 'running',
    results: [],
    simd: null,
    build: null,
    backend: null,
    updateMs: { mean: NaN, last: NaN },
    error: null,
    config,
  });
  resetPosthoc();
  setStatus('running');
  resetStats(config);
  drawCharts([]);
  setText('status-line', `Starting the ${config.backend} backend…`);
  try {
    const tf = window.tf;
    if (typeof tf?.setBackend !== 'function') {
      throw new Error('TensorFlow.js did not load (window.tf is missing)');
    }
    await selectBackend(tf, config.backend);
    demo.backend = tf.getBackend();
    const startedAt = performance.now();
    const every = evalInterval(config.steps);
    setText('status-line', `Training ${config.steps.toLocaleString('en')} steps on the ${demo.backend} backend, evaluating every ${every === 1 ? 'step' : `${every} steps`}…`);
    const summary = await runTraining({
      tf,
      steps: config.steps,
      decay: config.decay,
      warmup: config.warmup,
      onStart: showBuild,
      onEval: (point, stats) => {
        demo.results.push(point);
        demo.updateMs = stats.updateMs;
        demo.numUpdates = stats.numUpdates;
        drawCharts(demo.results);
        showProgress(point, stats, config, startedAt);
      },
    });
    // Owned here from now on: resetPosthoc() frees it (and its model).
    posthoc.explorer = summary.posthoc;
    const seconds = (performance.now() - startedAt) / 1000;
    Object.assign(demo, { updateMs: summary.updateMs, numUpdates: summary.numUpdates, seconds });
    setText('stat-step-sub', `backend ${demo.backend}\n${seconds.toFixed(1)} s`);
    setText('status-line', summarize(demo.results, config, seconds));
    await preparePosthoc(demo.results);
    setStatus('done');
  } catch (error) {
    setText('status-line', 'The run stopped with an error (see above).');
    fail(error);
  } finally {
    setRunning(false);
  }
}

// ---- start --------------------------------------------------------------------

function main() {
  setText('build-line', describeIsolation());
  setUpCharts();
  resetPosthoc();
  // The browser may have kept the slider's value across a reload.
  $('posthoc-sigma').textContent = sigmaText(Number(slider.value));
  slider.addEventListener('input', onSlider);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    let config;
    try {
      config = readControls();
    } catch (error) {
      fail(error);
      return;
    }
    rememberInUrl(config);
    run(config);
  });
  inputs.steps.addEventListener('change', () => drawCharts(demo.results));
  if (applyUrlParameters()) {
    run(readControls());
  }
}

try {
  main();
} catch (error) {
  fail(error);
}
