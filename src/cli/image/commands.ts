// The image commands' definitions: `carrier image …` and the top-level names podman also gives them (images, rmi,
// pull, …). Exit codes, as podman 4.3.1 gives them: `image exists` 0 found, 1 not; `rmi` 1 not known, 2 in use;
// `tag`, `untag`, `inspect` 125 not known; anything else failing 125.
import { shortcut, type CommandDef, type FlagDef } from '../command.js';
import { pullFlags, registryFlags, signaturePolicyFlag as signaturePolicy } from './registry-flags.js';

const quiet = (help: string): FlagDef => ({ name: 'quiet', short: 'q', type: 'bool', help });
/** podman's signing flags, on push and copy. */
const signingFlags: FlagDef[] = [
  { name: 'sign-by', type: 'string', value: 'FINGERPRINT', help: 'sign the manifest with this GPG key of the keyring (GNUPGHOME); written to the lookaside' },
  { name: 'sign-by-sigstore-private-key', type: 'string', value: 'FILE', help: "sign with this sigstore private key (cosign's encrypted key, or a PKCS#8 PEM); written as a .sig attachment" },
  { name: 'sign-passphrase-file', type: 'string', value: 'FILE', help: "the signing key's passphrase: the file's first line (a sigstore key's is otherwise asked for on a terminal)" },
  { name: 'remove-signatures', type: 'bool', help: "do not carry the image's signatures to the destination" },
];
const force = (help: string): FlagDef => ({ name: 'force', short: 'f', type: 'bool', help });

export const list: CommandDef = {
  name: 'ls',
  aliases: ['list'],
  usage: '[options] [IMAGE]',
  summary: 'List images in local storage',
  flags: [
    { name: 'all', short: 'a', type: 'bool', help: 'show all images (by default intermediate images are hidden)' },
    { name: 'digests', type: 'bool', help: 'show digests' },
    { name: 'format', type: 'string', value: 'FORMAT', help: "'json', or a Go-template subset ({{.Repository}}, {{.Tag}}, {{.ID}}, {{.Digest}}, ...)" },
    { name: 'noheading', short: 'n', type: 'bool', help: 'do not print column headings' },
    { name: 'no-trunc', type: 'bool', help: 'do not truncate output' },
    quiet('display only image IDs'),
  ],
  args: { min: 0, max: 1 },
  run: async (ctx) => (await import('./list.js')).listImages(ctx),
};

const inspect: CommandDef = {
  name: 'inspect',
  usage: '[options] IMAGE [IMAGE...]',
  summary: 'Display the configuration of images as a JSON array',
  description: "The shape of podman image inspect's output.",
  flags: [{ name: 'format', short: 'f', type: 'string', value: 'FORMAT', help: "'json' (default) or a Go-template subset" }],
  args: { min: 1 },
  run: async (ctx) => (await import('./inspect.js')).inspectImages(ctx, false),
};

/** `carrier inspect`: podman's object-agnostic inspect, which knows only images here. */
export const inspectAny: CommandDef = {
  ...inspect,
  summary: 'Display the configuration of objects (images) as a JSON array',
  flags: [...inspect.flags!, { name: 'type', short: 't', type: 'string', value: 'TYPE', default: 'all', help: "'image' or 'all' (only images are inspected)" }],
  run: async (ctx) => (await import('./inspect.js')).inspectImages(ctx, true),
};

export const load: CommandDef = {
  name: 'load',
  usage: '[options]',
  summary: 'Load images from a docker-archive or oci-archive (plain, gzip or zstd) or an OCI layout directory',
  flags: [
    { name: 'input', short: 'i', type: 'string', value: 'FILE', help: 'read from FILE (default: standard input, when it is not a terminal)' },
    signaturePolicy,
    quiet('do not print progress'),
  ],
  run: async (ctx) => (await import('./load.js')).load(ctx),
};

