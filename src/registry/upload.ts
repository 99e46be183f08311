// The push side of the distribution spec, over RegistryClient.request (its authentication, retries and limits):
// HEAD before upload, cross-repository mount, monolithic upload of a blob that fits one chunk, and for a longer one a
// single PATCH streaming the whole blob with Content-Range for the whole range (a chunked upload of one chunk, as
// podman streams a blob: no round trip per chunk). After a dropped connection the upload status (GET, Range) says how
// much the registry has and a new PATCH streams the rest from a reopened source, hashing the bytes it skips; when the
// registry lost the upload (the CNCF registry cancels an upload whose data does not match its state) the blob
// restarts in a fresh session.
// A manifest is PUT only by the caller, after every blob it names is in place.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { CarrierError, abortError } from '../errors.js';
import type { ImageReference } from '../reference.js';
import { parseDigest, sha256Digest } from '../oci/digest.js';
import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { discard, drain, errorSummary, header, printable, type Response } from './http.js';
import type { ApiRequest, HttpMethod } from './types.js';

/** A blob's bytes, opened afresh on every (re)start of its upload. */
export interface BlobBytes {
  open(): Promise<AsyncIterable<Buffer>>;
  /** Known before upload (a blob copied as it is); unknown for a blob compressed while it streams. */
  digest?: string;
  size?: number;
  /** What the blob is, for messages. */
  what: string;
  /** Called once the last byte is read, before the upload is completed: reject to refuse the bytes (a wrong diff_id). */
  verify?(): void | Promise<void>;
}

export interface UploadOptions {
  signal?: AbortSignal;
  /** Bytes read from the source so far in this attempt (0 again after a restart). */
  onBytes?: (bytes: number) => void;
  /** An upload session to use first (what a refused mount opened). */
  location?: URL;
}

export interface UploadedBlob {
  digest: string;
  size: number;
}

export interface BlobPusherOptions {
  /** A blob no longer than this goes in one PUT; a longer one is streamed in one PATCH. Default 8 MiB. */
  chunkSize?: number;
  /** Fresh starts of one blob's upload after the registry lost it. Default 3. */
  maxRestarts?: number;
  signal?: AbortSignal;
}

/** Resumes of one upload without progress before it is given up (and restarted). */
const MAX_RESUMES = 5;

/** Source errors end the upload as they are; only the registry's failures restart it. */
class SourceError extends Error {
  constructor(readonly original: unknown) {
    super('source failed');
  }
}

/** A blob's source being read: the hash of every byte read, and bytes read but not yet sent. */
interface OpenBlob {
  hash: ReturnType<typeof createHash>;
  head: Buffer[];
  held: number;
  next(): Promise<IteratorResult<Buffer>>;
  close(): Promise<void>;
}

/** The uploads of one repository: `ref` names it (its tag or digest is not used here). */
export class BlobPusher {
  private readonly chunkSize: number;
  private readonly maxRestarts: number;
  /** `host/repo` for messages. */
  readonly name: string;

  constructor(
    private readonly client: RegistryClient,
    readonly ref: ImageReference,
    private readonly options: BlobPusherOptions = {},
  ) {
    this.chunkSize = options.chunkSize ?? 8 << 20;
    this.maxRestarts = options.maxRestarts ?? 3;
    this.name = `${ref.domain}/${ref.path}`;
  }

  private signal(signal?: AbortSignal): AbortSignal | undefined {
    const list = [signal, this.options.signal].filter((s): s is AbortSignal => s !== undefined);
    return list.length <= 1 ? list[0] : AbortSignal.any(list);
  }

  private send(method: HttpMethod, path: string, req: ApiRequest = {}): Promise<{ res: Response; url: URL; registry: string; repository: string }> {
    const signal = this.signal(req.signal);
    return this.client.request(this.ref, method, path, { actions: 'pull,push', ...req, ...(signal ? { signal } : {}) });
  }

  private async failure(res: Response, what: string): Promise<RegistryError> {
    const s = await errorSummary(res);
    const detail = s.text ? `: ${s.text}` : '';
    const code = res.statusCode === 401 || res.statusCode === 403 ? 'CARRIER_UNAUTHORIZED' : res.statusCode === 404 ? 'CARRIER_NOT_FOUND' : 'CARRIER_REGISTRY_ERROR';
    return new RegistryError(code, `${what} to ${this.name}: status ${res.statusCode}${detail}`, { status: res.statusCode, registryCodes: s.codes });
  }

