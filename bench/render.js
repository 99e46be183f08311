// bench/RESULTS.md and bench/charts/*.svg from the results JSON (bench/results.json): every suite's last report.
// `node bench/run.js --render-only` calls renderAll() without running anything.
import fs from 'node:fs';
import path from 'node:path';
import { MiB } from './util.js';
import { renderMarkdown as renderApply, evaluate, mdTable, runLines } from './report.js';
import { renderPullMarkdown, evaluatePull } from './pullreport.js';
import { barChartSvg, lineChartSvg } from './charts.js';
import { scratchMethod } from './scratch.js';

export const SUITES = ['apply', 'pull', 'checkout', 'containers', 'scaling'];
const ok = (r) => r && Number.isFinite(r.median);
const range = (r, d = 3) => (Number.isFinite(r.min) && Number.isFinite(r.max) ? `${r.min.toFixed(d)}–${r.max.toFixed(d)}` : 'not recorded');
// a contender that did not run (left out by --only, not installed) has no bar; one that failed has an empty one
const bar = (id, label, r, carrier, extra = {}) => r == null ? null : ({
  id,
  label,
  median: r?.median,
  min: r?.min,
  max: r?.max,
  failed: !ok(r),
  ratio: ok(r) && ok(carrier) ? r.median / carrier.median : undefined,
  ...extra,
});

