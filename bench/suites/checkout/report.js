// The checkout suite's report: its chart and its section of bench/RESULTS.md.
import { MiB } from '../../lib/util.js';
import { ok, range, bar, subtitle, mdTable, runLines, timedRuns, problems } from '../../lib/render.js';

/** The chart: one panel, carrier checkout against the two cp -a. */
export function barModel(report) {
  const carrier = report.rows.find((r) => r.contender === 'carrier');
  const bars = report.rows.map((r) => bar(r.contender, r.label.replace(/`/g, ''), r, carrier));
  const f = report.fixture;
  return { title: 'Checkout: a flattened copy of an image (XFS)', subtitle: subtitle(report), unit: 's', panels: [{ title: `${f.files} files, ${(f.bytes / MiB).toFixed(0)} MiB`, bars }] };
}

export function markdown(report) {
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
