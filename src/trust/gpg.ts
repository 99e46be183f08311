/**
 * Simple signing (GPG): the signature is an OpenPGP signed message whose literal data is the payload. OpenPGP is
 * left to the `openpgp` package; this file only decides which keys are trusted and what the verified data says.
 */
// openpgp is loaded when a GPG key or signature is first read: most pulls never need it (≈ 100 ms, 20 MiB).
import type * as OpenPGP from 'openpgp';
export const openpgpModule = (): Promise<typeof OpenPGP> => import('openpgp');
import { keyFiles, readKeyFiles } from './key-files.js';
import { InvalidPayloadError, SIMPLE_SIGNING_TYPE, SignatureRejected, parseSignedClaims, type SignedClaims } from './payload.js';

export interface TrustedGpgKeys {
  keys: OpenPGP.Key[];
  /** Where they came from, for messages: the key files, or "keyData". */
  source: string;
}

async function readKeyBytes(data: Buffer, where: string): Promise<OpenPGP.Key[]> {
  try {
    const text = data.toString('latin1');
    if (text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) return await (await openpgpModule()).readKeys({ armoredKeys: data.toString('utf8') });
    return await (await openpgpModule()).readKeys({ binaryKeys: new Uint8Array(data) });
  } catch (err) {
    throw new SignatureRejected(`cannot read the GPG public keys in ${where}: ${(err as Error).message}`);
  }
}

export async function loadGpgKeys(req: { keyPath?: string; keyPaths?: string[]; keyData?: Buffer }): Promise<TrustedGpgKeys> {
  const keys: OpenPGP.Key[] = [];
  for await (const { file, data } of readKeyFiles(req, 'GPG key')) keys.push(...(await readKeyBytes(data, file)));
  if (req.keyData !== undefined) keys.push(...(await readKeyBytes(req.keyData, 'the policy\'s keyData')));
  const source = req.keyData !== undefined ? "the policy's keyData" : keyFiles(req).join(', ');
  if (keys.length === 0) throw new SignatureRejected(`no GPG public keys in ${source}`);
  return { keys, source };
}

/**
 * Verifies one simple-signing blob against the trusted keys; returns the signed claims and the signer's
 * fingerprint, or throws SignatureRejected saying why.
 */
export async function verifySimpleSigning(blob: Buffer, trusted: TrustedGpgKeys, from: string): Promise<SignedClaims & { signer: string }> {
  let message: OpenPGP.Message<Uint8Array>;
  try {
    message = await (await openpgpModule()).readMessage({ binaryMessage: new Uint8Array(blob) });
  } catch (err) {
    throw new SignatureRejected(`the signature at ${from} is not an OpenPGP message: ${(err as Error).message}`);
  }
  const signerIds = message.getSigningKeyIDs();
  // As containers/image: the signer must be one of the trusted keys itself, not a subkey of one (podman refuses
  // "Signature by key <subkey> is not accepted").
  const signingKey = trusted.keys.find((k) => signerIds.some((id) => k.getKeyID().equals(id)));
  if (signingKey === undefined) {
    const ids = signerIds.map((id) => id.toHex().toUpperCase()).join(', ') || 'an unknown key';
    const parent = trusted.keys.find((k) => signerIds.some((id) => k.getKeys(id).length > 0));
    if (parent !== undefined) {
      throw new SignatureRejected(
        `the signature at ${from} is signed by subkey ${ids} of ${parent.getFingerprint().toUpperCase()}; only signatures by a primary key in ${trusted.source} are accepted`,
      );
    }
    throw new SignatureRejected(`the signature at ${from} is signed by key ${ids}, which is not in ${trusted.source}`);
  }
  let data: Uint8Array;
  try {
    const result = await (await openpgpModule()).verify({ message, verificationKeys: trusted.keys, expectSigned: true, format: 'binary' });
    data = result.data;
  } catch (err) {
    throw new SignatureRejected(`the signature at ${from} does not verify with key ${signingKey.getFingerprint().toUpperCase()}: ${(err as Error).message}`);
  }
  try {
    return { ...parseSignedClaims(data, SIMPLE_SIGNING_TYPE), signer: signingKey.getFingerprint().toUpperCase() };
  } catch (err) {
    if (err instanceof InvalidPayloadError) throw new SignatureRejected(`the signature at ${from} has an invalid payload: ${err.message}`);
    throw err;
  }
}
