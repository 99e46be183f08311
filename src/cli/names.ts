// Image names as podman's tables show them: a repository column and a tag column.

/** `quay.io/x/y:2` → repo `quay.io/x/y`, tag `2`; `repo@sha256:…` → tag `<none>`; no name → `<none>` twice. */
export function splitName(name: string | undefined): { repo: string; tag: string } {
  if (name === undefined) return { repo: '<none>', tag: '<none>' };
  const at = name.indexOf('@');
  if (at !== -1) return { repo: name.slice(0, at), tag: '<none>' };
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) return { repo: name.slice(0, colon), tag: name.slice(colon + 1) };
  return { repo: name, tag: '<none>' };
}
