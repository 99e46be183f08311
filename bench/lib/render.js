// bench/RESULTS.md and bench/charts/*.svg from the results JSON (bench/results.json): every suite's last report,
// rendered by that suite's report module (bench/suites/<name>/report.js) with the helpers here.
// `node bench/run.js --render-only` calls writeOutputs() without running anything.
import fs from 'node:fs';
import path from 'node:path';
import { barChartSvg, lineChartSvg } from './charts.js';
import { scratchMethod } from './scratch.js';

export const ok = (r) => r && Number.isFinite(r.median);
export const range = (r, d = 3) => (Number.isFinite(r.min) && Number.isFinite(r.max) ? `${r.min.toFixed(d)}–${r.max.toFixed(d)}` : 'not recorded');
// a contender that did not run (left out by --only, not installed) has no bar; one that failed has an empty one
export const bar = (id, label, r, carrier, extra = {}) => r == null ? null : ({
  id,
  label,
  median: r?.median,
  min: r?.min,
  max: r?.max,
  failed: !ok(r),
  ratio: ok(r) && ok(carrier) ? r.median / carrier.median : undefined,
  ...extra,
});

/** A chart's subtitle: date, mode, runs, machine. */
export function subtitle(report) {
  const m = report.machine ?? {};
  const runs = report.runs ?? report.config?.runs;
  return `${new Date(report.started).toISOString().slice(0, 10)}, ${report.quick ? 'QUICK smoke run, ' : ''}${runs === 0 ? 'one run each' : `median of ${runs}`}; ${m.nproc} CPUs, ${m.kernel}`;
}

