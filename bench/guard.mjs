// What the non-finite guard (createEma's nonFinite: 'skip' or 'throw')
// costs: one update(params) from JS arrays with the guard off and on, at
// the 1M and 16M models, on each Wasm build, interleaved round by round.
// The guard streams the averaged arrays through the staging window once
// more and checks each window in C (ema_staging_finite) before the step.
//
//   npm run bench:guard [-- --quick] [-- --json out.json]
import { writeFileSync } from 'node:fs';
import os from 'node:os';

import { createCommandLine, nonEmptyPath } from '../scripts/flags.mjs';

const USAGE = `usage: node bench/guard.mjs [--quick] [--json FILE]
  --quick       fewer rounds (a smoke test, not figures to quote)
  --json FILE   also write the figures to FILE`;

const flags = createCommandLine({
  program: 'bench/guard',
  usage: USAGE,
  defaults: { quick: false, json: undefined },
  valueFlags: { '--json': ['json', nonEmptyPath] },
  switches: { '--quick': ['quick', true] },
}).readOptions(process.argv.slice(2));
if (flags === null) process.exit();

const { createEma, hasWasmSimd } = await import('../js/index.js');

/** `tensors` Float32Arrays of `total / tensors` values, deterministic and finite. */
function model(total, tensors) {
  return Array.from({ length: tensors }, (_, t) => {
    const data = new Float32Array(total / tensors);
    for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761 + t) % 1000) / 1000 - 0.5;
    return { name: `layer${t}.weight`, data };
  });
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

const MODELS = [
  { label: '1M', total: 1 << 20, rounds: flags.quick ? 5 : 60 },
  { label: '16M', total: 1 << 24, rounds: flags.quick ? 3 : 15 },
];
const builds = hasWasmSimd() ? [true, false] : [false];
const rows = [];
for (const { label, total, rounds } of MODELS) {
  const params = model(total, 8);
  for (const simd of builds) {
    const emas = {};
    for (const nonFinite of ['allow', 'skip']) {
      emas[nonFinite] = await createEma(params, { recipe: 'torch_ema', nonFinite, simd, threads: 1 });
      for (let i = 0; i < 3; i++) emas[nonFinite].update(params); // warm-up
    }
    const times = { allow: [], skip: [] };
    for (let round = 0; round < rounds; round++) {
      for (const nonFinite of ['allow', 'skip']) {
        const start = performance.now();
        emas[nonFinite].update(params);
        times[nonFinite].push(performance.now() - start);
      }
    }
    const allow = median(times.allow);
    const skip = median(times.skip);
    rows.push({ model: label, build: simd ? 'simd' : 'scalar', allowMs: allow, guardMs: skip, extraMs: skip - allow, ratio: skip / allow });
    for (const ema of Object.values(emas)) ema.dispose();
  }
}

console.log(`update(params) with and without the non-finite guard (medians; ${os.cpus()[0]?.model ?? 'unknown CPU'}, ` +
  `${os.cpus().length} cores, Node ${process.versions.node}, ${new Date().toISOString().slice(0, 10)})`);
console.log('| model | build | guard off (ms) | guard on (ms) | cost (ms) | ratio |');
console.log('|---|---|---|---|---|---|');
for (const row of rows) {
  console.log(`| ${row.model} | ${row.build} | ${row.allowMs.toFixed(2)} | ${row.guardMs.toFixed(2)} | +${row.extraMs.toFixed(2)} | ${row.ratio.toFixed(2)}x |`);
}
if (flags.json !== undefined) writeFileSync(flags.json, `${JSON.stringify({ rows }, null, 2)}\n`);
