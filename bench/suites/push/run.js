// The push suite (`npm run bench -- --suite push`): `carrier push` against `podman push` and `skopeo copy
// containers-storage:… docker://…`, for the pull suite's two images (bench/lib/served-images.js: the distro-sized
// single layer and the three layers of small files), each pushed with --compression-format gzip and zstd.
//
// Setup (not timed): one scratch file system holds a Carrier store and a podman store for the whole suite; both pull
// every variant from the pull suite's registry, so each store holds the images as a user's would after a pull
// (Carrier's blob cache keeps the compressed blobs; podman's store keeps the layers and the pulled manifest).
//
// A run: a fresh scratch file system, a fresh `docker-registry` on a fresh port with its storage there (no blob of a
// previous run, and no blob-info-cache entry of podman's or skopeo's for that registry), then the push, timed from
// spawn to exit, then the registry is stopped and the file system thrown away. Contenders:
//   carrier            carrier push of the pulled image: its blobs come from the blob cache unchanged (the digests
//                      and the manifest stay the source's, as skopeo copy keeps them between registries)
//   carrier-recompress carrier push with an empty blob cache (--blob-cache EMPTY): every layer's tar is rebuilt from
//                      its tar-split and compressed on the way, the same work as podman's
//   podman             podman push --compression-format C (containers-storage hands out the tar, c/image compresses)
//   skopeo             skopeo copy --dest-compress-format C containers-storage:[overlay@R+RR]IMG docker://…
//   floor              curl: the same blobs (carrier's cached ones) each in one POST and one monolithic PUT, all at
//                      once, then the source's manifest: what the registry's own receiving and writing costs
// The warm-up round checks what reached the registry: the manifest names the image's config, every layer has the
// wanted compression and is there; for carrier, that the manifest is the source's byte for byte.
import fs from 'node:fs';
import path from 'node:path';
import { serveImages } from '../../lib/served-images.js';
import { startRegistry } from '../../lib/registry.js';
import { timedCommand, TIME_BIN } from '../../lib/pullers.js';
import { run, median, MiB } from '../../lib/util.js';

const medianOf = (xs) => (xs.every((x) => Number.isFinite(x)) && xs.length ? median(xs) : undefined);
import { timings, roundRobin, timed } from '../../lib/roundrobin.js';

export const PUSH_CONFIG = {
  quick: {
    runs: 0,
    distro: { targetBytes: 50 * MiB, targetEntries: 1750 },
    smallfiles: { targetBytes: 128 * MiB, targetEntries: 6400 },
  },
  full: {
    runs: 5,
    distro: { targetBytes: 200 * MiB, targetEntries: 7000 },
    smallfiles: { targetBytes: 1024 * MiB, targetEntries: 50000 },
  },
};

// floor URL REPO TAG MANIFEST MEDIATYPE FILE...: each file (named by its sha256) in one POST and one monolithic PUT,
// all at once; then the manifest.
const FLOOR_SCRIPT = `
url=$1 repo=$2 tag=$3 manifest=$4 type=$5; shift 5
for f in "$@"; do
  (
    loc=$(curl -sS -D - -o /dev/null -X POST "$url/v2/$repo/blobs/uploads/" | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p')
    case "$loc" in http*) ;; *) loc="$url$loc" ;; esac
    case "$loc" in *\\?*) sep='&' ;; *) sep='?' ;; esac
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' -T "$f" "$loc\${sep}digest=sha256:$(basename "$f")")
    [ "$code" = 201 ] || { echo "PUT $f: $code" >&2; exit 1; }
  ) &
done
for job in $(jobs -p); do wait "$job" || exit 1; done
code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $type" --data-binary "@$manifest" "$url/v2/$repo/manifests/$tag")
[ "$code" = 201 ] || { echo "PUT manifest: $code" >&2; exit 1; }
`;

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

function fail(what, r) {
  const text = (r.stderr || r.stdout).trim().split('\n').filter((l) => !/Command exited with non-zero status/.test(l));
  return new Error(`${what} exited ${r.code}: ${text.slice(-3).join(' | ').slice(0, 600)}`);
}

