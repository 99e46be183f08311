// Writing sigstore signatures into a registry the way containers/image does (`sha256-<hex>.sig` tag, one layer per
// signature, the signature in the layer's `dev.cosignproject.cosign/signature` annotation). Debian builds skopeo with
// sigstore signing disabled ("Debian-local change: sigstore disabled"), so the tests sign here with node:crypto and
// let podman, which still verifies, judge the result.
import crypto from 'node:crypto';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const COSIGN_PAYLOAD_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';

export const sha256 = (b: Buffer): string => 'sha256:' + crypto.createHash('sha256').update(b).digest('hex');

export async function uploadBlob(registryUrl: string, repo: string, blob: Buffer): Promise<string> {
  const digest = sha256(blob);
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`blob upload start: HTTP ${start.status}`);
  const loc = new URL(start.headers.get('location')!, registryUrl);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

export async function putManifest(registryUrl: string, repo: string, tag: string, manifest: Buffer, mediaType = OCI_MANIFEST): Promise<void> {
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': mediaType } });
  if (res.status !== 201) throw new Error(`manifest put: HTTP ${res.status} ${await res.text()}`);
}

/** The payload containers/image signs: the manifest digest and the reference it is signed for. */
export function sigstorePayload(manifestDigest: string, dockerReference: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': manifestDigest },
        type: 'cosign container image signature',
      },
      optional: { creator: 'carrier tests', timestamp: 1700000000 },
    }),
  );
}

export function signPayload(privateKeyPem: string | crypto.KeyObject, payload: Buffer): string {
  return crypto.sign('sha256', payload, privateKeyPem).toString('base64');
}

export interface AttachedSignature {
  payload: Buffer;
  /** base64 signature */
  signature: string;
}

/** Writes (replaces) the `.sig` attachment of `manifestDigest` in `repo` with these signatures. */
export async function attachSigstoreSignatures(registryUrl: string, repo: string, manifestDigest: string, sigs: AttachedSignature[]): Promise<void> {
  const layers = [];
  for (const s of sigs) {
    const digest = await uploadBlob(registryUrl, repo, s.payload);
    layers.push({ mediaType: COSIGN_PAYLOAD_TYPE, digest, size: s.payload.length, annotations: { 'dev.cosignproject.cosign/signature': s.signature } });
  }
  const config = Buffer.from(
    JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', os: '', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: {} }),
  );
  const configDigest = await uploadBlob(registryUrl, repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers,
    }),
  );
  await putManifest(registryUrl, repo, `${manifestDigest.replace(':', '-')}.sig`, manifest);
}