/** Bar-chart model of a suite: panels (scenarios) of bars (carrier and its peers), or null. */
export function barModel(name, report) {
  if (name === 'apply') {
    const row = (id) => report.rows.find((r) => r.id === id);
    const floor = (c) => {
      const d = row(`${c}/decompress`);
      const x = row('none/gnu-tar');
      if (!d && !x) return null;
      return { median: ok(d) && ok(x) ? Math.max(d.median, x.median) : NaN };
    };
    const mb = (report.fixture.meta.tar.size / MiB).toFixed(0);
    const panels = ['gzip', 'zstd', 'none'].map((c) => {
      const carrier = row(`${c}/carrier`);
      const bars = [
        bar('carrier', 'carrier applyLayer', carrier, carrier),
        bar('gnu-tar', 'GNU tar -x', row(`${c}/gnu-tar`), carrier),
        bar('pure-node', 'pure Node (tar-stream)', row(`${c}/pure-node`), carrier),
      ];
      if (c !== 'none') bars.push(bar('floor', 'floor: max(decompress, tar -xf plain)', floor(c), carrier));
      return { title: `${c === 'none' ? 'plain tar' : c}: ${mb} MiB layer`, bars: bars.filter(Boolean) };
    });
    return { title: 'Layer apply from a local blob', subtitle: subtitle(report), unit: 's', panels };
  }
  if (name === 'pull') {
    const row = (v, c) => report.rows.find((r) => r.variant === v && r.contender === c);
    const panels = report.images.map((img) => {
      const carrier = row(img.id, 'carrier');
      const bars = [
        bar('carrier', 'carrier pull', carrier, carrier),
        bar('carrier-nosync', 'carrier pull --no-sync', row(img.id, 'carrier-nosync'), carrier),
        bar('podman', 'podman pull', row(img.id, 'podman'), carrier),
        bar('skopeo-umoci', 'skopeo copy + umoci unpack', row(img.id, 'skopeo-umoci'), carrier),
        bar('pure-node', 'pure Node (undici + zlib/fzstd + tar-stream)', row(img.id, 'pure-node'), carrier),
      ];
      const d = row(img.id, 'floor-decompress');
      const t = row(img.id, 'floor-tar');
      if (d || t) bars.push(bar('floor', 'floor: max(decompress, tar -xf plain)', { median: ok(d) && ok(t) ? Math.max(d.median, t.median) : NaN }, carrier));
      return { title: `${img.id}: ${img.layers.length} layer${img.layers.length > 1 ? 's' : ''}, ${(img.tarSize / MiB).toFixed(0)} MiB, ${img.entries} entries`, bars: bars.filter(Boolean) };
    });
    return { title: 'Pull from a local registry', subtitle: subtitle(report), unit: 's', panels };
  }
  if (name === 'checkout') {
    const carrier = report.rows.find((r) => r.contender === 'carrier');
    const bars = report.rows.map((r) => bar(r.contender, r.label.replace(/`/g, ''), r, carrier));
    const f = report.fixture;
    return { title: 'Checkout: a flattened copy of an image (XFS)', subtitle: subtitle(report), unit: 's', panels: [{ title: `${f.files} files, ${(f.bytes / MiB).toFixed(0)} MiB`, bars }] };
  }
  if (name === 'containers') {
    const scen = [...new Set(report.rows.map((r) => r.scenario))];
    const panels = scen.map((s) => {
      const rows = report.rows.filter((r) => r.scenario === s);
      const carrier = rows.find((r) => r.contender === 'carrier');
      return { title: rows[0].title, bars: rows.map((r) => bar(r.contender, r.contender === 'carrier' ? 'carrier' : 'podman', r, carrier)) };
    });
    return { title: 'Containers: create + mount, run --rm IMG true', subtitle: subtitle(report), unit: 's', panels };
  }
  return null;
}

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

function subtitle(report) {
  const m = report.machine ?? {};
  const runs = report.runs ?? report.config?.runs;
  return `${new Date(report.started).toISOString().slice(0, 10)}, ${report.quick ? 'QUICK smoke run, ' : ''}${runs === 0 ? 'one run each' : `median of ${runs}`}; ${m.nproc} CPUs, ${m.kernel}`;
}

const fmt = (v) => (v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
const cell = (b) => (b.failed ? 'failed' : `${fmt(b.median)} s${b.id === 'carrier' || b.ratio === undefined ? '' : ` (${b.ratio.toFixed(2)}×)`}`);

/** A markdown table of a bar model: one row per panel, one column per contender. */
function summaryTable(model) {
  const ids = [];
  const labels = new Map();
  for (const p of model.panels) for (const b of p.bars) if (!labels.has(b.id)) (ids.push(b.id), labels.set(b.id, b.label));
  const rows = model.panels.map((p) => [p.title, ...ids.map((id) => {
    const b = p.bars.find((x) => x.id === id);
    return b ? cell(b) : '';
  })]);
  return mdTable(['scenario', ...ids.map((id) => labels.get(id))], rows);
}

function checkoutMarkdown(report) {
  const L = ['## Checkout: `carrier checkout` vs `cp -a` / `cp -a --reflink=always`', '', ...runLines(report)];
  if (report.imported) L.push(`- ⚠ ${report.imported}`);
  L.push('', '### Method', '', report.method, '');
  const carrier = report.rows.find((r) => r.contender === 'carrier');
  L.push(`${report.fixture.files} files, ${(report.fixture.bytes / MiB).toFixed(1)} MiB of whole files from /usr in one layer.`, '');
  L.push(mdTable(['contender', 'median s', 'min–max s', 'time ÷ carrier', 'space per copy MiB'], report.rows.map((r) => [
    r.label + (r.problems?.length ? ' ⚠' : ''),
    ok(r) ? r.median.toFixed(3) : 'failed',
    ok(r) ? range(r) : '',
    ok(r) && ok(carrier) ? `${(r.median / carrier.median).toFixed(2)}×` : '',
    r.spaceMiB !== undefined ? r.spaceMiB.toFixed(1) : '',
  ])));
  L.push(...timedRuns(report.rows, (r) => r.contender), ...problems(report.rows, (r) => r.contender));
  return L.join('\n');
}

function containersMarkdown(report) {
  const L = ['## Containers: create + mount, and `run --rm IMG true`, against podman', '', ...runLines(report)];
  if (report.imported) L.push(`- ⚠ ${report.imported}`);
  L.push('', '### Method', '', report.method, '');
  const scen = [...new Set(report.rows.map((r) => r.scenario))];
  const rows = [];
  for (const s of scen) {
    const rs = report.rows.filter((r) => r.scenario === s);
    const carrier = rs.find((r) => r.contender === 'carrier');
    for (const r of rs) {
      rows.push([
        r.title, `\`${r.command}\``,
        ok(r) ? r.median.toFixed(3) : `failed: ${r.problems?.[0] ?? '?'}`,
        ok(r) ? range(r) : '',
        ok(r) && ok(carrier) ? `${(r.median / carrier.median).toFixed(2)}×` : '',
      ]);
    }
  }
  L.push(mdTable(['scenario', 'command', 'median s', 'min–max s', 'time ÷ carrier'], rows));
  const pr = report.podmanRun;
  if (pr?.failedAttempts?.length) {
    L.push('', pr.used ? `podman run worked with ${pr.used}; before that it failed with:` : 'podman run does not work on this machine; every way tried failed:', '');
    for (const a of pr.failedAttempts) L.push(`- ${a.note} (\`${a.flags}\`): ${a.error}`);
  }
  L.push(...timedRuns(report.rows, (r) => `${r.scenario} ${r.contender}`), ...problems(report.rows, (r) => `${r.scenario} ${r.contender}`));
  return L.join('\n');
}