export const tag: CommandDef = {
  name: 'tag',
  usage: 'IMAGE TARGET_NAME [TARGET_NAME...]',
  summary: 'Add names to a local image',
  args: { min: 2 },
  run: async (ctx) => (await import('./tag.js')).tag(ctx),
};

export const untag: CommandDef = {
  name: 'untag',
  usage: 'IMAGE [NAME...]',
  summary: 'Remove names from a local image (all of them when no NAME is given)',
  args: { min: 1 },
  run: async (ctx) => (await import('./tag.js')).untag(ctx),
};

export const remove: CommandDef = {
  name: 'rm',
  usage: '[options] IMAGE [IMAGE...]',
  summary: 'Remove images',
  description: 'An image with several names, given by name, only loses that name.',
  flags: [
    { name: 'all', short: 'a', type: 'bool', help: 'remove all images' },
    force('also remove the containers using the image, and images given by id with several names'),
  ],
  args: { min: 0 },
  run: async (ctx) => (await import('./rmi.js')).removeImages(ctx),
};

const exists: CommandDef = {
  name: 'exists',
  usage: 'IMAGE',
  summary: 'Exit 0 if the image is in local storage, 1 if not',
  args: { min: 1, max: 1 },
  run: async (ctx) => (await import('./tag.js')).exists(ctx),
};

const prune: CommandDef = {
  name: 'prune',
  usage: '[options]',
  summary: 'Remove dangling images',
  description:
    'Dangling: no name, no container, not the base of another image; with -a every image no container uses.\n' +
    'Layers go with them unless another image or a container still uses them. Prints the removed image ids.',
  flags: [{ name: 'all', short: 'a', type: 'bool', help: 'remove all images no container uses' }, force('do not ask for confirmation')],
  run: async (ctx) => (await import('./prune.js')).pruneImages(ctx),
};

export const pull: CommandDef = {
  name: 'pull',
  usage: '[options] IMAGE',
  summary: 'Pull an image from a registry into the store',
  flags: [...pullFlags, quiet('print only the image id')],
  args: { min: 1, max: 1 },
  run: async (ctx) => (await import('./pull.js')).pullImage(ctx),
};

export const push: CommandDef = {
  name: 'push',
  usage: '[options] IMAGE [DESTINATION]',
  summary: 'Push an image from the store to a registry or another transport',
  description:
    'DESTINATION is a registry name (host/repo:tag) or a transport reference: docker://NAME, oci:DIR[:TAG],\n' +
    "oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]. Without it the image goes to the registry its name\n" +
    'names. Blobs in the blob cache go up as they are (digests kept); other layers are rebuilt from their tar-split\n' +
    'and compressed (gzip unless --compression-format says zstd) as they stream. The manifest is written last: a\n' +
    'failed push leaves no tag.',
  flags: [
    ...registryFlags(),
    { name: 'compression-format', type: 'string', value: 'FORMAT', help: 'gzip, zstd or zstd:chunked: compress layers so, and recompress blobs compressed otherwise' },
    { name: 'force-compression', type: 'bool', help: 'recompress blobs compressed otherwise (default: on when --compression-format is given)' },
    { name: 'all', type: 'bool', help: 'every image of a manifest list (an image that is not one is pushed as it is)' },
    { name: 'digestfile', type: 'string', value: 'FILE', help: "write the pushed manifest's digest to FILE" },
    ...signingFlags,
    signaturePolicy,
    quiet('do not print progress'),
  ],
  args: { min: 1, max: 2 },
  run: async (ctx) => (await import('./push.js')).pushImage(ctx),
};

