// The post-hoc EMA figure (after Figure 5 of Karras et al. 2024): test loss
// and accuracy of the EMA reconstructed after training, against its
// relative width sigma_rel, with the raw and LitEma weights as horizontal
// lines and the two tracked profiles marked, as a standalone SVG file.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import { element, escapeXml, legend, niceTicks, panel, svgDocument, text } from './svg-chart.mjs';

const WIDTH = 960;
const HEIGHT = 530;
const PANEL = { top: 150, width: 350, height: 290 };
const PANEL_LEFTS = [90, 560];

const COLORS = { posthoc: '#1f5fb4', raw: '#e07b39', litEma: '#6b7280', tracked: '#15803d', best: '#b91c1c' };
const DASH = { raw: '6 4', litEma: '2 4', tracked: '5 4' };

const STYLE = `
  text { font-family: system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; fill: #222; }
  .title { font-size: 19px; font-weight: 600; }
  .subtitle { font-size: 12.5px; fill: #555; }
  .panel-title { font-size: 14px; font-weight: 600; }
  .tick { font-size: 11.5px; fill: #555; }
  .axis-label { font-size: 12.5px; fill: #444; }
  .legend { font-size: 13px; }
  .note { font-size: 11.5px; fill: #777; }
  .mark { font-size: 11.5px; paint-order: stroke; stroke: #fafafa; stroke-width: 3px; stroke-linejoin: round; }
  .best { font-size: 12px; }
`;

/**
 * The y domain: every point of the curve and every reference line, except
 * that a reconstruction far off the rest (a width the snapshots cannot
 * express, whose noise the amplification blows up) may not squash the
 * curve: the axis then ends 1.5 spans of the reference values beyond them.
 */
function yDomain(curveValues, referenceValues, outliersAre) {
  const all = [...curveValues, ...referenceValues];
  let low = Math.min(...all);
  let high = Math.max(...all);
  const span = Math.max(Math.max(...referenceValues) - Math.min(...referenceValues), 1e-6);
  const core = [Math.min(...referenceValues) - 1.5 * span, Math.max(...referenceValues) + 1.5 * span];
  let clipped = false;
  if (outliersAre === 'high' && high > core[1]) {
    high = core[1];
    clipped = true;
  }
  if (outliersAre === 'low' && low < core[0]) {
    low = core[0];
    clipped = true;
  }
  return { domain: [low, high], clipped };
}

/** A horizontal reference line across the panel, labelled at its right end. */
function referenceLine(chart, { left, y, color, dash, label }) {
  const yPixel = chart.yScale(y);
  return (
    element('line', {
      x1: left,
      x2: left + PANEL.width,
      y1: yPixel,
      y2: yPixel,
      stroke: color,
      'stroke-width': 1.8,
      'stroke-dasharray': dash,
    }) + text(left + PANEL.width - 4, yPixel - 5, label, { 'text-anchor': 'end', class: 'mark', style: `fill: ${color}` })
  );
}

