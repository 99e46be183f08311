// The push suite's report: its targets (issue 19: push ≥ 2× podman, peak RSS < 200 MiB), chart and section of
// bench/RESULTS.md.
import { MiB } from '../../lib/util.js';
import { ok, bar, subtitle, mdTable, runLines, judge, targetsTable, fmtVal, timedRuns, problems } from '../../lib/render.js';

const RSS_LIMIT_MIB = 200;

// Measured while the suite was written (2026-12-06, the 2-core VM shared with other work: ratios, not absolutes).
const PROFILE = [
  '- `carrier` (blob cache as the pull left it) compresses nothing: each cached blob is read and streamed in one `PATCH` carrying `Content-Range` and `Content-Length` for the whole blob (a blob up to 8 MiB goes in one `PUT`), and the registry gets the source’s manifest byte for byte; its time is Node start-up, the HEADs and the upload.',
  '- Until this run it sent a large blob in 8 MiB `PATCH` requests, each held in memory and each waiting for the registry to store its chunk before the next went: 0.54–0.73 CPU-seconds a push but 2.5–4.3 s of wall time (run of 14:53). Streaming the blob in one request, as c/image does, took the same pushes to 1.2–1.9 s with the same CPU (0.52–0.69 CPU-s), under similar load (other processes used 1–3 CPU-s during each run of both). After a dropped connection the upload status (`GET`, `Range`) says what the registry has and a new `PATCH` streams the rest from the blob reopened at that offset; the CNCF registry 2.8 instead cancels an upload whose data outran its `Location` state, so there the blob restarts in a fresh session. The wall time left over the CPU time is Node start-up, the registry receiving and writing (its CPU is in no row) and waiting for a core on the shared VM.',
  '- `carrier-recompress` is CPU-bound in deflate. On the quick three-layer image (125 MiB of tar), rebuilding the three tars from their tar-splits took 0.85 s; compressing them took 9.7 s with gzip and 4.1 s with zstd (same load). zlib at level 6 compresses ~47 MB/s per core; podman’s Go compressor is faster at a similar ratio (its gzip layers came out 4–5.5% larger than `gzip -6`). Since this suite, gzip is compressed at level 4 by default (2.8% larger than -6, ~0.6 of its CPU time); the gzip rows of a run before that commit used level 6.',
  '- Memory: a push process at rest is ~61 MiB; rebuilding one layer’s tar adds ~42 MiB (chunk buffers awaiting Node’s GC), a zstd compressor with one thread ~23 MiB more. Three layers compressing at once with two threads each peaked at 296 MiB, two at once with one thread each at 220–226 MiB, one at a time on both cores at 201 MiB (and it finished first), so a push now compresses one layer at a time on every core; blobs sent as they are still go three at a time.',
];
const rowOf = (report, variant, contender) => report.rows.find((r) => r.variant === variant && r.contender === contender);

function evaluatePush(report) {
  const targets = [];
  for (const img of report.images) {
    const podman = rowOf(report, img.id, 'podman');
    for (const [id, what] of [['carrier', 'blob cache as pulled'], ['carrier-recompress', 'empty blob cache: compresses every layer, as podman does']]) {
      const c = rowOf(report, img.id, id);
      if (!c) continue;
      targets.push({
        name: `${img.id}: ${id} vs podman push`,
        what: `podman time / carrier time (${what})`,
        value: ok(c) && ok(podman) ? podman.median / c.median : undefined,
        target: '≥ 2.0×',
        test: (v) => v >= 2,
        unit: '×',
      });
      targets.push({
        name: `${img.id}: ${id} vs podman push, CPU time`,
        what: `podman CPU-seconds / carrier CPU-seconds (user + system of the command's process tree, median; robust to other load; the registry's share is in neither)`,
        value: c.cpuSeconds && podman?.cpuSeconds ? podman.cpuSeconds / c.cpuSeconds : undefined,
        target: '≥ 2.0×',
        test: (v) => v >= 2,
        unit: '×',
      });
      targets.push({
        name: `${img.id}: ${id} peak RSS`,
        what: 'largest RSS of the carrier process over all runs (/usr/bin/time), and the whole tree sampled in the warm-up',
        value: ok(c) ? Math.max(c.peakRssKiB ?? 0, c.treePeakKiB ?? 0) / 1024 || undefined : undefined,
        target: `< ${RSS_LIMIT_MIB} MiB`,
        test: (v) => v < RSS_LIMIT_MIB,
        unit: ' MiB',
      });
    }
  }
  return judge(targets);
}

