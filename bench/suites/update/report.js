// The update suite's report: its targets (issue 22: ≥ 5× faster than a full pull when one small file changed, never
// more than 5% slower than a full pull when every file changed), chart and section of bench/RESULTS.md.
import { MiB } from '../../lib/util.js';
import { ok, bar, subtitle, mdTable, runLines, judge, targetsTable, fmtVal, timedRuns, problems } from '../../lib/render.js';

const rowOf = (report, link, scenario, contender) => report.rows.find((r) => r.link === link && r.scenario === scenario && r.contender === contender);
const s2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '');

function evaluateUpdate(report) {
  const targets = [];
  for (const link of report.links) {
    const c = (sc, id) => rowOf(report, link.id, sc, id);
    for (const full of ['carrier-full', 'podman']) {
      const f = c('one', full);
      const a = c('one', 'carrier');
      const h = c('one', 'carrier-hardlinks');
      if (h) {
        targets.push({
          name: `${link.title}, one small file changed: carrier --use-hard-links vs ${full === 'podman' ? 'podman’s full pull' : 'carrier --partial=never'}`,
          what: 'full-pull time / carrier --use-hard-links time (opt-in; shown, not the target)',
          value: ok(h) && ok(f) ? f.median / h.median : undefined,
          target: '≥ 5.0×',
          test: (v) => v >= 5,
          unit: '×',
        });
      }
      if (!f && !a) continue;
      targets.push({
        name: `${link.title}, one small file changed: carrier vs ${full === 'podman' ? 'podman’s full pull' : 'carrier --partial=never'}`,
        what: 'full-pull time / carrier (partial auto) time',
        value: ok(a) && ok(f) ? f.median / a.median : undefined,
        target: '≥ 5.0×',
        test: (v) => v >= 5,
        unit: '×',
      });
    }
    for (const full of ['carrier-full', 'podman']) {
      const f = c('all', full);
      const a = c('all', 'carrier');
      if (!f && !a) continue;
      targets.push({
        name: `${link.title}, every file changed: carrier vs ${full === 'podman' ? 'podman’s full pull' : 'carrier --partial=never'}`,
        what: 'carrier (partial auto) time / full-pull time',
        value: ok(a) && ok(f) ? a.median / f.median : undefined,
        target: '≤ 1.05×',
        test: (v) => v <= 1.05,
        unit: '×',
      });
    }
  }
  return judge(targets);
}

/** The chart: one panel per link and scenario. */
export function barModel(report) {
  const panels = report.links.flatMap((link) => report.scenarios.map((sc) => {
    const carrier = rowOf(report, link.id, sc.id, 'carrier');
    return {
      title: `${link.title}: ${sc.title}`,
      bars: [
        bar('carrier', 'carrier pull (partial auto)', carrier, carrier),
        bar('carrier-hardlinks', 'carrier pull --use-hard-links', rowOf(report, link.id, sc.id, 'carrier-hardlinks'), carrier),
        bar('carrier-full', 'carrier pull --partial=never', rowOf(report, link.id, sc.id, 'carrier-full'), carrier),
        bar('podman', 'podman pull', rowOf(report, link.id, sc.id, 'podman'), carrier),
        bar('podman-partial', 'podman pull, enable_partial_images', rowOf(report, link.id, sc.id, 'podman-partial'), carrier),
      ].filter(Boolean),
    };
  }));
  return { title: 'Update: v1 in the store, pull v2 (zstd:chunked)', subtitle: subtitle(report), unit: 's', panels };
}

export function markdown(report) {
  const evaluation = evaluateUpdate(report);
  const img = report.image;
  const L = ['## Update: v1 in the store, pull v2 (partial pulls of zstd:chunked)', '', ...runLines(report)];
  L.push('', '### Method', '');
  L.push(
    `v1 is the pull suite’s distro-sized layer (${img.entries} entries of /usr, ${(img.tarSize / MiB).toFixed(1)} MiB of tar); v2 is the same tar with one small file’s content changed (\`one\`) or with every regular file’s content changed (\`all\`: the first byte of each flipped; sizes and headers kept). The three are committed to a staging Carrier store and pushed by Carrier’s own \`push --compression-format zstd:chunked\` to a registry of the suite’s own (layer blobs: ${Object.entries(img.layers).map(([t, l]) => `${t} ${(l.layerSize / MiB).toFixed(1)} MiB`).join(', ')}). ` +
      'Every run: a fresh scratch file system with a fresh store (and an empty blob cache); v1 is pulled from the loopback registry, not timed; then v2 is pulled over the link measured, timed from spawn to exit, and its image id checked. Contenders round-robin. `podman-partial` is podman with `pull_options = {enable_partial_images = "true"}` in the storage.conf given to it (its own --root, --runroot, --tmpdir). Debian’s podman 4.3.1 (containers/storage 1.43) knows zstd:chunked only under the annotation names of its time (`io.containers.zstd-chunked.*`, not today’s `io.github.containers.zstd-chunked.*` that Carrier writes), so on these images it logs “Failed to retrieve partial blob: blob type not supported for partial retrieval” and pulls the layer whole: its row is a full pull. ' + report.method,
  );
  L.push('', 'Contenders:', '');
  for (const r of report.rows.filter((r, i, a) => a.findIndex((x) => x.contender === r.contender) === i)) L.push(`- **${r.contender}**: \`${r.command}\``);
  for (const link of report.links) {
    L.push('', `### ${link.title}`, '');
    const rows = report.rows.filter((r) => r.link === link.id);
    L.push(mdTable(['scenario', 'contender', 'median s', 'min–max s', 'CPU s (median)', 'time ÷ carrier', 'carrier fetched'], rows.map((r) => {
      const c = rowOf(report, link.id, r.scenario, 'carrier');
      return [
        r.scenarioTitle,
        r.label + (r.problems.length ? ' ⚠' : ''),
        ok(r) ? s2(r.median) : 'failed',
        ok(r) ? `${s2(r.min)}–${s2(r.max)}` : '',
        s2(r.cpuMedian),
        ok(r) && ok(c) ? `${(r.median / c.median).toFixed(2)}×` : '',
        r.fetched ? (r.fetched.partial ? `partially: ${r.fetched.fetching} fetched, ${r.fetched.skipping} skipped` : 'whole layer') : '',
      ];
    })));
  }
  for (const n of report.notes ?? []) L.push('', `- ${n}`);
  L.push(...timedRuns(report.rows, (r) => `${r.link} ${r.scenario} ${r.contender}`), ...problems(report.rows, (r) => `${r.link} ${r.scenario} ${r.contender}`));
  L.push('', '### Update targets (issue 22)', '', targetsTable(evaluation), '');
  const miss = evaluation.filter((t) => t.met === false);
  L.push(miss.length ? `Missed: ${miss.map((t) => `${t.name} ${fmtVal(t)}`).join('; ')}.` : 'Every target measured was met.', '');
  return L.join('\n');
}
