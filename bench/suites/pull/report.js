// The pull suite's report: which targets were met, its chart and its section of bench/RESULTS.md.
import { MiB } from '../../lib/util.js';
import { ok, bar, subtitle, mdTable, runLines, fmtVal, judge, targetsTable } from '../../lib/render.js';
import { defaultLayoutMarkdown } from './default-layout.js';
import { renderNetworkMarkdown } from './network-report.js';

const RSS_LIMIT_MIB = 200;

const rowOf = (report, variant, contender) => report.rows.find((r) => r.variant === variant && r.contender === contender);

function evaluatePull(report) {
  const targets = [];
  for (const img of report.images) {
    const carrier = rowOf(report, img.id, 'carrier');
    const podman = rowOf(report, img.id, 'podman');
    const su = rowOf(report, img.id, 'skopeo-umoci');
    const have = ok(carrier);
    targets.push({
      name: `${img.id}: carrier vs podman pull`,
      what: 'podman time / carrier time',
      value: have && ok(podman) ? podman.median / carrier.median : undefined,
      target: '≥ 3.0×',
      test: (v) => v >= 3,
      unit: '×',
    });
    const nosync = rowOf(report, img.id, 'carrier-nosync');
    if (nosync) {
      targets.push({
        name: `${img.id}: carrier --no-sync vs podman pull`,
        what: 'podman time / carrier --no-sync time: the same durability (neither flushes layer content to disk)',
        value: ok(nosync) && ok(podman) ? podman.median / nosync.median : undefined,
        target: '≥ 3.0×',
        test: (v) => v >= 3,
        unit: '×',
      });
    }
    const recompressed = su?.mode === 'recompressed';
    targets.push({
      name: `${img.id}: carrier vs skopeo copy + umoci unpack${recompressed ? ' ‡' : ''}`,
      what: recompressed
        ? '(skopeo + umoci) time / carrier time; ‡ umoci cannot unpack zstd layers, so skopeo recompressed them to gzip on the way (a cost carrier does not pay)'
        : '(skopeo + umoci) time / carrier time',
      value: have && ok(su) ? su.median / carrier.median : undefined,
      target: '> 1.0×',
      test: (v) => v > 1,
      caveat: recompressed,
      unit: '×',
    });
    targets.push({
      name: `${img.id}: carrier peak RSS`,
      what: 'largest RSS of the carrier pull process over all runs (/usr/bin/time), and the whole process tree sampled in the warm-up',
      value: have ? Math.max(carrier.peakRssKiB ?? 0, carrier.treePeakKiB ?? 0) / 1024 || undefined : undefined,
      target: `< ${RSS_LIMIT_MIB} MiB`,
      test: (v) => v < RSS_LIMIT_MIB,
      unit: ' MiB',
    });
  }
  const carrierRows = report.rows.filter((r) => r.contender === 'carrier');
  targets.push({
    name: 'carrier pull correct, records equal podman pull',
    what: 'every image: image id = podman’s = config digest, layer and image records equal podman’s, every diff/ tree exactly as the tar headers say',
    value: carrierRows.length
      ? carrierRows.every((r) => r.problems.length === 0 && r.notes.length === 0 && r.runs.length > 0) &&
        report.images.every((i) => i.crossCheck?.idsEqual && i.crossCheck?.recordsEqual && i.crossCheck?.imageRecordEqual)
      : undefined,
    target: 'yes',
    test: (v) => v === true,
    unit: '',
  });
  return judge(targets);
}

const HEAD = ['contender', 'median s', 'min–max s', 'MiB/s (tar)', 'time ÷ carrier', 'peak RSS MiB'];

function imageRows(report, img) {
  const carrier = rowOf(report, img.id, 'carrier');
  const tarMiB = img.tarSize / MiB;
  return report.rows
    .filter((r) => r.variant === img.id)
    .map((r) => {
      const flag = r.problems.length ? ' ⚠' : r.notes.length ? ' †' : '';
      const parts = r.parts && Object.keys(r.parts).length > 1
        ? ` (${Object.entries(r.parts).map(([k, s]) => `${k} ${s.toFixed(2)}`).join(' + ')})`
        : '';
      return [
        r.label + flag,
        ok(r) ? r.median.toFixed(2) + parts : r.missing ? 'not installed' : 'failed',
        ok(r) ? `${r.min.toFixed(2)}–${r.max.toFixed(2)}` : '',
        ok(r) ? (tarMiB / r.median).toFixed(0) : '',
        ok(r) && ok(carrier) ? (r.median / carrier.median).toFixed(2) + '×' : '',
        r.peakRssKiB ? (r.peakRssKiB / 1024).toFixed(0) + (r.treePeakKiB ? ` (tree ${(r.treePeakKiB / 1024).toFixed(0)})` : '') : '',
      ];
    });
}