async function timedOk(what, cmd, args, opts) {
  const r = await timedCommand(cmd, args, opts);
  if (r.code !== 0) throw fail(what, r);
  return { seconds: r.seconds, peakKiB: r.peakKiB, cpuSeconds: r.cpuSeconds, treePeakKiB: r.treePeakKiB };
}

/** What the registry holds under repo:tag: the manifest's digest, config, layers; problems found. */
async function inspectPushed(reg, repo, tag, v) {
  const problems = [];
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: ACCEPT } });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (!res.ok) return { problems: [`the registry has no ${repo}:${tag} (${res.status})`] };
  const doc = JSON.parse(bytes.toString());
  const digest = res.headers.get('docker-content-digest');
  if (doc.config?.digest !== v.configDigest) problems.push(`config ${doc.config?.digest} != the image's ${v.configDigest}`);
  const layers = doc.layers ?? [];
  if (layers.length !== v.diffIds.length) problems.push(`${layers.length} layers, expected ${v.diffIds.length}`);
  for (const l of layers) {
    const want = v.compression === 'gzip' ? /gzip/ : /zstd/;
    if (!want.test(l.mediaType)) problems.push(`layer ${l.digest} is ${l.mediaType}, not ${v.compression}`);
    const h = await fetch(`${reg.url}/v2/${repo}/blobs/${l.digest}`, { method: 'HEAD' });
    if (!h.ok) problems.push(`layer blob ${l.digest} missing (${h.status})`);
  }
  return { digest, layers: layers.map((l) => l.digest), bytes: layers.reduce((a, l) => a + l.size, 0), problems };
}

