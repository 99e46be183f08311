// `carrier images` (image ls): podman 4.3.1's table, JSON and Go-template output.
import type { Context } from '../command.js';
import { goJson, goLocalTime, humanSize, renderTable, renderTemplate, timeAgo } from '../format.js';
import { splitName } from '../names.js';
import { withStore } from '../open-store.js';
import { createdUnix, gatherFacts, labelsOf, type ImageFacts, type Json } from './facts.js';
import { writeOut } from '../output.js';

export async function listImages(ctx: Context): Promise<number> {
  const { flags } = ctx;
  const all = flags.bool('all');
  const quiet = flags.bool('quiet');
  const noTrunc = flags.bool('no-trunc');
  const digests = flags.bool('digests');
  const format = flags.string('format');
  return withStore(ctx.globals, async (store) => {
    let images = await store.images();
    if (ctx.args[0] !== undefined) {
      const hit = await store.image(ctx.args[0]);
      images = hit ? [hit] : [];
    }
    const facts = await gatherFacts(store, images);
    // Newest first (podman's default --sort created); stable for equal times.
    const sorted = facts
      .map((f, i) => ({ f, i }))
      .sort((a, b) => createdUnix(b.f.info) - createdUnix(a.f.info) || (Date.parse(b.f.info.created ?? '') || 0) - (Date.parse(a.f.info.created ?? '') || 0) || a.i - b.i)
      .map((x) => x.f)
      // Intermediate images (no name, and some image is built on them) are hidden unless --all.
      .filter((f) => all || f.info.names.length > 0 || f.children === 0);
    const id = (f: ImageFacts): string => (noTrunc ? `sha256:${f.info.id}` : f.info.id.slice(0, 12));
    if (quiet) {
      const seen = new Set<string>();
      for (const f of sorted) {
        const s = id(f);
        if (!seen.has(s)) writeOut(`${s}\n`);
        seen.add(s);
      }
      return 0;
    }
    // podman emits one entry per name (an image with 3 names appears 3 times, identically), at least one per image.
    const rows = sorted.flatMap((f) => (f.info.names.length > 0 ? f.info.names : [undefined]).map((name) => ({ f, name })));
    if (format === 'json') {
      const out = rows.map(({ f }) => {
        const unix = createdUnix(f.info);
        const entry: Json = {
          Id: f.info.id,
          ParentId: f.parentId,
          RepoTags: null,
          RepoDigests: f.repoDigests,
          Size: f.size,
          SharedSize: 0,
          VirtualSize: f.size,
          Labels: labelsOf(f.config),
          Containers: f.containers,
        };
        if (f.info.readOnly) entry.ReadOnly = true;
        if (f.info.names.length === 0 && f.children === 0) entry.Dangling = true;
        if (f.info.names.length > 0) entry.Names = f.info.names;
        if (f.info.digest) entry.Digest = f.info.digest;
        if (f.info.namesHistory.length > 0) entry.History = f.info.namesHistory;
        entry.Created = unix;
        entry.CreatedAt = goLocalTime(unix);
        return entry;
      });
      writeOut(`${goJson(out, 4)}\n`);
      return 0;
    }
    const cells = rows.map(({ f, name }) => {
      const { repo, tag } = name ? splitName(name) : { repo: '<none>', tag: '<none>' };
      return {
        Repository: repo,
        Tag: tag,
        Digest: f.info.digest ?? '',
        ID: id(f),
        Id: f.info.id,
        Created: timeAgo(f.info.created),
        CreatedSince: timeAgo(f.info.created),
        CreatedAt: goLocalTime(createdUnix(f.info)),
        Size: humanSize(f.size),
        Names: f.info.names,
        Labels: labelsOf(f.config),
        Containers: f.containers,
      };
    });
    if (format !== undefined && format !== 'table') {
      for (const c of cells) writeOut(`${renderTemplate(format, c)}\n`);
      return 0;
    }
    const header = ['REPOSITORY', 'TAG', ...(digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
    const body = cells.map((c) => [c.Repository, c.Tag, ...(digests ? [c.Digest] : []), c.ID, c.Created, c.Size]);
    writeOut(renderTable(flags.bool('noheading') ? body : [header, ...body]));
    return 0;
  });
}
