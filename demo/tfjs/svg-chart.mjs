// A tiny SVG line-chart kit, written by hand so the demo needs no chart
// dependency in Node: linear scales with round-number ticks, and a panel
// with a frame, grid, axis labels and any number of line series.
//
// Everything returns SVG markup as strings; coordinates are rounded to 0.1
// px, which keeps the files small and diffable.

/** Escapes text for use in SVG content and attribute values. */
export function escapeXml(text) {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function round(value) {
  return Math.round(value * 10) / 10;
}

/** An SVG element with attributes (undefined ones left out) and content. */
export function element(name, attributes, content = '') {
  const text = Object.entries(attributes)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ` ${key}="${escapeXml(typeof value === 'number' ? round(value) : value)}"`)
    .join('');
  return content === '' ? `<${name}${text}/>` : `<${name}${text}>${content}</${name}>`;
}

/** A text element; `content` is escaped. */
export function text(x, y, content, attributes = {}) {
  return element('text', { x, y, ...attributes }, escapeXml(content));
}

/**
 * About `count` evenly spaced round numbers (steps of 1, 2 or 5 times a power
 * of ten) covering [min, max], with the step that produced them.
 */
export function niceTicks(min, max, count = 5) {
  if (!(max > min)) {
    // A flat series still needs an axis: widen it around the value.
    const pad = Math.abs(min) * 0.1 || 1;
    return niceTicks(min - pad, max + pad, count);
  }
  const rough = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough);
  // The epsilon keeps e.g. 0.3 / 0.1 = 2.9999999999999996 from adding a tick.
  const first = Math.floor(min / step + 1e-9);
  const last = Math.ceil(max / step - 1e-9);
  const ticks = [];
  for (let index = first; index <= last; index++) {
    ticks.push(Number((index * step).toPrecision(12)));
  }
  return { ticks, step };
}

/** Maps [domainMin, domainMax] linearly onto [rangeStart, rangeEnd]. */
export function linearScale([domainMin, domainMax], [rangeStart, rangeEnd]) {
  const factor = (rangeEnd - rangeStart) / (domainMax - domainMin);
  return (value) => rangeStart + (value - domainMin) * factor;
}

/** A polyline through `points` ([x, y] in data units). */
function seriesLine(points, xScale, yScale, { color, width = 2, dash }) {
  const coordinates = points.map(([x, y]) => `${round(xScale(x))},${round(yScale(y))}`).join(' ');
  return element('polyline', {
    points: coordinates,
    fill: 'none',
    stroke: color,
    'stroke-width': width,
    'stroke-linejoin': 'round',
    'stroke-linecap': 'round',
    'stroke-dasharray': dash,
  });
}

function seriesMarkers(points, xScale, yScale, { color }) {
  return points
    .map(([x, y]) =>
      element('circle', { cx: xScale(x), cy: yScale(y), r: 3.5, fill: 'white', stroke: color, 'stroke-width': 2 }),
    )
    .join('');
}

let clipCounter = 0;

/**
 * One chart panel at (left, top), `width` x `height` pixels for the plot
 * area (labels go outside it). `series` is a list of
 * { color, width?, dash?, points: [[x, y]], markers?: [[x, y]] }, drawn in
 * order (the last on top); `xTicks`/`yTicks` come from niceTicks(), and their
 * ends are the panel's domain; `formatX`/`formatY` turn tick values into
 * labels. Lines are clipped to the plot area's height.
 */
export function panel({ left, top, width, height, title, xLabel, yLabel, xTicks, yTicks, formatX, formatY, series }) {
  const xDomain = [xTicks[0], xTicks[xTicks.length - 1]];
  const yDomain = [yTicks[0], yTicks[yTicks.length - 1]];
  const xScale = linearScale(xDomain, [left, left + width]);
  const yScale = linearScale(yDomain, [top + height, top]);
  const clipId = `plot-area-${++clipCounter}`;
  const parts = [];

  parts.push(
    // Clipped at the top and bottom only (with room for the markers at the
    // left and right ends, which would otherwise be cut in half).
    element('clipPath', { id: clipId }, element('rect', { x: left - 6, y: top, width: width + 12, height })),
    element('rect', { x: left, y: top, width, height, fill: '#fafafa', stroke: 'none' }),
  );
  // Grid lines and tick labels.
  for (const tick of yTicks) {
    const y = yScale(tick);
    parts.push(
      element('line', { x1: left, x2: left + width, y1: y, y2: y, stroke: '#e3e3e3', 'stroke-width': 1 }),
      text(left - 8, y + 4, formatY(tick), { 'text-anchor': 'end', class: 'tick' }),
    );
  }
  for (const tick of xTicks) {
    const x = xScale(tick);
    parts.push(
      element('line', { x1: x, x2: x, y1: top, y2: top + height, stroke: '#e3e3e3', 'stroke-width': 1 }),
      element('line', { x1: x, x2: x, y1: top + height, y2: top + height + 5, stroke: '#555', 'stroke-width': 1 }),
      text(x, top + height + 19, formatX(tick), { 'text-anchor': 'middle', class: 'tick' }),
    );
  }
  // Axes: the left and bottom edges of the plot area.
  parts.push(
    element('polyline', {
      points: `${left},${top} ${left},${top + height} ${left + width},${top + height}`,
      fill: 'none',
      stroke: '#555',
      'stroke-width': 1,
    }),
  );
  const lines = series
    .map(
      (entry) =>
        seriesLine(entry.points, xScale, yScale, entry) +
        (entry.markers ? seriesMarkers(entry.markers, xScale, yScale, entry) : ''),
    )
    .join('');
  parts.push(element('g', { 'clip-path': `url(#${clipId})` }, lines));
  // Titles.
  parts.push(
    text(left, top - 12, title, { class: 'panel-title' }),
    text(left + width / 2, top + height + 42, xLabel, { 'text-anchor': 'middle', class: 'axis-label' }),
    text(0, 0, yLabel, {
      transform: `translate(${round(left - 52)},${round(top + height / 2)}) rotate(-90)`,
      'text-anchor': 'middle',
      class: 'axis-label',
    }),
  );
  return { markup: parts.join('\n'), xScale, yScale };
}

/**
 * A one-row legend: a line swatch and a label per { color, dash?, label },
 * starting at (left, baseline), entries `itemWidth` pixels apart (SVG cannot
 * measure text, so the caller picks a width that fits its labels).
 */
export function legend({ left, baseline, entries, itemWidth }) {
  return entries
    .map(({ color, dash, label }, index) => {
      const x = left + index * itemWidth;
      return (
        element('line', {
          x1: x,
          x2: x + 26,
          y1: baseline - 4,
          y2: baseline - 4,
          stroke: color,
          'stroke-width': 2.5,
          'stroke-dasharray': dash,
        }) + text(x + 34, baseline, label, { class: 'legend' })
      );
    })
    .join('\n');
}

/** A complete SVG document of `width` x `height` with a white background. */
export function svgDocument({ width, height, style, body }) {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}">\n` +
    `<style>${style}</style>\n` +
    `${element('rect', { x: 0, y: 0, width, height, fill: 'white' })}\n` +
    `${body}\n</svg>\n`
  );
}