/** ctx: bench/run.js's suite context */
export async function runPushSuite(ctx) {
  const { log, workDir } = ctx;
  const { started, cfg, runs } = ctx.begin('push', PUSH_CONFIG);
  if (!ctx.carrier.entry) throw new Error('carrier is not loadable: nothing to compare');
  // As installed: package.json's bin, the bundled CLI.
  const cli = path.join(path.dirname(ctx.carrier.entry), 'cli', 'bin.cjs');
  const version = async (cmd) => ((await run(cmd, ['--version'], { allowFail: true }).catch(() => ({ stdout: 'not installed' }))).stdout.trim().split('\n')[0]);
  const tools = { podman: await version('podman'), skopeo: await version('skopeo'), registry: await version('docker-registry'), time: TIME_BIN ? `${TIME_BIN} -f %M` : 'not installed' };
  log(`tools: ${Object.values(tools).join('; ')}`);

  const { reg: source, variants } = await serveImages(workDir, cfg, { log, mode: ctx.quick ? 'quick' : 'full' });
  // (once: a registry stopped by its signal has no exit code, and a second stop() would wait for an exit that came)
  let stopping;
  const stopSource = () => (stopping ??= source.stop());
  const base = `/tmp/cbpu${process.pid}`;
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(base, { recursive: true });
  const storeBytes = 4 * 1024 ** 3 + variants.reduce((a, v) => a + 2 * v.tarSize + 2 * v.compressedSize, 0);
  try {
    return await ctx.scratch(storeBytes, async (mnt) => {
      // ---- the source stores: both pull every variant ----------------------------------------------------------
      // One pair of stores per compression: an image's gzip and zstd variants have the same config, so in one store
      // they would be one image, with the manifest (and the blobs it names) of whichever was pulled last.
      const cenv = { ...process.env };
      delete cenv.CONTAINERS_STORAGE_CONF;
      const stores = {};
      for (const comp of ['gzip', 'zstd']) {
        const p = { root: path.join(mnt, `podman-${comp}`), runroot: path.join(base, `p-${comp}`), conf: path.join(base, `storage-${comp}.conf`) };
        fs.writeFileSync(p.conf, `[storage]\ndriver = "overlay"\ngraphroot = "${p.root}"\nrunroot = "${p.runroot}"\n`);
        stores[comp] = {
          car: [cli, '--root', path.join(mnt, `carrier-${comp}`), '--runroot', path.join(base, `c-${comp}`)],
          pod: ['--root', p.root, '--runroot', p.runroot, '--storage-driver', 'overlay'],
          penv: { ...process.env, CONTAINERS_STORAGE_CONF: p.conf },
          p,
        };
      }
      const t0 = Date.now();
      for (const v of variants) {
        const { car, pod, penv } = stores[v.compression];
        await run(process.execPath, [...car, 'pull', '-q', '--tls-verify=false', v.ref.name], { env: cenv });
        await run('podman', [...pod, 'pull', '-q', '--tls-verify=false', v.ref.name], { env: penv });
      }
      log(`source stores: carrier and podman pulled ${variants.map((v) => v.id).join(', ')} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      // The floor's files: every variant's config and manifest as the source serves them, its layers from carrier's cache.
      const floor = {};
      for (const v of variants) {
        const dir = path.join(base, `floor-${v.image}-${v.compression}`);
        fs.mkdirSync(dir, { recursive: true });
        const m = await fetch(`${source.url}/v2/${v.ref.repo}/manifests/${v.ref.tag}`, { headers: { accept: ACCEPT } });
        const manifest = Buffer.from(await m.arrayBuffer());
        fs.writeFileSync(path.join(dir, 'manifest'), manifest);
        const c = await fetch(`${source.url}/v2/${v.ref.repo}/blobs/${v.configDigest}`);
        fs.writeFileSync(path.join(dir, v.configDigest.slice(7)), Buffer.from(await c.arrayBuffer()));
        const blobs = v.blobDigests.map((d) => path.join(mnt, `carrier-${v.compression}`, 'carrier-blob-cache', 'sha256', d.slice(7)));
        for (const b of blobs) if (!fs.existsSync(b)) throw new Error(`floor: carrier's cache has no ${b}`);
        floor[v.id] = { files: [path.join(dir, v.configDigest.slice(7)), ...blobs], manifest: path.join(dir, 'manifest'), mediaType: JSON.parse(manifest).mediaType ?? 'application/vnd.oci.image.manifest.v1+json' };
      }
      await stopSource();

      const emptyCache = path.join(base, 'empty-cache');
      const contenders = [
        {
          id: 'carrier',
          label: 'carrier push (blob cache as the pull left it)',
          command: 'carrier --root R --runroot RR push --tls-verify=false -q --compression-format C IMG HOST/REPO:TAG',
          run: (v, dest, opts) => timedOk('carrier push', process.execPath, [...stores[v.compression].car, 'push', '--tls-verify=false', '-q', '--compression-format', v.compression, v.ref.name, dest], { env: cenv, ...opts }),
        },
        {
          id: 'carrier-recompress',
          label: 'carrier push, empty blob cache (recompresses)',
          command: 'carrier --root R --runroot RR --blob-cache EMPTY push --tls-verify=false -q --compression-format C IMG HOST/REPO:TAG',
          run: (v, dest, opts) => {
            fs.rmSync(emptyCache, { recursive: true, force: true });
            fs.mkdirSync(emptyCache, { recursive: true });
            const car = stores[v.compression].car;
            return timedOk('carrier push', process.execPath, [...car.slice(0, 1), '--blob-cache', emptyCache, ...car.slice(1), 'push', '--tls-verify=false', '-q', '--compression-format', v.compression, v.ref.name, dest], { env: cenv, ...opts });
          },
        },
        {
          id: 'podman',
          label: 'podman push',
          command: 'podman --root R --runroot RR --storage-driver overlay push -q --tls-verify=false --compression-format C IMG docker://HOST/REPO:TAG',
          run: (v, dest, opts) => timedOk('podman push', 'podman', [...stores[v.compression].pod, 'push', '-q', '--tls-verify=false', '--compression-format', v.compression, v.ref.name, `docker://${dest}`], { env: stores[v.compression].penv, ...opts }),
        },
        {
          id: 'skopeo',
          label: 'skopeo copy containers-storage: docker://',
          command: 'skopeo copy -q --dest-tls-verify=false --dest-compress-format C containers-storage:[overlay@R+RR]IMG docker://HOST/REPO:TAG',
          run: (v, dest, opts) => {
            const { p, penv } = stores[v.compression];
            return timedOk('skopeo copy', 'skopeo', [
              'copy', '-q', '--retry-times', '0', '--dest-tls-verify=false', '--dest-compress-format', v.compression,
              `containers-storage:[overlay@${p.root}+${p.runroot}]${v.ref.name}`, `docker://${dest}`,
            ], { env: penv, ...opts });
          },
        },
        {
          id: 'floor',
          label: 'floor: curl uploads the cached blobs at once, then the manifest',
          command: 'curl: POST + PUT -T BLOB per blob (all at once), PUT the manifest',
          run: (v, dest, opts) => {
            const f = floor[v.id];
            const slash = dest.indexOf('/');
            const [repo, tag] = dest.slice(slash + 1).split(':');
            return timedOk('curl floor', 'bash', ['-c', FLOOR_SCRIPT, 'floor', `http://${dest.slice(0, slash)}`, repo, tag, f.manifest, f.mediaType, ...f.files], opts);
          },
        },
      ];
      const checks = new Map();
      const items = variants.flatMap((v) => contenders.map((k) => ({
        id: `${v.id} ${k.id}`,
        contender: k.id,
        run: async ({ round, attempt, cell }) =>
          ctx.scratch(1024 ** 3 + 3 * v.compressedSize, async (dir) => {
            const reg = await startRegistry(path.join(dir, 'data'));
            try {
              const repo = `bench/push-${v.image}`;
              const dest = `${reg.host}/${repo}:${v.compression}`;
              const r = await timed(ctx, () => k.run(v, dest, { sample: round === 0 }));
              if (round === 0 && !ctx.willRedo(r, attempt)) {
                cell.treePeakKiB = r.treePeakKiB;
                const got = await inspectPushed(reg, repo, v.compression, v);
                cell.problems.push(...got.problems);
                const kept = got.digest === v.manifestDigest;
                if (k.id === 'carrier' && !kept) cell.problems.push(`manifest ${got.digest} is not the source's ${v.manifestDigest}`);
                checks.set(`${v.id} ${k.id}`, { manifestDigest: got.digest, kept, layers: got.layers, bytes: got.bytes });
              }
              return r;
            } finally {
              await reg.stop();
            }
          }),
      })));

      log(`\npush warm-up round (checks what reached the registry; samples whole-tree RSS):`);
      const cells = await roundRobin(ctx, items, runs, {
        failPrefix: 'run failed: ',
        onWarm: (it, r) => {
          const rss = r.peakKiB ? `, peak RSS ${(r.peakKiB / 1024).toFixed(0)} MiB` : '';
          const tree = r.treePeakKiB ? ` (tree ${(r.treePeakKiB / 1024).toFixed(0)} MiB sampled)` : '';
          const chk = checks.get(it.id);
          const [v, k] = it.id.split(' ');
          log(`  ${v.padEnd(16)} ${k.padEnd(19)} ${r.seconds.toFixed(2).padStart(7)} s${rss}${tree}${chk ? `; manifest ${chk.kept ? 'kept' : 'rewritten'}` : ''}`);
        },
        onRound: (round, seconds) => {
          if (round > 0) log(`  push round ${round}/${runs} done in ${seconds.toFixed(1)} s`);
        },
      });

      const rows = [];
      for (const v of variants) {
        for (const k of contenders) {
          const cell = cells.get(`${v.id} ${k.id}`);
          if (!cell) continue;
          rows.push({
            variant: v.id,
            contender: k.id,
            label: k.label,
            command: k.command,
            ...timings(cell),
            cpuSeconds: medianOf(cell.results.map((x) => x.cpuSeconds)),
            peakRssKiB: cell.peakKiB,
            treePeakKiB: cell.treePeakKiB,
            check: checks.get(`${v.id} ${k.id}`),
            problems: cell.problems,
            notes: cell.notes,
            disturbed: cell.disturbed,
          });
        }
      }
      return {
        ...ctx.reportHead('push', started, { runs, config: cfg, tools }),
        images: variants.map((v) => ({
          id: v.id, title: v.title, ref: `${v.ref.repo}:${v.ref.tag}`, compression: v.compression, layers: v.layers,
          entries: v.entries, tarSize: v.tarSize, compressedSize: v.compressedSize, manifestDigest: v.manifestDigest, configDigest: v.configDigest,
        })),
        rows,
        disturbedRuns: rows.reduce((a, r) => a + r.disturbed, 0),
      };
    });
  } finally {
    await stopSource();
    fs.rmSync(base, { recursive: true, force: true });
  }
}