export const copy: CommandDef = {
  name: 'copy',
  usage: '[options] SOURCE DESTINATION',
  summary: 'Copy an image between transports, as skopeo copy does',
  description:
    'SOURCE and DESTINATION are transport references: docker://NAME, oci:DIR[:TAG], oci-archive:FILE[:TAG],\n' +
    'docker-archive:FILE[:NAME:TAG], containers-storage:NAME. Registry to registry streams the blobs through\n' +
    'without unpacking them, and mounts them when both are in one registry.',
  flags: [
    { name: 'authfile', type: 'string', value: 'FILE', help: 'auth.json for both registries' },
    ...registryFlags('src-'),
    ...registryFlags('dest-'),
    { name: 'dest-compress-format', type: 'string', value: 'FORMAT', help: 'gzip or zstd: recompress layers so' },
    { name: 'all', short: 'a', type: 'bool', help: 'every image of the source index, then the index itself (registry to registry)' },
    { name: 'digestfile', type: 'string', value: 'FILE', help: "write the copied manifest's digest to FILE" },
    ...signingFlags,
    { ...signaturePolicy, name: 'policy' },
    { ...signaturePolicy, help: 'the same as --policy (the name pull and load take)' },
    quiet('do not print progress'),
  ],
  args: { min: 2, max: 2 },
  run: async (ctx) => (await import('./push.js')).copyImage(ctx),
};

export const save: CommandDef = {
  name: 'save',
  usage: '[options] IMAGE [IMAGE...]',
  summary: 'Save images to an archive, as podman save writes them',
  flags: [
    { name: 'format', type: 'string', value: 'FORMAT', default: 'docker-archive', help: 'docker-archive, oci-archive or oci-dir' },
    { name: 'output', short: 'o', type: 'string', value: 'PATH', help: 'the archive file (default: standard output), or the directory for oci-dir' },
    { name: 'multi-image-archive', short: 'm', type: 'bool', help: 'several images in one docker-archive' },
    { name: 'compression', type: 'string', value: 'C', default: 'gzip', help: 'OCI formats, layers not in the blob cache: gzip (as podman) or none' },
    quiet('print nothing'),
  ],
  args: { min: 1 },
  run: async (ctx) => (await import('./save.js')).save(ctx),
};

export const checkout: CommandDef = {
  name: 'checkout',
  usage: '[options] IMAGE DIR',
  summary: "Flatten an image's layers into the new directory DIR",
  description:
    'DIR is created; an existing DIR must be empty. The tree is what the merged overlay view shows. File contents\n' +
    'are reflinked from the store where the filesystem can (XFS, btrfs), else copied.',
  flags: [
    { name: 'mode', type: 'string', value: 'MODE', default: 'auto', help: 'auto, reflink (fail unless every file can be cloned) or copy' },
    quiet('print nothing'),
  ],
  args: { min: 2, max: 2 },
  run: async (ctx) => (await import('./save.js')).checkout(ctx),
};

const trust: CommandDef = {
  name: 'trust',
  usage: 'COMMAND',
  summary: 'Show the signature policy that pulls are checked against',
  subcommands: [
    {
      name: 'show',
      usage: '[options] [REGISTRY]',
      summary: 'Display the signature policy (policy.json and registries.d) as podman does',
      flags: [
        { name: 'json', short: 'j', type: 'bool', help: 'output as JSON' },
        { name: 'noheading', short: 'n', type: 'bool', help: 'do not print column headings' },
        { name: 'raw', type: 'bool', help: 'print the policy file as it is' },
        { name: 'policypath', type: 'string', value: 'FILE', help: 'the policy file (default: ~/.config/containers/policy.json, else /etc/containers/policy.json)' },
        { name: 'registrypath', type: 'string', value: 'DIR', help: 'the registries.d directory (default: ~/.config/containers/registries.d, else /etc/containers/registries.d)' },
      ],
      args: { min: 0, max: 1 },
      run: async (ctx) => (await import('./trust.js')).trustShow(ctx),
    },
  ],
};

export const image: CommandDef = {
  name: 'image',
  usage: 'COMMAND',
  summary: 'Manage images',
  subcommands: [list, remove, tag, untag, load, exists, inspect, prune, pull, push, save, trust],
};

/** The image commands at the top level, under podman's names. */
export const imageShortcuts: CommandDef[] = [
  shortcut(list, 'images'),
  inspectAny,
  load,
  tag,
  untag,
  shortcut(remove, 'rmi'),
  pull,
  push,
  copy,
  save,
  checkout,
];