/** One metric's panel: `metric` is 'loss' or 'accuracy'. */
function metricPanel({ left, metric, sweep, litEma }) {
  const isLoss = metric === 'loss';
  const scale = isLoss ? (value) => value : (value) => 100 * value;
  const format = (value) => (isLoss ? value.toFixed(4) : `${value.toFixed(2)}%`);
  const curve = sweep.rows.map((row) => [row.sigmaRel, scale(row[metric])]);
  const raw = scale(sweep.raw[metric]);
  const averaged = scale(litEma[metric]);
  const tracked = sweep.tracked.map((profile) => [profile.sigmaRel, scale(profile[metric])]);
  const best = [sweep.best.sigmaRel, scale(sweep.best[metric])];

  const references = [raw, averaged, ...tracked.map(([, y]) => y), best[1]];
  const { domain, clipped } = yDomain(curve.map(([, y]) => y), references, isLoss ? 'high' : 'low');
  // A little room, so that no marker sits on the panel's edge (and is cut in half).
  const pad = 0.03 * (domain[1] - domain[0]);
  const { ticks: yTicks, step } = niceTicks(domain[0] - pad, domain[1] + pad, 6);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const lastSigma = sweep.rows[sweep.rows.length - 1].sigmaRel;
  const xTicks = niceTicks(0, lastSigma, 5).ticks;

  const chart = panel({
    left,
    ...PANEL,
    title: isLoss ? 'Test loss' : 'Test accuracy',
    xLabel: 'sigma_rel (EMA length relative to training time)',
    yLabel: isLoss ? 'cross-entropy loss' : 'accuracy (%)',
    xTicks,
    yTicks,
    formatX: (value) => value.toFixed(2),
    formatY: (value) => (isLoss ? value.toFixed(decimals) : `${value.toFixed(decimals)}%`),
    series: [{ color: COLORS.posthoc, width: 2.2, points: curve, markers: curve }],
  });

  const parts = [chart.markup];
  const [yLow, yHigh] = [yTicks[0], yTicks[yTicks.length - 1]];
  // Under the tracked profiles' labels, which have a halo.
  parts.push(
    referenceLine(chart, { left, y: raw, color: COLORS.raw, dash: DASH.raw, label: `raw ${format(raw)}` }),
    referenceLine(chart, {
      left,
      y: averaged,
      color: COLORS.litEma,
      dash: DASH.litEma,
      label: `LitEma ${format(averaged)}`,
    }),
  );
  // The tracked profiles: a vertical line at their width and a square at
  // the test metric of the power EMA itself (not reconstructed).
  let labelRow = 0;
  for (const [sigmaRel, value] of tracked) {
    const x = chart.xScale(sigmaRel);
    parts.push(
      element('line', {
        x1: x,
        x2: x,
        y1: PANEL.top,
        y2: PANEL.top + PANEL.height,
        stroke: COLORS.tracked,
        'stroke-width': 1.3,
        'stroke-dasharray': DASH.tracked,
      }),
      // One label per line, each lower than the last: the lines may stand close.
      text(x + 4, PANEL.top + 13 + 14 * labelRow++, `tracked ${sigmaRel.toFixed(2)}`, {
        class: 'mark',
        style: `fill: ${COLORS.tracked}`,
      }),
    );
    if (value >= yLow && value <= yHigh) {
      parts.push(
        element('rect', {
          x: x - 5,
          y: chart.yScale(value) - 5,
          width: 10,
          height: 10,
          fill: 'none',
          stroke: COLORS.tracked,
          'stroke-width': 2,
        }),
      );
    }
  }
  // The best width (the lowest test loss; in the accuracy panel, that
  // same width), as a red dot, named above the panel's right end.
  const bestLabel = isLoss
    ? `lowest: ${format(best[1])} at sigma_rel ${best[0].toFixed(2)}`
    : `${format(best[1])} at sigma_rel ${best[0].toFixed(2)}`;
  parts.push(
    element('circle', {
      cx: chart.xScale(best[0]),
      cy: chart.yScale(best[1]),
      r: 5.5,
      fill: COLORS.best,
      stroke: 'white',
      'stroke-width': 1.5,
    }),
    element(
      'text',
      { x: left + PANEL.width, y: PANEL.top - 12, 'text-anchor': 'end', class: 'best' },
      element('tspan', { fill: COLORS.best, 'font-weight': 600 }, escapeXml(`\u25cf ${bestLabel}`)),
    ),
  );
  if (clipped) {
    parts.push(
      text(left + PANEL.width, PANEL.top + PANEL.height + 62, 'points beyond the axis are cut off', {
        'text-anchor': 'end',
        class: 'note',
      }),
    );
  }
  return parts.join('\n');
}

/**
 * The SVG document. `sweep` is sweepPosthoc()'s result (rows of { sigmaRel,
 * loss, accuracy }, raw, tracked, best), `litEma` the LitEma weights' test
 * { loss, accuracy, label }; `subtitle` is a list of lines.
 */
export function renderPosthocPlot({ sweep, litEma, title, subtitle }) {
  const body = [
    text(PANEL_LEFTS[0] - 60, 34, title, { class: 'title' }),
    ...subtitle.map((line, index) => text(PANEL_LEFTS[0] - 60, 58 + 18 * index, line, { class: 'subtitle' })),
    legend({
      left: PANEL_LEFTS[0] - 60,
      baseline: 106,
      itemWidth: 228,
      entries: [
        { color: COLORS.posthoc, label: 'EMA reconstructed post hoc' },
        { color: COLORS.tracked, dash: DASH.tracked, label: 'tracked profiles (squares)' },
        { color: COLORS.raw, dash: DASH.raw, label: 'raw (training) weights' },
        { color: COLORS.litEma, dash: DASH.litEma, label: `LitEma (${litEma.label})` },
      ],
    }),
    metricPanel({ left: PANEL_LEFTS[0], metric: 'loss', sweep, litEma }),
    metricPanel({ left: PANEL_LEFTS[1], metric: 'accuracy', sweep, litEma }),
  ].join('\n');
  return svgDocument({ width: WIDTH, height: HEIGHT, style: STYLE, body });
}

/** Writes the plot to `path`, creating its folder if needed. */
export async function writePosthocPlot(path, plot) {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, renderPosthocPlot(plot));
}
