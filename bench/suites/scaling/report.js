// The scaling suite's report: its line charts and its section of bench/RESULTS.md.
import { MiB } from '../../lib/util.js';
import { ok, fmt, subtitle, mdTable, runLines, timedRuns, problems } from '../../lib/render.js';

export const title = 'Scaling';

/** Line-chart models of the scaling suite: time and peak RSS for each series. */
export function lineModels(report) {
  const out = [];
  const ids = [...new Set(report.rows.map((r) => r.contender))];
  const label = (id) => report.contenders?.[id]?.label ?? id;
  for (const [series, xLabel] of [['size', 'image size (MiB of tar, one gzip layer)'], ['layers', `layers (same ${report.config.layersMiB} MiB of files split into N gzip layers)`]]) {
    const rows = report.rows.filter((r) => r.series === series);
    if (!rows.length) continue;
    const xs = [...new Set(rows.map((r) => r.x))];
    const pts = (f) => ids.map((id) => ({
      id,
      label: label(id),
      points: rows.filter((r) => r.contender === id).map((r) => ({ x: r.x, failed: !ok(r), ...f(r) })),
    }));
    const grows = series === 'size' ? 'the image size doubles' : 'the layer count grows';
    for (const [what, title, yLabel, unit, f] of [
      ['time', 'Pull time', 'seconds (median; whiskers min–max)', 's', (r) => ({ y: r.median, min: r.min, max: r.max })],
      ['rss', 'Peak RSS', 'MiB (largest single process, max over runs)', 'MiB', (r) => ({ y: r.peakRssKiB ? r.peakRssKiB / 1024 : NaN })],
    ]) {
      out.push({ file: `scaling-${series}-${what}.svg`, spec: { title: `${title} as ${grows}`, subtitle: subtitle(report), xLabel, yLabel, unit, xs, series: pts(f) } });
    }
  }
  return out;
}

export function markdown(report) {
  const L = ['## Scaling: pull time and peak RSS as the image grows', '', ...runLines(report)];
  L.push('', '### Method', '');
  L.push(
    `Images from real files of this machine, gzip -6, pushed to the local CNCF registry: one layer whose tar doubles (${report.config.sizesMiB.join(', ')} MiB), and the ${report.config.layersMiB} MiB layer’s files split into ${report.config.layers.join(', ')} layers. ` +
      report.method +
      ' Peak RSS is the largest resident set of any single process of the command (GNU time %M), the largest over the timed runs. Contenders: ' +
      Object.entries(report.contenders ?? {}).map(([id, c]) => `**${id}** \`${c.command}\``).join('; ') + '.',
  );
  const ids = [...new Set(report.rows.map((r) => r.contender))];
  for (const [series, title] of [['size', 'Image size'], ['layers', 'Layer count']]) {
    const rows = report.rows.filter((r) => r.series === series);
    if (!rows.length) continue;
    L.push('', `### ${title}`, '');
    const xs = [...new Set(rows.map((r) => r.x))];
    const img = (x) => report.images.find((i) => i.series === series && i.x === x);
    L.push(mdTable(
      [series === 'size' ? 'tar MiB' : 'layers', 'entries', ...ids.map((id) => `${id} s (× carrier)`), ...ids.map((id) => `${id} peak RSS MiB`)],
      xs.map((x) => {
        const get = (id) => rows.find((r) => r.x === x && r.contender === id);
        const c = get('carrier');
        const i = img(x);
        return [
          series === 'size' ? (i ? (i.tarSize / MiB).toFixed(0) : x) : x,
          i?.entries ?? '',
          ...ids.map((id) => {
            const r = get(id);
            return ok(r) ? `${fmt(r.median)} (${id === 'carrier' ? '1.00' : ok(c) ? (r.median / c.median).toFixed(2) : '?'}×)${r.mode === 'recompressed' ? ' ‡' : ''}` : 'failed';
          }),
          ...ids.map((id) => (get(id)?.peakRssKiB ? (get(id).peakRssKiB / 1024).toFixed(0) : '')),
        ];
      }),
    ));
  }
  L.push(...timedRuns(report.rows, (r) => `${r.image} ${r.contender}`), ...problems(report.rows, (r) => `${r.image} ${r.contender}`));
  return L.join('\n');
}

/** The console summary: the tables of the section. */
export function summary(report) {
  return markdown(report).split('\n').filter((l) => l.startsWith('|') || (l.startsWith('### ') && l !== '### Method')).join('\n');
}
