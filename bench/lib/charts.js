// Hand-written SVG charts for the benchmark results (no dependencies): bar panels (one panel per scenario, its own
// time scale, the peers side by side, min–max whiskers, the median and its ratio to Carrier written on each bar) and
// line charts (one line per contender, log-scaled x for the doubling series, min–max whiskers).

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (v) => (Math.round(v * 10) / 10).toString();

/** Colour of a contender, by what it is (stable across charts). */
export function colorOf(id) {
  const table = [
    [/nosync/, '#fab005'],
    [/^carrier|carrier$/, '#e8590c'],
    [/podman/, '#1c7ed6'],
    [/skopeo|umoci/, '#37b24d'],
    [/pure-node|node-tar/, '#7048e8'],
    [/gnu-tar|^tar/, '#495057'],
    [/floor|decompress/, '#adb5bd'],
    [/reflink/, '#0c8599'],
    [/^cp/, '#1971c2'],
  ];
  for (const [re, c] of table) if (re.test(id)) return c;
  return '#868e96';
}

/** Round axis maximum and tick step for values up to `max`. */
function niceScale(max, ticks = 4) {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  return { top: Math.ceil(max / step - 1e-9) * step, step };
}

const fmtTick = (v, step) => {
  for (const d of [0, 1, 2, 3]) if (Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) < 1e-9) return v.toFixed(d);
  return v.toFixed(3);
};