/** The chart: one panel per image variant. */
export function barModel(report) {
  const panels = report.images.map((img) => {
    const carrier = rowOf(report, img.id, 'carrier-recompress') ?? rowOf(report, img.id, 'carrier');
    return {
      title: `${img.id}: ${img.layers.length} layer${img.layers.length > 1 ? 's' : ''}, ${(img.tarSize / MiB).toFixed(0)} MiB tar`,
      bars: [
        bar('carrier', 'carrier push (blob cache)', rowOf(report, img.id, 'carrier'), carrier),
        bar('carrier-recompress', 'carrier push (recompresses)', rowOf(report, img.id, 'carrier-recompress'), carrier),
        bar('podman', 'podman push', rowOf(report, img.id, 'podman'), carrier),
        bar('skopeo', 'skopeo copy containers-storage: docker://', rowOf(report, img.id, 'skopeo'), carrier),
      ].filter(Boolean),
    };
  });
  return { title: 'Push to a local registry', subtitle: subtitle(report), unit: 's', panels };
}

export function markdown(report) {
  const evaluation = evaluatePush(report);
  const L = ['## Push: carrier push vs podman push vs skopeo copy containers-storage: docker://', '', ...runLines(report)];
  L.push('', '### Method', '');
  L.push(
    'The pull suite’s images (the same fixtures and registry) are pulled once, before anything is timed, into a Carrier store and a podman store on one scratch file system: the state a user is in after a pull. Every run then pushes one image with `--compression-format` equal to its variant’s compression to a fresh `docker-registry` on a fresh port, its storage on a fresh scratch file system (so no blob is there yet and no blob-info cache of podman’s or skopeo’s knows the registry); the registry is started before and stopped after the timed command, which is timed from spawn to exit. ' +
      '`carrier` is the push of the pulled image as it is: its blobs come from the blob cache unchanged, so the registry gets the source’s manifest byte for byte (skopeo copy between registries does the same). `carrier-recompress` runs with an empty blob cache: every layer’s tar is rebuilt from its tar-split and compressed while it streams, the same work podman and skopeo do (containers-storage hands them the uncompressed tar; c/image compresses). The registry runs on this machine too: its CPU time (hashing and writing what it receives) is in every row. ' + report.method,
  );
  L.push('', 'Contenders:', '');
  for (const r of report.rows.filter((r, i, a) => a.findIndex((x) => x.contender === r.contender) === i)) L.push(`- **${r.contender}**: \`${r.command}\``);
  L.push('', 'Peak RSS is the largest `ru_maxrss` over the timed runs (GNU time `%M`: the largest single process of the tree); “tree” is the largest sum of VmRSS over the whole process tree, sampled every 50 ms in the warm-up run.');
  for (const img of report.images) {
    L.push('', `### Push ${img.id}`, '');
    L.push(`${img.title}, ${img.compression}: ${img.layers.length} layer(s), ${img.entries} entries; tar ${(img.tarSize / MiB).toFixed(1)} MiB, ${img.compression} ${(img.compressedSize / MiB).toFixed(1)} MiB. Image id ${img.configDigest.slice(7, 19)}.`, '');
    const carrier = rowOf(report, img.id, 'carrier-recompress');
    L.push(mdTable(['contender', 'median s', 'min–max s', 'CPU s (median)', 'MiB/s (tar)', 'time ÷ carrier-recompress', 'peak RSS MiB', 'manifest at the registry'], report.rows.filter((r) => r.variant === img.id).map((r) => [
      r.label + (r.problems.length ? ' ⚠' : ''),
      ok(r) ? r.median.toFixed(2) : 'failed',
      ok(r) ? `${r.min.toFixed(2)}–${r.max.toFixed(2)}` : '',
      r.cpuSeconds !== undefined ? r.cpuSeconds.toFixed(2) : '',
      ok(r) ? (img.tarSize / MiB / r.median).toFixed(0) : '',
      ok(r) && ok(carrier) ? `${(r.median / carrier.median).toFixed(2)}×` : '',
      r.peakRssKiB ? (r.peakRssKiB / 1024).toFixed(0) + (r.treePeakKiB ? ` (tree ${(r.treePeakKiB / 1024).toFixed(0)})` : '') : '',
      r.check ? (r.check.kept ? 'the source’s' : `rewritten (${r.check.manifestDigest?.slice(7, 19)})`) + (r.check.bytes ? `, layers ${(r.check.bytes / MiB).toFixed(1)} MiB` : '') : '',
    ])));
  }
  L.push(...timedRuns(report.rows, (r) => `${r.variant} ${r.contender}`), ...problems(report.rows, (r) => `${r.variant} ${r.contender}`));
  L.push('', '### Where carrier’s push time goes', '', ...PROFILE);
  L.push('', '### Push targets (issue 19)', '', targetsTable(evaluation), '');
  const miss = evaluation.filter((t) => t.met === false);
  L.push(miss.length ? `Missed: ${miss.map((t) => `${t.name} ${fmtVal(t)}`).join('; ')}.` : 'Every target measured was met.', '');
  return L.join('\n');
}