function imageLine(img) {
  const c = img.id.split('/')[1];
  const per = img.layers.length > 1
    ? ` (${img.layers.map((l) => `${l.entries} entries / ${(l.tar.size / MiB).toFixed(0)} MiB`).join(', ')})`
    : '';
  return (
    `${img.title}, ${c}: ${img.layers.length} layer${img.layers.length > 1 ? 's' : ''}, ${img.entries} entries${per}; ` +
    `tar ${(img.tarSize / MiB).toFixed(1)} MiB, ${c} ${(img.compressedSize / MiB).toFixed(1)} MiB`
  );
}

/** One sentence per claim in issue 4's Speed section, with the numbers. */
function pullVerdicts(report) {
  const out = [];
  const t = report.evaluation;
  const by = (what) => t.filter((x) => x.name.replace(/ ‡$/, '').endsWith(what));
  const podman = by('carrier vs podman pull');
  const nosync = by('carrier --no-sync vs podman pull');
  const su = by('carrier vs skopeo copy + umoci unpack');
  const rss = by('carrier peak RSS');
  const list = (xs) => xs.map((x) => `${x.name.split(':')[0]} ${fmtVal(x)}`).join(', ');
  const all = (xs) => (xs.every((x) => x.met === true) ? 'HOLDS' : xs.some((x) => x.met === false) ? 'DOES NOT HOLD' : 'NOT SHOWN');
  if (podman.length) out.push(`“carrier pull ≥ 3× faster than podman pull”: ${all(podman)} (podman ÷ carrier: ${list(podman)}).`);
  if (nosync.length) out.push(`The same with podman's durability (\`carrier pull --no-sync\`, no syncfs): ${all(nosync)} (podman ÷ carrier --no-sync: ${list(nosync)}).`);
  if (su.length) {
    const partial = su.filter((x) => x.caveat);
    out.push(
      `“faster than skopeo copy + umoci unpack”: ${all(su)} ((skopeo + umoci) ÷ carrier: ${list(su)})` +
        (partial.length
          ? `; ‡ for ${partial.map((x) => x.name.split(':')[0]).join(', ')} umoci could not unpack zstd layers, so skopeo recompressed them to gzip first, which flatters carrier; ` +
            `umoci unpack alone ÷ carrier there: ${partial
              .map((x) => {
                const v = x.name.split(':')[0];
                const su = rowOf(report, v, 'skopeo-umoci');
                const c = rowOf(report, v, 'carrier');
                return `${v} ${su?.parts?.umoci && ok(c) ? (su.parts.umoci / c.median).toFixed(2) + '×' : 'n/a'}`;
              })
              .join(', ')}.`
          : '.'),
    );
  }
  if (rss.length) out.push(`“peak RSS of carrier pull under ${RSS_LIMIT_MIB} MiB”: ${all(rss)} (${list(rss)}).`);
  return out;
}

