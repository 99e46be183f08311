// The push side of the distribution spec, over RegistryClient.request (its authentication, retries and limits):
// HEAD before upload, cross-repository mount, monolithic upload of a blob that fits one chunk and chunked PATCH with
// Content-Range for a longer one, each chunk held in memory until the registry has it, so a dropped connection
// resumes from the offset the registry's upload status reports, or, when the registry lost the upload (the CNCF
// registry cancels an upload whose data does not match its state), restarts the blob from a fresh source stream.
// A manifest is PUT only by the caller, after every blob it names is in place.
import { createHash } from 'node:crypto';
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
  /** Bytes per PATCH; a blob no longer than this goes in one PUT. Default 8 MiB. */
  chunkSize?: number;
  /** Fresh starts of one blob's upload after the registry lost it. Default 3. */
  maxRestarts?: number;
  signal?: AbortSignal;
}

/** Times one chunk is sent again after a failure before its upload is given up (and restarted). */
const MAX_CHUNK_RESENDS = 5;

/** Source errors end the upload as they are; only the registry's failures restart it. */
class SourceError extends Error {
  constructor(readonly original: unknown) {
    super('source failed');
  }
}

/** Reads a stream in chunks of `size` bytes (the last shorter). */
async function* chunks(source: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const c of source) {
    let chunk = c;
    while (have + chunk.length >= size) {
      const take = size - have;
      parts.push(chunk.subarray(0, take));
      yield Buffer.concat(parts, size);
      chunk = chunk.subarray(take);
      parts = [];
      have = 0;
    }
    if (chunk.length > 0) {
      parts.push(chunk);
      have += chunk.length;
    }
  }
  if (have > 0) yield Buffer.concat(parts, have);
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
    let source: AsyncIterable<Buffer>;
    try {
      source = await blob.open();
    } catch (err) {
      throw new SourceError(err);
    }
    const it = chunks(source, this.chunkSize)[Symbol.asyncIterator]();
    const next = (): Promise<IteratorResult<Buffer>> => it.next().catch((err: unknown) => Promise.reject(new SourceError(err)));
    const hash = createHash('sha256');
    let offset = 0;
    let location = session;
    try {
      let cur = await next();
      let ahead = cur.done ? undefined : next();
      ahead?.catch(() => {});
      if (!cur.done && (await ahead!).done) {
        // One chunk: the whole blob in one PUT.
        const body = cur.value;
        hash.update(body);
        onBytes?.(body.length);
        const digest = await this.finish(blob, hash, body.length);
        await this.complete(location, digest, body, signal);
        return { digest, size: body.length };
      }
      while (!cur.done) {
        const body = cur.value;
        hash.update(body);
        location = await this.patch(location, body, offset, signal);
        offset += body.length;
        onBytes?.(offset);
        cur = await ahead!;
        ahead = cur.done ? undefined : next();
        ahead?.catch(() => {});
      }
      const digest = await this.finish(blob, hash, offset);
      await this.complete(location, digest, undefined, signal);
      return { digest, size: offset };
    } finally {
      await it.return?.(undefined).catch(() => {});
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

  /**
   * Sends one chunk at `offset`. After a failure, asks the registry how much it has: the rest of the chunk goes from
   * there when that is inside this chunk; otherwise the upload is lost (the caller restarts it).
   */
  private async patch(location: URL, chunk: Buffer, offset: number, signal: AbortSignal | undefined): Promise<URL> {
    let loc = location;
    let from = 0;
    for (let tries = 0; ; tries++) {
      const part = chunk.subarray(from);
      let failure: unknown;
      try {
        const end = offset + chunk.length - 1;
        const { res, url } = await this.send('PATCH', loc.href, {
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset + from}-${end}` },
          body: part,
          retries: 0,
          ...(signal ? { signal } : {}),
        });
        if (res.statusCode === 202) {
          await drain(res);
          return this.location(res, url, 'a chunk');
        }
        failure = await this.failure(res, `chunk ${offset + from}-${end} of an upload`);
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        failure = err;
      }
      if (tries >= MAX_CHUNK_RESENDS) throw failure;
      await this.client.retryWait(tries, `PATCH to ${this.name}: ${(failure as Error).message}`, signal);
      const status = await this.status(loc, signal);
      const have = status.received - offset;
      if (have < 0 || have > chunk.length) {
        throw new RegistryError('CARRIER_REGISTRY_ERROR', `${this.name} has ${status.received} bytes of an upload that had reached ${offset}: starting again`);
      }
      loc = status.location;
      from = have;
      if (from === chunk.length) return loc;
    }
  }

  /** GET on an upload: how many bytes the registry has, and where to continue. */
  private async status(location: URL, signal: AbortSignal | undefined): Promise<{ received: number; location: URL }> {
    const { res, url } = await this.send('GET', location.href, signal ? { signal } : {});
    if (res.statusCode !== 204 && res.statusCode !== 202) throw await this.failure(res, 'upload status');
    await drain(res);
    const range = /^(?:bytes=)?0-(\d+)$/.exec(header(res, 'range') ?? '');
    return { received: range ? Number(range[1]) + 1 : 0, location: header(res, 'location') ? this.location(res, url, 'an upload status') : location };
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