function fmtValue(v, unit) {
  if (unit === 's') return v >= 10 ? `${v.toFixed(1)} s` : v >= 1 ? `${v.toFixed(2)} s` : `${v.toFixed(3)} s`;
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${unit}`;
}

/**
 * spec = { title, subtitle?, unit: 's', panels: [{ title, bars: [{ id, label, median, min?, max?, failed?,
 * ratio? }] }] }. Each panel has its own scale; a failed bar is drawn as a gap with the word "failed".
 */
export function barChartSvg(spec) {
  const cols = Math.min(2, spec.panels.length);
  const maxBars = Math.max(...spec.panels.map((p) => p.bars.length));
  const barW = 46;
  const gap = 14;
  const panelW = Math.max(300, 60 + maxBars * (barW + gap));
  const panelH = 264;
  const legendIds = [];
  const legend = new Map();
  for (const p of spec.panels) {
    for (const b of p.bars) {
      if (!legend.has(b.id)) {
        legend.set(b.id, b.label);
        legendIds.push(b.id);
      }
    }
  }
  const legendRows = Math.ceil(legendIds.length / 2);
  const top = 56 + legendRows * 18;
  const rows = Math.ceil(spec.panels.length / cols);
  const W = cols * panelW + 20;
  const H = top + rows * (panelH + 20) + 10;
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text x="12" y="22" font-size="16" font-weight="600" fill="#212529">${esc(spec.title)}</text>`);
  if (spec.subtitle) o.push(`<text x="12" y="40" font-size="11" fill="#495057">${esc(spec.subtitle)}</text>`);
  legendIds.forEach((id, i) => {
    const x = 12 + (i % 2) * (W / 2);
    const y = 52 + Math.floor(i / 2) * 18;
    o.push(`<rect x="${x}" y="${y}" width="12" height="12" fill="${colorOf(id)}"/>`);
    o.push(`<text x="${x + 18}" y="${y + 10}" fill="#212529">${esc(legend.get(id))}</text>`);
  });
  spec.panels.forEach((p, i) => {
    const px = 10 + (i % cols) * panelW;
    const py = top + Math.floor(i / cols) * (panelH + 20);
    const plotX = px + 48;
    const plotY = py + 40;
    const plotH = panelH - 80;
    const vals = p.bars.flatMap((b) => (b.failed || !Number.isFinite(b.median) ? [] : [b.median, b.max ?? b.median]));
    const { top: vmax, step } = niceScale(Math.max(...vals, 0) * 1.12);
    const y = (v) => plotY + plotH - (v / vmax) * plotH;
    // "name: detail" titles take two lines
    const [head, ...rest] = String(p.title).split(': ');
    o.push(`<text x="${px + 8}" y="${py + 12}" font-size="13" font-weight="600" fill="#212529">${esc(head)}</text>`);
    if (rest.length) o.push(`<text x="${px + 8}" y="${py + 27}" font-size="11" fill="#495057">${esc(rest.join(': '))}</text>`);
    for (let v = 0; v <= vmax + 1e-9; v += step) {
      o.push(`<line x1="${plotX}" x2="${px + panelW - 10}" y1="${num(y(v))}" y2="${num(y(v))}" stroke="#e9ecef"/>`);
      o.push(`<text x="${plotX - 6}" y="${num(y(v) + 4)}" text-anchor="end" font-size="10" fill="#868e96">${fmtTick(v, step)}${v === 0 ? '' : ''}</text>`);
    }
    o.push(`<text x="${px + 10}" y="${num(plotY + plotH / 2)}" font-size="10" fill="#868e96" transform="rotate(-90 ${px + 10} ${num(plotY + plotH / 2)})" text-anchor="middle">${esc(spec.unit === 's' ? 'seconds (median)' : spec.unit)}</text>`);
    p.bars.forEach((b, j) => {
      const x = plotX + 10 + j * (barW + gap);
      const cx = x + barW / 2;
      if (b.failed || !Number.isFinite(b.median)) {
        o.push(`<rect x="${x}" y="${plotY + plotH - 2}" width="${barW}" height="2" fill="${colorOf(b.id)}"/>`);
        o.push(`<text x="${cx}" y="${num(plotY + plotH - 8)}" text-anchor="middle" font-size="10" fill="#c92a2a">failed</text>`);
      } else {
        const h = Math.max(1, plotY + plotH - y(b.median));
        o.push(`<rect x="${x}" y="${num(y(b.median))}" width="${barW}" height="${num(h)}" fill="${colorOf(b.id)}"><title>${esc(`${b.label}: ${fmtValue(b.median, spec.unit)}${Number.isFinite(b.min) ? ` (min ${fmtValue(b.min, spec.unit)}, max ${fmtValue(b.max, spec.unit)})` : ''}`)}</title></rect>`);
        if (Number.isFinite(b.min) && Number.isFinite(b.max) && b.max > b.min) {
          o.push(`<line x1="${cx}" x2="${cx}" y1="${num(y(b.min))}" y2="${num(y(b.max))}" stroke="#212529" stroke-width="1"/>`);
          for (const v of [b.min, b.max]) o.push(`<line x1="${cx - 5}" x2="${cx + 5}" y1="${num(y(v))}" y2="${num(y(v))}" stroke="#212529" stroke-width="1"/>`);
        }
        const labelY = Math.min(y(b.median), Number.isFinite(b.max) ? y(b.max) : Infinity) - 4;
        o.push(`<text x="${cx}" y="${num(labelY)}" text-anchor="middle" font-size="10" fill="#212529">${esc(fmtValue(b.median, spec.unit))}</text>`);
      }
      const under = b.failed ? '' : b.ratio !== undefined && Number.isFinite(b.ratio) ? `${b.ratio.toFixed(2)}×` : '';
      if (under) o.push(`<text x="${cx}" y="${plotY + plotH + 14}" text-anchor="middle" font-size="10" fill="#495057">${esc(under)}</text>`);
    });
    o.push(`<line x1="${plotX}" x2="${px + panelW - 10}" y1="${plotY + plotH}" y2="${plotY + plotH}" stroke="#adb5bd"/>`);
    o.push(`<text x="${plotX}" y="${plotY + plotH + 30}" font-size="10" fill="#868e96">bar: median, whisker: min–max; below: time ÷ carrier’s</text>`);
  });
  o.push('</svg>');
  return o.join('\n') + '\n';
}

/**
 * spec = { title, subtitle?, xLabel, yLabel, unit, xs: [numbers], series: [{ id, label, points: [{ x, y, min?, max?,
 * failed? }] }] }: x on a log scale with a tick at every x, y linear from 0.
 */