  private location(res: Response, base: URL, what: string): URL {
    const loc = header(res, 'location');
    if (!loc) throw new RegistryError('CARRIER_REGISTRY_ERROR', `${this.name} answered ${what} without a Location`, { status: res.statusCode });
    return new URL(loc, base);
  }

  /** True when the registry has the blob (HEAD). */
  async has(digest: string, signal?: AbortSignal): Promise<boolean> {
    parseDigest(digest);
    const { res } = await this.send('HEAD', `blobs/${digest}`, signal ? { signal } : {});
    await drain(res);
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    throw await this.failure(res, `HEAD blob ${digest}`);
  }

  /**
   * Asks the registry to mount `digest` from repository `from` of the same registry. True when mounted; otherwise
   * the upload session it opened instead (the registry did not have the blob there, or would not mount it).
   */
  async mount(digest: string, from: string, signal?: AbortSignal): Promise<true | URL> {
    parseDigest(digest);
    const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const { res, url } = await this.send('POST', `blobs/uploads/${query}`, { extraScopes: [`repository:${from}:pull`], ...(signal ? { signal } : {}) });
    if (res.statusCode === 201) {
      await drain(res);
      return true;
    }
    if (res.statusCode === 202) {
      await drain(res);
      return this.location(res, url, 'a blob upload');
    }
    throw await this.failure(res, `mount of blob ${digest}`);
  }

  /** Opens an upload session. */
  private async start(signal?: AbortSignal): Promise<URL> {
    const { res, url } = await this.send('POST', 'blobs/uploads/', signal ? { signal } : {});
    if (res.statusCode !== 202) throw await this.failure(res, 'start of a blob upload');
    await drain(res);
    return this.location(res, url, 'a blob upload');
  }

  /** Drops an upload session (best effort: an unfinished upload is garbage to the registry anyway). */
  async cancel(location: URL): Promise<void> {
    try {
      const { res } = await this.send('DELETE', location.href, { retries: 0 });
      discard(res.body);
    } catch {
      /* the registry purges stale uploads itself */
    }
  }

