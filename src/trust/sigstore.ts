/**
 * sigstore signatures with public keys: the payload (a layer of the `.sig` attachment) is signed with SHA-256 by an
 * ECDSA, RSA (PKCS#1 v1.5) or Ed25519 key; the base64 signature is the layer's `dev.cosignproject.cosign/signature`
 * annotation. node:crypto checks it; Fulcio certificates and Rekor are not implemented.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { keyFiles, readKeyFiles } from './key-files.js';
import { InvalidPayloadError, SIGSTORE_PAYLOAD_TYPE, SignatureRejected, parseSignedClaims, type SignedClaims } from './payload.js';
import { SIGSTORE_SIGNATURE_ANNOTATION } from './signatures.js';

export interface TrustedPublicKeys {
  keys: KeyObject[];
  source: string;
}

function parseKey(pem: Buffer, where: string): KeyObject {
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new SignatureRejected(`cannot read the public key in ${where}: ${(err as Error).message}`);
  }
}

export async function loadPublicKeys(req: { keyPath?: string; keyPaths?: string[]; keyData?: Buffer; keyDatas?: Buffer[] }): Promise<TrustedPublicKeys> {
  const keys: KeyObject[] = [];
  for await (const { file, data } of readKeyFiles(req, 'public key')) keys.push(parseKey(data, file));
  const files = keyFiles(req);
  const datas = req.keyData !== undefined ? [req.keyData] : (req.keyDatas ?? []);
  datas.forEach((d, i) => keys.push(parseKey(d, `the policy's keyData${datas.length > 1 ? `[${i}]` : ''}`)));
  return { keys, source: files.length > 0 ? files.join(', ') : "the policy's keyData" };
}

function verifies(key: KeyObject, payload: Buffer, signature: Buffer): boolean {
  try {
    if (key.asymmetricKeyType === 'ed25519') return verify(null, payload, key, signature);
    if (key.asymmetricKeyType === 'ec') return verify('sha256', payload, { key, dsaEncoding: 'der' }, signature);
    if (key.asymmetricKeyType === 'rsa') return verify('sha256', payload, key, signature);
    return false;
  } catch {
    return false;
  }
}

/** Verifies one sigstore signature; returns the signed claims or throws SignatureRejected. */
export function verifySigstore(
  sig: { payload: Buffer; annotations: Record<string, string>; from: string },
  trusted: TrustedPublicKeys,
): SignedClaims {
  const b64 = sig.annotations[SIGSTORE_SIGNATURE_ANNOTATION];
  if (b64 === undefined) throw new SignatureRejected(`the signature at ${sig.from} has no ${SIGSTORE_SIGNATURE_ANNOTATION} annotation`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new SignatureRejected(`the signature at ${sig.from} is not valid base64`);
  const signature = Buffer.from(b64, 'base64');
  if (!trusted.keys.some((k) => verifies(k, sig.payload, signature))) {
    throw new SignatureRejected(`the signature at ${sig.from} does not verify with any key in ${trusted.source}`);
  }
  try {
    return parseSignedClaims(sig.payload, SIGSTORE_PAYLOAD_TYPE);
  } catch (err) {
    if (err instanceof InvalidPayloadError) throw new SignatureRejected(`the signature at ${sig.from} has an invalid payload: ${err.message}`);
    throw err;
  }
}