function scalingMarkdown(report) {
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

function timedRuns(rows, name) {
  return ['', 'All timed runs (seconds):', '', ...rows.map((r) => `- \`${name(r)}\`: ${r.runs?.length ? r.runs.map((s) => s.toFixed(3)).join(', ') : 'none'}${r.disturbed ? ` (${r.disturbed} disturbed)` : ''}`)];
}

function problems(rows, name) {
  const ps = rows.filter((r) => r.problems?.length);
  if (!ps.length) return [];
  return ['', 'Problems (rows marked ⚠ or failed):', '', ...ps.flatMap((r) => r.problems.map((p) => `- \`${name(r)}\`: ${p}`))];
}

const SECTION = {
  apply: (r) => renderApply({ ...r, evaluation: evaluate(r) }),
  pull: (r) => renderPullMarkdown({ ...r, evaluation: evaluatePull(r) }),
  checkout: checkoutMarkdown,
  containers: containersMarkdown,
  scaling: scalingMarkdown,
};

/** A suite's results in a few lines for the console: the summary table, or the scaling tables. */
export function suiteSummary(name, report) {
  const model = barModel(name, report);
  if (model) return `${model.title}:\n${summaryTable(model)}`;
  if (name === 'scaling') {
    const md = scalingMarkdown(report);
    return md.split('\n').filter((l) => l.startsWith('|') || (l.startsWith('### ') && l !== '### Method')).join('\n');
  }
  return '';
}

/** Chart files of the results: [{ file, svg }]. */
export function charts(results) {
  const out = [];
  for (const name of SUITES) {
    const report = results.suites?.[name];
    if (!report) continue;
    const model = barModel(name, report);
    if (model) out.push({ file: `${name}.svg`, svg: barChartSvg(model) });
    if (name === 'scaling') for (const m of lineModels(report)) out.push({ file: m.file, svg: lineChartSvg(m.spec) });
  }
  return out;
}

/** The whole of RESULTS.md. `chartsRel`: the charts directory relative to the markdown file. */
export function renderResults(results, { chartsRel = 'charts', jsonName = 'results.json' } = {}) {
  const L = [];
  L.push('# Carrier benchmark results', '');
  L.push(`Generated by \`bench/run.js\` from \`${jsonName}\` (every suite’s last run, with its machine, kernel, file system and tool versions); do not edit by hand. \`npm run bench\` reruns everything, \`npm run bench -- --suite NAME\` one suite, and \`node bench/run.js --render-only\` rewrites this file and the charts from the JSON without running anything.`, '');
  L.push('## Summary', '');
  L.push('Medians; in brackets, how many times longer than Carrier the peer took (below 1× the peer was faster). Details, all runs and the method of each suite below.', '');
  for (const name of SUITES) {
    const report = results.suites?.[name];
    if (!report) {
      L.push(`- **${name}**: not run yet`, '');
      continue;
    }
    const model = barModel(name, report);
    if (model) {
      L.push(`### ${model.title}${report.quick ? ' (quick smoke run)' : ''}`, '', `![${model.title}](${chartsRel}/${name}.svg)`, '', summaryTable(model), '');
    } else if (name === 'scaling') {
      L.push(`### Scaling${report.quick ? ' (quick smoke run)' : ''}`, '');
      for (const m of lineModels(report)) L.push(`![${m.spec.title}](${chartsRel}/${m.file})`);
      L.push('');
    }
  }
  L.push('## Method common to the suites', '');
  L.push(
    'Carrier and its peers run in the same session, interleaved round-robin (A B C A B C …: one warm-up round that also checks every output, then the timed rounds), each run into a fresh store. Before every run the harness waits for a quiet machine (< 10% busy over 0.5 s) and runs `sync`; a run during which other user-space processes (or the hypervisor, as steal) used more than 0.05 CPU-s + 10% of its wall time is thrown away and redone (kernel threads are not counted: they do the run’s own I/O). Every contender runs from a copy of dist/ and the addon taken at the start. ' +
      scratchMethod + ' (Runs recorded before this harness kept their outputs on the host file system and waited 370 s after each mass delete instead; their sections say so.)',
  );
  const chk = results.checks?.scratch;
  if (chk) {
    L.push('');
    L.push(`Does the loop file system change the picture? \`node bench/fscompare.js\` (${chk.date.slice(0, 10)}, ${chk.rounds} interleaved rounds, the apply suite’s layer; carrier through \`node -e\`, so with Node start-up) extracted the same layer into fresh directories on the host file system and into a fresh loop ext4 each (medians; one scratch file system takes ${chk.scratchMs.made} ms to make and mount and ${chk.scratchMs.destroyed} ms to remove):`, '');
    L.push(mdTable(['extraction', 'host ext4 (no journal) s', 'fresh loop ext4 s', 'loop ÷ host'], chk.rows.map((r) => [r.name, r.host.toFixed(3), r.loop.toFixed(3), `${(r.loop / r.host).toFixed(2)}×`])));
  }
  L.push('');
  for (const name of SUITES) {
    const report = results.suites?.[name];
    if (report) L.push(SECTION[name](report).trimEnd(), '');
  }
  return L.join('\n');
}

/** Writes the markdown and the charts; returns the paths written. */
export function writeOutputs(results, { mdFile, chartsDir, jsonName }) {
  fs.mkdirSync(chartsDir, { recursive: true });
  const written = [];
  for (const c of charts(results)) {
    const f = path.join(chartsDir, c.file);
    fs.writeFileSync(f, c.svg);
    written.push(f);
  }
  const rel = path.relative(path.dirname(mdFile), chartsDir) || '.';
  fs.writeFileSync(mdFile, renderResults(results, { chartsRel: rel, jsonName }));
  written.unshift(mdFile);
  return written;
}