export const fmt = (v) => (v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
// `note`: a suite's word on the figure (the containers suite's carrier short commands: how far over `node -e 0`)
const cell = (b) => (b.failed ? 'failed' : `${fmt(b.median)} s${b.id === 'carrier' || b.ratio === undefined ? '' : ` (${b.ratio.toFixed(2)}×)`}${b.note ? ` (${b.note})` : ''}`);

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

export function mdTable(head, rows) {
  const esc = (v) => String(v).replace(/\|/g, '\\|');
  return [
    `| ${head.map(esc).join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

/** The lines every suite's section starts with: command, date, mode, other load, carrier build, machine, tools. */
export function runLines(report) {
  const m = report.machine;
  const L = [];
  const took = (new Date(report.finished) - new Date(report.started)) / 1000;
  L.push(`- Command: \`${report.command}\``);
  L.push(`- Date: ${new Date(report.started).toISOString()} (the suite took ${took.toFixed(0)} s)`);
  const runs = report.runs ?? report.config?.runs;
  L.push(
    `- Mode: ${report.quick ? 'quick (smoke run, scaled-down fixtures)' : 'full'}; ` +
      (runs === 0
        ? 'one run per contender (the checking warm-up run is the only one: a smoke test, not a measurement)'
        : `median of ${runs} timed run${runs === 1 ? '' : 's'} after 1 warm-up, contenders interleaved round-robin`),
  );
  L.push(
    `- Other load: ${report.quietWait === false ? '⚠ run with --no-quiet-wait (did not wait for a quiet machine; disturbed runs were kept)' : `every run waited for a quiet machine (${Math.round(report.quietWaited ?? 0)} s of waiting in all)`}; ` +
      `${report.disturbedRuns ?? 0} run(s) had other processes using the CPUs meanwhile${report.quietWait === false ? '' : ' and were redone'}`,
  );
  if (report.cooldown?.skipped) L.push(`- ⚠ Run with --no-cooldown ${Math.round(report.cooldown.sinceDelete)} s after the previous run's deletions: file creation was probably slowed for every contender`);
  else if (report.cooldown?.waited) L.push(`- Waited ${Math.round(report.cooldown.waited)} s before timing for the previous run's deletions to age (the harness of that time; see the method)`);
  const c = report.carrier ?? {};
  L.push(`- Carrier: ${c.available === false ? `NOT loadable${c.error ? `: ${c.error}` : ''}` : `version ${c.version ?? '?'}`}${c.binary ? `; addon ${c.binary}, run from a copy of dist/ and the addon taken at the start` : ''}`);
  if (c.changed) L.push(`- Note: ${c.changed}`);
  if (m) {
    L.push(`- Machine: ${m.nproc} CPUs (${m.cpu}), ${m.memory}, ${m.kernel}; bench/work on ${m.fsType} (${m.mount}); node ${m.node}, running as ${m.user}`);
    L.push(`- Tools: ${[m.tar, m.gzip, m.zstd, ...Object.values(report.tools ?? {})].filter(Boolean).join('; ')}`);
  }
  return L;
}

/** The list of every timed run of every row; `name(row)` names a row. */
export function timedRuns(rows, name) {
  return ['', 'All timed runs (seconds):', '', ...rows.map((r) => `- \`${name(r)}\`: ${r.runs?.length ? r.runs.map((s) => s.toFixed(3)).join(', ') : 'none'}${r.disturbed ? ` (${r.disturbed} disturbed)` : ''}`)];
}

export function problems(rows, name) {
  const ps = rows.filter((r) => r.problems?.length);
  if (!ps.length) return [];
  return ['', 'Problems (rows marked ⚠ or failed):', '', ...ps.flatMap((r) => r.problems.map((p) => `- \`${name(r)}\`: ${p}`))];
}

/** A target's measured value as the targets table shows it. */
export function fmtVal(t) {
  if (t.value === undefined) return 'n/a';
  if (typeof t.value === 'boolean') return t.value ? 'yes' : 'no';
  return `${t.value.toFixed(t.unit === ' MiB' ? 0 : 2)}${t.unit}`;
}

export function verdict(t) {
  if (t.met === null) return t.value === undefined ? 'NOT MEASURED' : 'INCONCLUSIVE';
  return t.met ? (t.caveat ? 'MET ‡' : 'MET') : 'NOT MET';
}

/** Sets `met` on every target (null: not measured) and returns them. */
export function judge(targets) {
  for (const t of targets) t.met = t.value === undefined ? null : t.test(t.value);
  return targets;
}

/** The markdown table of targets. */
export const targetsTable = (targets) => mdTable(['target', 'measured', 'goal', 'result'], targets.map((t) => [`${t.name} (${t.what})`, fmtVal(t), t.target, `**${verdict(t)}**`]));

// `suites` below: [{ name, title?, barModel?(report), lineModels?(report), markdown(report), summary?(report) }] in the
// order of RESULTS.md (bench/suites/index.js).

/** A suite's results in a few lines for the console: the summary table, or the suite's own summary. */
export function suiteSummary(suite, report) {
  const model = suite.barModel?.(report);
  if (model) return `${model.title}:\n${summaryTable(model)}`;
  return suite.summary?.(report) ?? '';
}

/** Chart files of the results: [{ file, svg }]. */
export function charts(results, suites) {
  const out = [];
  for (const suite of suites) {
    const report = results.suites?.[suite.name];
    if (!report) continue;
    const model = suite.barModel?.(report);
    if (model) out.push({ file: `${suite.name}.svg`, svg: barChartSvg(model) });
    for (const m of suite.lineModels?.(report) ?? []) out.push({ file: m.file, svg: lineChartSvg(m.spec) });
  }
  return out;
}

/** The whole of RESULTS.md. `chartsRel`: the charts directory relative to the markdown file. */
export function renderResults(results, suites, { chartsRel = 'charts', jsonName = 'results.json' } = {}) {
  const L = [];
  L.push('# Carrier benchmark results', '');
  L.push(`Generated by \`bench/run.js\` from \`${jsonName}\` (every suite’s last run, with its machine, kernel, file system and tool versions); do not edit by hand. \`npm run bench\` reruns everything, \`npm run bench -- --suite NAME\` one suite, and \`node bench/run.js --render-only\` rewrites this file and the charts from the JSON without running anything.`, '');
  L.push('## Summary', '');
  L.push('Medians; in brackets, how many times longer than Carrier the peer took (below 1× the peer was faster). Details, all runs and the method of each suite below.', '');
  for (const { name, barModel, lineModels, title } of suites) {
    const report = results.suites?.[name];
    if (!report) {
      L.push(`- **${name}**: not run yet`, '');
      continue;
    }
    const model = barModel?.(report);
    if (model) {
      L.push(`### ${model.title}${report.quick ? ' (quick smoke run)' : ''}`, '', `![${model.title}](${chartsRel}/${name}.svg)`, '', summaryTable(model), '');
    } else if (lineModels) {
      L.push(`### ${title}${report.quick ? ' (quick smoke run)' : ''}`, '');
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
  for (const suite of suites) {
    const report = results.suites?.[suite.name];
    if (report) L.push(suite.markdown(report).trimEnd(), '');
  }
  return L.join('\n');
}

/** Writes the markdown and the charts; returns the paths written. */
export function writeOutputs(results, suites, { mdFile, chartsDir, jsonName }) {
  fs.mkdirSync(chartsDir, { recursive: true });
  const written = [];
  for (const c of charts(results, suites)) {
    const f = path.join(chartsDir, c.file);
    fs.writeFileSync(f, c.svg);
    written.push(f);
  }
  const rel = path.relative(path.dirname(mdFile), chartsDir) || '.';
  fs.writeFileSync(mdFile, renderResults(results, suites, { chartsRel: rel, jsonName }));
  written.unshift(mdFile);
  return written;
}
