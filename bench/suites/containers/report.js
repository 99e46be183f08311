// The containers suite's report: its chart and its section of bench/RESULTS.md.
import { ok, range, bar, subtitle, mdTable, runLines, timedRuns, problems } from '../../lib/render.js';

/** The chart: one panel per scenario, carrier against podman. */
export function barModel(report) {
  const scen = [...new Set(report.rows.map((r) => r.scenario))];
  const panels = scen.map((s) => {
    const rows = report.rows.filter((r) => r.scenario === s);
    const carrier = rows.find((r) => r.contender === 'carrier');
    const note = (r) => (r.overNode !== undefined ? { note: `node -e 0 + ${(r.overNode * 1000).toFixed(0)} ms, paired` } : {});
    return { title: rows[0].title, bars: rows.map((r) => bar(r.contender, r.contender === 'node' ? 'node -e 0' : r.contender, r, carrier, note(r))) };
  });
  return { title: 'Containers: create + mount, run --rm IMG true, short commands', subtitle: subtitle(report), unit: 's', panels };
}

export function markdown(report) {
  const L = ['## Containers: create + mount, `run --rm IMG true` and the short commands, against podman', '', ...runLines(report)];
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
        r.cpuMedian !== undefined ? r.cpuMedian.toFixed(2) : '',
        r.cpuMedian !== undefined && carrier?.cpuMedian ? `${(r.cpuMedian / carrier.cpuMedian).toFixed(2)}×` : '',
        r.overNode !== undefined ? `+${(r.overNode * 1000).toFixed(1)} ms` : '',
      ]);
    }
  }
  L.push(mdTable(['scenario', 'command', 'median s', 'min–max s', 'time ÷ carrier', 'CPU s (user + sys, median)', 'CPU ÷ carrier', 'over node -e 0, paired (median)'], rows));
  const pr = report.podmanRun;
  if (pr?.failedAttempts?.length) {
    L.push('', pr.used ? `podman run worked with ${pr.used}; before that it failed with:` : 'podman run does not work on this machine; every way tried failed:', '');
    for (const a of pr.failedAttempts) L.push(`- ${a.note} (\`${a.flags}\`): ${a.error}`);
  }
  const paired = report.rows.filter((r) => r.overNodeRuns?.length);
  if (paired.length) {
    L.push('', 'Over `node -e 0`, run by run (ms; each the command less the `node -e 0` run right before it):', '');
    for (const r of paired) L.push(`- \`${r.scenario} ${r.contender}\`: ${r.overNodeRuns.map((x) => (x * 1000).toFixed(1)).join(', ')}`);
  }
  L.push(...timedRuns(report.rows, (r) => `${r.scenario} ${r.contender}`), ...problems(report.rows, (r) => `${r.scenario} ${r.contender}`));
  return L.join('\n');
}