/** The pull suite's section of RESULTS.md (`report.evaluation` from evaluatePull()). */
function renderPullMarkdown(report) {
  const L = [];
  L.push('## Pull: carrier pull vs podman pull vs skopeo copy + umoci unpack vs pure Node vs the floor');
  L.push('');
  L.push(...runLines(report));
  L.push('');
  L.push('### Method');
  L.push('');
  L.push(
    'The suite starts Debian’s `docker-registry` (the CNCF distribution registry) on 127.0.0.1 over plain http, with its storage in bench/work. The images are built from real files of this machine (whole /usr subtrees, GNU tar pax archives compressed by `gzip -6` and `zstd -3`), pushed as they are with `skopeo copy --preserve-digests` from an OCI layout, and the manifest the registry serves is compared byte for byte with the one built. Every run pulls into a fresh store or directory with a fresh run root under /tmp; commands are timed from spawn to exit (process start-up included for everyone). ' +
      (report.method ??
        'Trees are kept until the last run and timing starts ≥ 370 s after the previous mass delete (ext4 `recently_deleted()`); after each run the output is synced and dropped from the page cache, and the few large blob files a run leaves besides its tree (carrier’s blob cache, skopeo’s OCI layout) are deleted.') +
      ' The registry’s files stay in the page cache: this measures the client side, not the disk. The floor rows do the two halves of the work with the bytes already local: decompress every layer blob to /dev/null, and GNU tar -xf of every plain layer tar (layers 3 at a time, as the pulls).',
  );
  L.push('');
  L.push('Contenders:');
  L.push('');
  const seen = new Set();
  for (const r of report.rows) {
    if (seen.has(r.contender)) continue;
    seen.add(r.contender);
    L.push(`- **${r.contender}**: \`${r.command}\``);
  }
  L.push('');
  L.push('Peak RSS is the largest `ru_maxrss` over the timed runs (GNU time `%M`: the largest single process of the tree); “tree” is the largest sum of VmRSS over the whole process tree, sampled every 50 ms during the warm-up run. MiB/s is uncompressed tar bytes per second.');
  for (const img of report.images) {
    L.push('');
    L.push(`### Pull ${img.id}`);
    L.push('');
    L.push(`${imageLine(img)}. Image \`${img.ref}\`, id ${img.configDigest.slice(7, 19)}, manifest ${img.manifestDigest}.`);
    L.push('');
    L.push(mdTable(HEAD, imageRows(report, img)));
  }
  L.push(...defaultLayoutMarkdown(report, { mdTable, ok }));
  L.push('');
  L.push('All timed runs (seconds):');
  L.push('');
  for (const r of report.rows) {
    const redone = !r.disturbed ? '' : report.quietWait === false ? ` (${r.disturbed} disturbed, kept: --no-quiet-wait)` : ` (${r.disturbed} disturbed run(s) redone)`;
    L.push(`- \`${r.variant} ${r.contender}\`: ${r.runs.map((s) => s.toFixed(2)).join(', ') || 'none'}${redone}`);
  }
  L.push('');
  L.push('### Pull checks (warm-up run)');
  L.push('');
  for (const img of report.images) {
    const x = img.crossCheck;
    if (!x) {
      L.push(`- ${img.id}: carrier/podman cross-check not done (one of them failed or was not run)`);
      continue;
    }
    L.push(
      `- ${img.id}: carrier image id ${x.carrierId} ${x.idsEqual ? '= podman’s' : `≠ podman’s ${x.podmanId}`}; layer records (id, parent, diff-digest, compressed-diff-digest, sizes) ${x.recordsEqual ? 'equal podman’s' : 'DIFFER from podman’s'}; image record ${x.imageRecordEqual ? 'equal' : 'DIFFERS'}; diff-digests ${x.layers.map((l) => l.diffDigest.slice(7, 19)).join(', ')}`,
    );
  }
  const problems = report.rows.filter((r) => r.problems.length);
  L.push('');
  L.push(problems.length ? 'Problems (rows marked ⚠; their times are not comparable):' : 'Carrier’s diff/ trees matched their tars’ headers exactly; no contender reported a wrong digest.');
  for (const r of problems) for (const p of r.problems) L.push(`- \`${r.variant} ${r.contender}\`: ${p}`);
  for (const r of report.rows) for (const n of r.notes) L.push(`- † \`${r.variant} ${r.contender}\`: ${n}`);
  for (const r of report.rows) {
    if (r.recompressed) {
      L.push(`- ‡ \`${r.variant} ${r.contender}\`: umoci cannot unpack these layers (“${r.recompressed}”), so this row runs \`skopeo copy --dest-compress --dest-compress-format gzip\` (skopeo decompresses the zstd layers and compresses them again as gzip) before \`umoci unpack\`: what a user of this umoci has to do, but slower than the pair would be with a umoci that reads zstd (zstd support arrived in umoci 0.5).`);
    }
    if (r.missing) L.push(`- \`${r.variant} ${r.contender}\`: ${r.missing}`);
  }
  L.push(...renderNetworkMarkdown(report.network));
  L.push('');
  L.push('### Pull targets (issue 4, Speed)');
  L.push('');
  L.push(targetsTable(report.evaluation));
  L.push('');
  for (const v of pullVerdicts(report)) L.push(`- ${v}`);
  L.push('');
  return L.join('\n');
}

export const markdown = (report) => renderPullMarkdown({ ...report, evaluation: evaluatePull(report) });

/** The chart: one panel per image variant, carrier against its peers and the floor. */
export function barModel(report) {
  const row = (v, c) => rowOf(report, v, c);
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