export function lineChartSvg(spec) {
  const W = 640;
  const legendRows = Math.ceil(spec.series.length / 2);
  const top = 56 + legendRows * 18;
  const H = top + 300;
  const plotX = 64;
  const plotW = W - plotX - 24;
  const plotY = top + 10;
  const plotH = H - plotY - 48;
  const xs = [...spec.xs].sort((a, b) => a - b);
  const lx = (v) => Math.log(v);
  const x = (v) => plotX + (xs.length === 1 ? plotW / 2 : ((lx(v) - lx(xs[0])) / (lx(xs[xs.length - 1]) - lx(xs[0]))) * plotW);
  const vals = spec.series.flatMap((s) => s.points.flatMap((p) => (Number.isFinite(p.y) ? [p.y, p.max ?? p.y] : [])));
  const { top: vmax, step } = niceScale(Math.max(...vals, 0) * 1.08, 5);
  const y = (v) => plotY + plotH - (v / vmax) * plotH;
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text x="12" y="22" font-size="16" font-weight="600" fill="#212529">${esc(spec.title)}</text>`);
  if (spec.subtitle) o.push(`<text x="12" y="40" font-size="11" fill="#495057">${esc(spec.subtitle)}</text>`);
  spec.series.forEach((s, i) => {
    const lxp = 12 + (i % 2) * (W / 2);
    const lyp = 52 + Math.floor(i / 2) * 18;
    o.push(`<rect x="${lxp}" y="${lyp + 4}" width="14" height="3" fill="${colorOf(s.id)}"/>`);
    o.push(`<text x="${lxp + 20}" y="${lyp + 10}" fill="#212529">${esc(s.label)}</text>`);
  });
  for (let v = 0; v <= vmax + 1e-9; v += step) {
    o.push(`<line x1="${plotX}" x2="${plotX + plotW}" y1="${num(y(v))}" y2="${num(y(v))}" stroke="#e9ecef"/>`);
    o.push(`<text x="${plotX - 6}" y="${num(y(v) + 4)}" text-anchor="end" font-size="10" fill="#868e96">${fmtTick(v, step)}</text>`);
  }
  for (const v of xs) {
    o.push(`<line x1="${num(x(v))}" x2="${num(x(v))}" y1="${plotY}" y2="${plotY + plotH}" stroke="#f1f3f5"/>`);
    o.push(`<text x="${num(x(v))}" y="${plotY + plotH + 16}" text-anchor="middle" font-size="11" fill="#495057">${esc(v)}</text>`);
  }
  o.push(`<line x1="${plotX}" x2="${plotX + plotW}" y1="${plotY + plotH}" y2="${plotY + plotH}" stroke="#adb5bd"/>`);
  o.push(`<text x="${plotX + plotW / 2}" y="${H - 8}" text-anchor="middle" font-size="11" fill="#495057">${esc(spec.xLabel)}</text>`);
  o.push(`<text x="16" y="${num(plotY + plotH / 2)}" font-size="11" fill="#495057" transform="rotate(-90 16 ${num(plotY + plotH / 2)})" text-anchor="middle">${esc(spec.yLabel)}</text>`);
  for (const s of spec.series) {
    const c = colorOf(s.id);
    const pts = s.points.filter((p) => Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    if (pts.length > 1) o.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${num(x(p.x))},${num(y(p.y))}`).join(' ')}"/>`);
    for (const p of pts) {
      if (Number.isFinite(p.min) && Number.isFinite(p.max) && p.max > p.min) {
        o.push(`<line x1="${num(x(p.x))}" x2="${num(x(p.x))}" y1="${num(y(p.min))}" y2="${num(y(p.max))}" stroke="${c}" stroke-width="1"/>`);
      }
      o.push(`<circle cx="${num(x(p.x))}" cy="${num(y(p.y))}" r="3.5" fill="${c}"><title>${esc(`${s.label} at ${p.x}: ${fmtValue(p.y, spec.unit)}`)}</title></circle>`);
    }
    for (const p of s.points.filter((q) => q.failed)) {
      o.push(`<text x="${num(x(p.x))}" y="${plotY + plotH - 6}" text-anchor="middle" font-size="10" fill="#c92a2a">✕ ${esc(s.label.split(' ')[0])} failed</text>`);
    }
  }
  o.push('</svg>');
  return o.join('\n') + '\n';
}