  /**
   * Uploads a blob, resuming after dropped connections and restarting when the registry lost the upload. The digest
   * is computed from the bytes sent and must match `blob.digest` when that is given; the registry's
   * Docker-Content-Digest must match it too.
   */
  async upload(blob: BlobBytes, options: UploadOptions = {}): Promise<UploadedBlob> {
    const signal = this.signal(options.signal);
    let location = options.location;
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw abortError(signal);
      let session: URL | undefined;
      try {
        session = location ?? (await this.start(signal));
        location = undefined;
        return await this.attempt(blob, session, signal, options.onBytes);
      } catch (err) {
        if (err instanceof SourceError) {
          if (session) await this.cancel(session);
          throw err.original;
        }
        const transient = err instanceof CarrierError && (err.code === 'CARRIER_REGISTRY_ERROR' || (err.code === 'CARRIER_NOT_FOUND' && err instanceof RegistryError));
        if (!transient || attempt >= this.maxRestarts || signal?.aborted) {
          if (session) await this.cancel(session);
          if (signal?.aborted) throw abortError(signal);
          throw err;
        }
        await this.client.retryWait(attempt, `upload of ${blob.what} to ${this.name}: ${(err as Error).message}`, signal);
      }
    }
  }

  private async attempt(blob: BlobBytes, session: URL, signal: AbortSignal | undefined, onBytes?: (n: number) => void): Promise<UploadedBlob> {
    let cur = await this.openAt(blob, 0);
    try {
      // Up to one chunk's worth and one byte more: a blob that fits goes in one PUT.
      while (cur.held <= this.chunkSize) {
        const r = await cur.next();
        if (r.done) {
          const body = Buffer.concat(cur.head, cur.held);
          onBytes?.(body.length);
          const digest = await this.finish(blob, cur.hash, body.length);
          await this.complete(session, digest, body, signal);
          return { digest, size: body.length };
        }
        cur.hash.update(r.value);
        cur.head.push(r.value);
        cur.held += r.value.length;
      }
      let location = session;
      let offset = 0;
      for (let tries = 0; ; tries++) {
        const sent = await this.stream(location, cur, offset, blob.size, signal, onBytes);
        if ('location' in sent) {
          const digest = await this.finish(blob, cur.hash, sent.size);
          await this.complete(sent.location, digest, undefined, signal);
          return { digest, size: sent.size };
        }
        if (tries >= MAX_RESUMES) throw sent.failure;
        await this.client.retryWait(tries, `PATCH to ${this.name}: ${(sent.failure as Error).message}`, signal);
        const status = await this.status(location, signal);
        if (status.received > sent.reached) {
          throw new RegistryError('CARRIER_REGISTRY_ERROR', `${this.name} has ${status.received} bytes of an upload that had sent ${sent.reached}: starting again`);
        }
        if (status.received > offset) tries = -1;
        location = status.location;
        offset = status.received;
        await cur.close();
        cur = await this.openAt(blob, offset);
      }
    } finally {
      await cur.close();
    }
  }

  /**
   * The blob's bytes from `offset`, from a fresh source: the bytes before it are read and hashed but not held, so the
   * hash covers the whole blob when the stream ends.
   */
  private async openAt(blob: BlobBytes, offset: number): Promise<OpenBlob> {
    let source: AsyncIterable<Buffer>;
    try {
      source = await blob.open();
    } catch (err) {
      throw new SourceError(err);
    }
    const it = source[Symbol.asyncIterator]();
    const cur: OpenBlob = {
      hash: createHash('sha256'),
      head: [],
      held: 0,
      next: () => it.next().catch((err: unknown) => Promise.reject(new SourceError(err))),
      close: async () => {
        await it.return?.(undefined).catch(() => {});
      },
    };
    let skipped = 0;
    while (skipped < offset) {
      const r = await cur.next();
      if (r.done) throw new SourceError(new CarrierError('CARRIER_DIGEST_MISMATCH', `${blob.what} ended at ${skipped} bytes, before the ${offset} the registry has`));
      cur.hash.update(r.value);
      const take = Math.min(r.value.length, offset - skipped);
      skipped += take;
      if (take < r.value.length) {
        cur.head.push(r.value.subarray(take));
        cur.held = r.value.length - take;
      }
    }
    return cur;
  }

  /**
   * One PATCH streaming everything from `offset` to the end of the blob: Content-Range and Content-Length for the
   * whole remaining range when the size is known (a chunked upload of one chunk), else a chunked-encoded stream. The
   * registry's Range must then say it has every byte sent.
   */
  private async stream(
    location: URL,
    cur: OpenBlob,
    offset: number,
    size: number | undefined,
    signal: AbortSignal | undefined,
    onBytes?: (n: number) => void,
  ): Promise<{ location: URL; size: number } | { failure: unknown; reached: number }> {
    let reached = offset;
    let ended = false;
    let sourceFailure: unknown;
    const body = async function* (): AsyncGenerator<Buffer> {
      for (const c of cur.head) {
        reached += c.length;
        onBytes?.(reached);
        yield c;
      }
      cur.head = [];
      cur.held = 0;
      for (;;) {
        let r: IteratorResult<Buffer>;
        try {
          r = await cur.next();
        } catch (err) {
          sourceFailure = err;
          throw err;
        }
        if (r.done) break;
        cur.hash.update(r.value);
        reached += r.value.length;
        onBytes?.(reached);
        yield r.value;
      }
      ended = true;
    };
    const range: Record<string, string> = size !== undefined && size > offset ? { 'content-range': `${offset}-${size - 1}`, 'content-length': String(size - offset) } : {};
    try {
      if (size !== undefined && size === offset) {
        // The registry has every byte: read the rest (none, or finish() refuses the size) and complete.
        for await (const _ of body());
        return { location, size: reached };
      }
      const { res, url } = await this.send('PATCH', location.href, {
        headers: { 'content-type': 'application/octet-stream', ...range },
        body: Readable.from(body(), { objectMode: false }),
        retries: 0,
        ...(signal ? { signal } : {}),
      });
      if (sourceFailure !== undefined) {
        discard(res.body);
        throw sourceFailure;
      }
      if (res.statusCode === 202) {
        await drain(res);
        const has = /^(?:bytes=)?0-(\d+)$/.exec(header(res, 'range') ?? '');
        const next = this.location(res, url, 'a chunk');
        // With Content-Length the registry may answer before the source has said it ended: the size it was given is enough.
        if ((ended || reached === size) && has && Number(has[1]) + 1 === reached) return { location: next, size: reached };
        return { failure: new RegistryError('CARRIER_REGISTRY_ERROR', `${this.name} answered a PATCH of bytes ${offset}-${reached - 1} with Range ${printable(header(res, 'range') ?? 'none', 64)}`), reached };
      }
      return { failure: await this.failure(res, `PATCH of bytes from ${offset} of an upload`), reached };
    } catch (err) {
      if (sourceFailure !== undefined) throw sourceFailure;
      if (err instanceof SourceError) throw err;
      if (signal?.aborted) throw abortError(signal);
      return { failure: err, reached };
    }
  }

  /** The digest of what was read, checked against what the blob should be. */
  private async finish(blob: BlobBytes, hash: ReturnType<typeof createHash>, size: number): Promise<string> {
    const digest = `sha256:${hash.digest('hex')}`;
    if ((blob.digest !== undefined && digest !== blob.digest) || (blob.size !== undefined && size !== blob.size)) {
      throw new SourceError(new CarrierError('CARRIER_DIGEST_MISMATCH', `${blob.what} read as ${size} bytes with ${digest}, expected ${blob.size ?? '?'} bytes with ${blob.digest}`));
    }
    try {
      await blob.verify?.();
    } catch (err) {
      throw new SourceError(err);
    }
    return digest;
  }

  /** GET on an upload: how many bytes the registry has, and where to continue. */
  private async status(location: URL, signal: AbortSignal | undefined): Promise<{ received: number; location: URL }> {
    const { res, url } = await this.send('GET', location.href, signal ? { signal } : {});
    if (res.statusCode !== 204 && res.statusCode !== 202) throw await this.failure(res, 'upload status');
    await drain(res);
    const range = /^(?:bytes=)?0-(\d+)$/.exec(header(res, 'range') ?? '');
    // The CNCF registry says `0-0` for an empty upload too: read as nothing received (a registry that had one byte
    // refuses the PATCH from 0, or stores a blob whose digest the closing PUT refuses, and the upload restarts).
    const received = range && range[1] !== '0' ? Number(range[1]) + 1 : 0;
    return { received, location: header(res, 'location') ? this.location(res, url, 'an upload status') : location };
  }

  /** The closing PUT (`?digest=`), with the last bytes when given; the registry must agree on the digest. */
  private async complete(location: URL, digest: string, body: Buffer | undefined, signal: AbortSignal | undefined): Promise<void> {
    const url = new URL(location.href);
    url.searchParams.set('digest', digest);
    const { res } = await this.send('PUT', url.href, {
      headers: { 'content-type': 'application/octet-stream', ...(body ? {} : { 'content-length': '0' }) },
      ...(body ? { body } : {}),
      ...(signal ? { signal } : {}),
    });
    if (res.statusCode !== 201 && res.statusCode !== 204) throw await this.failure(res, `completion of blob ${digest}`);
    await drain(res);
    const said = header(res, 'docker-content-digest');
    if (said !== undefined && said !== digest) {
      throw new RegistryError('CARRIER_DIGEST_MISMATCH', `${this.name} stored blob ${digest} as ${printable(said, 100)}: the bytes it received are not the bytes sent`);
    }
  }

  /**
   * A blob small enough to hold (a config): HEAD, a mount from repository `from` when given, else one upload. True
   * when uploaded.
   */
  async putBytes(bytes: Buffer, what: string, signal?: AbortSignal, from?: string): Promise<boolean> {
    const digest = sha256Digest(bytes);
    if (await this.has(digest, signal)) return false;
    const mounted = from !== undefined ? await this.mount(digest, from, signal) : undefined;
    if (mounted === true) return false;
    const open = async (): Promise<AsyncIterable<Buffer>> => (async function* () { yield bytes; })();
    await this.upload({ open, digest, size: bytes.length, what }, { ...(signal ? { signal } : {}), ...(mounted ? { location: mounted } : {}) });
    return true;
  }

  /** PUTs a manifest or index under `reference` (a tag or its digest); returns its digest, checked against the registry's. */
  async putManifest(reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
    const digest = sha256Digest(bytes);
    const { res } = await this.send('PUT', `manifests/${reference}`, { headers: { 'content-type': mediaType }, body: bytes, ...(signal ? { signal } : {}) });
    if (res.statusCode !== 201 && res.statusCode !== 200 && res.statusCode !== 202) throw await this.failure(res, `manifest ${reference}`);
    await drain(res);
    const said = header(res, 'docker-content-digest');
    if (said !== undefined && said !== digest) {
      throw new RegistryError('CARRIER_DIGEST_MISMATCH', `${this.name} stored manifest ${reference} as ${printable(said, 100)}, not ${digest}`);
    }
    return digest;
  }
}
