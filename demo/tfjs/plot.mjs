// The figure of the run: test loss and test accuracy of the raw and the EMA
// weights against training time (in epochs), two panels side by side, as a
// standalone SVG file.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import { element, escapeXml, legend, niceTicks, panel, svgDocument, text } from './svg-chart.mjs';

const WIDTH = 960;
const HEIGHT = 490;
const PANEL = { top: 120, width: 350, height: 290 };
const PANEL_LEFTS = [90, 560];

const COLORS = { raw: '#e07b39', ema: '#1f5fb4' };

const STYLE = `
  text { font-family: system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; fill: #222; }
  .title { font-size: 19px; font-weight: 600; }
  .subtitle { font-size: 13px; fill: #555; }
  .panel-title { font-size: 14px; font-weight: 600; }
  .final { font-size: 12px; }
  .tick { font-size: 11.5px; fill: #555; }
  .axis-label { font-size: 12.5px; fill: #444; }
  .legend { font-size: 13px; }
  .note { font-size: 11.5px; fill: #777; }
`;

/**
 * The domain of a panel's y axis: every value, except that a few early
 * outliers (the first evaluations of a model that has barely started, or an
 * EMA still averaging in the random initial weights, as with --no-warmup)
 * may not squash the rest of the curves into flat lines. The axis then ends
 * 1.5 spans of the late values (`lateValues`) beyond them, on the side
 * `outliersAre` ('high' for a loss, 'low' for an accuracy), and the
 * outliers leave through the panel's edge.
 */
function yDomain(values, lateValues, outliersAre) {
  let low = Math.min(...values);
  let high = Math.max(...values);
  const lateLow = Math.min(...lateValues);
  const lateHigh = Math.max(...lateValues);
  const margin = 1.5 * Math.max(lateHigh - lateLow, 1e-6);
  let clipped = false;
  if (outliersAre === 'high' && high > lateHigh + margin) {
    high = lateHigh + margin;
    clipped = true;
  }
  if (outliersAre === 'low' && low < lateLow - margin) {
    low = lateLow - margin;
    clipped = true;
  }
  return { domain: [low, high], clipped };
}

function epochTicks(epochs) {
  if (epochs <= 10) return Array.from({ length: epochs + 1 }, (_, index) => index);
  return niceTicks(0, epochs, 8).ticks;
}

/** One metric's panel: `metric` is 'loss' or 'accuracy'. */
function metricPanel({ left, metric, curve, epochs }) {
  const isLoss = metric === 'loss';
  const scaleValue = isLoss ? (value) => value : (value) => 100 * value;
  const seriesOf = (which) => {
    const toXY = (point) => [point.epoch, scaleValue(point[which][metric])];
    const markers = curve.filter((point) => point.epochEnd).map(toXY);
    return { color: COLORS[which], points: curve.map(toXY), markers };
  };
  const series = [seriesOf('raw'), seriesOf('ema')];
  const values = series.flatMap((entry) => entry.points.map(([, y]) => y));
  // "Late": after the first fifth of the run.
  const lateValues = series.flatMap((entry) => entry.points.filter(([x]) => x >= 0.2 * epochs).map(([, y]) => y));
  const { domain, clipped } = yDomain(values, lateValues.length > 0 ? lateValues : values, isLoss ? 'high' : 'low');
  const { ticks: yTicks, step } = niceTicks(domain[0], domain[1], 6);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));

  const chart = panel({
    left,
    ...PANEL,
    title: isLoss ? 'Test loss' : 'Test accuracy',
    xLabel: 'epoch',
    yLabel: isLoss ? 'cross-entropy loss' : 'accuracy (%)',
    xTicks: epochTicks(epochs),
    yTicks,
    formatX: String,
    formatY: (value) => (isLoss ? value.toFixed(decimals) : `${value.toFixed(decimals)}%`),
    series,
  });

  // The final values, right-aligned above the panel, in the series' colours.
  const last = curve[curve.length - 1];
  const format = (value) => (isLoss ? value.toFixed(4) : `${(100 * value).toFixed(2)}%`);
  const final = (which, label) =>
    element('tspan', { fill: COLORS[which], 'font-weight': 600 }, escapeXml(`${label} ${format(last[which][metric])}`));
  const finals = element(
    'text',
    { x: left + PANEL.width, y: PANEL.top - 12, 'text-anchor': 'end', class: 'final' },
    `final: ${final('raw', 'raw')}\u2003${final('ema', 'EMA')}`,
  );
  const note = clipped
    ? text(left + PANEL.width, PANEL.top + PANEL.height + 62, 'early points beyond the axis are cut off', {
        'text-anchor': 'end',
        class: 'note',
      })
    : '';
  return chart.markup + finals + note;
}

/**
 * The SVG document. `curve` is a list of { epoch (fractional), epochEnd,
 * raw: { loss, accuracy }, ema: { loss, accuracy } }; `title` and
 * `subtitle` go above the panels, `emaLabel` names the EMA in the legend.
 */
export function renderPlot({ curve, epochs, title, subtitle, emaLabel }) {
  const body = [
    text(PANEL_LEFTS[0] - 60, 34, title, { class: 'title' }),
    text(PANEL_LEFTS[0] - 60, 56, subtitle, { class: 'subtitle' }),
    legend({
      left: PANEL_LEFTS[0] - 60,
      baseline: 84,
      itemWidth: 220,
      entries: [
        { color: COLORS.raw, label: 'raw (training) weights' },
        { color: COLORS.ema, label: emaLabel },
      ],
    }),
    text(WIDTH - 30, 84, 'lines: every evaluation; circles: end of each epoch', {
      'text-anchor': 'end',
      class: 'note',
    }),
    metricPanel({ left: PANEL_LEFTS[0], metric: 'loss', curve, epochs }),
    metricPanel({ left: PANEL_LEFTS[1], metric: 'accuracy', curve, epochs }),
  ].join('\n');
  return svgDocument({ width: WIDTH, height: HEIGHT, style: STYLE, body });
}

/** Writes the plot to `path`, creating its folder if needed. */
export async function writePlot(path, plot) {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, renderPlot(plot));
}
