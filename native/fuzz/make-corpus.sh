#!/bin/sh
# Regenerates the committed seed corpus under native/fuzz/corpus/ (kept tiny: a few hundred bytes to a few KiB each).
# Needs GNU tar, gzip, zstd and python3. Deterministic up to the tools' versions (fixed mtimes, owners, order).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$here/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf "$out"
mkdir -p "$out/fuzz_tar_reader" "$out/fuzz_extract" "$out/fuzz_decoder" "$out/fuzz_tar_split" "$out/fuzz_tar_split_assemble"

# A small tree exercising files, dirs, symlinks, hardlinks, a fifo, a long name and a whiteout.
src=$work/src
mkdir -p "$src/dir/sub" "$src/etc"
printf 'hello\n' > "$src/dir/file.txt"
printf 'x' > "$src/dir/sub/one"
: > "$src/empty"
ln -s ../dir/file.txt "$src/etc/rel-link"
ln -s /etc/passwd "$src/etc/abs-link"
ln "$src/dir/file.txt" "$src/dir/hard"
mkfifo "$src/fifo"
long=$(printf 'n%.0s' $(seq 1 120))
printf 'long\n' > "$src/dir/$long"
printf 'gone' > "$src/dir/.wh.deleted"
: > "$src/dir/sub/.wh..wh..opq"
chmod 0555 "$src/dir/sub"
find "$src" -exec touch -h -d '2020-01-02 03:04:05' {} +

T="tar -b1 --sort=name --owner=0 --group=0 --numeric-owner --mtime=2020-01-02T03:04:05Z -C $src"
$T --format=gnu -cf "$work/gnu.tar" .
$T --format=pax --pax-option=delete=atime,delete=ctime -cf "$work/pax.tar" .
$T --format=ustar -cf "$work/ustar.tar" dir/file.txt dir/sub etc empty
# A PAX tar with an xattr, a fractional mtime and a big uid.
printf 'data' > "$work/x"
tar -b1 --format=pax --owner=4000000:4000000 --group=5:5 --numeric-owner -C "$work" \
  --pax-option='SCHILY.xattr.user.k=v,mtime:=1577934245.123456789' -cf "$work/xattr.tar" x

chmod -R u+w "$src"
# Tars without the padding/end blocks, and an empty archive.
head -c 1536 "$work/ustar.tar" > "$work/truncated.tar"
head -c 1024 /dev/zero > "$work/empty.tar"

for f in gnu pax ustar xattr truncated empty; do
  cp "$work/$f.tar" "$out/fuzz_tar_reader/$f.tar"
  cp "$work/$f.tar" "$out/fuzz_extract/$f.tar"
done
# Adversarial paths for the extractor (built with python: tar refuses to write some of them).
python3 - "$out/fuzz_extract" <<'PY'
import io, sys, tarfile
out = sys.argv[1]
tarfile.RECORDSIZE = 512  # no 10 KiB record padding: keep the seeds small
def mk(name, members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for ti, data in members:
            ti.mtime = 1577934245
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    open(f"{out}/{name}", "wb").write(buf.getvalue())
def f(name, data=b"", **kw):
    ti = tarfile.TarInfo(name); ti.size = len(data)
    for k, v in kw.items(): setattr(ti, k, v)
    return ti, data
def l(name, target, kind=tarfile.SYMTYPE):
    ti = tarfile.TarInfo(name); ti.type = kind; ti.linkname = target
    return ti, None
def d(name, mode=0o755):
    ti = tarfile.TarInfo(name); ti.type = tarfile.DIRTYPE; ti.mode = mode
    return ti, None
mk("escape-dotdot.tar", [f("../escape", b"x"), f("a/../../b", b"y")])
mk("symlink-then-write.tar", [l("up", "../../.."), f("up/pwned", b"z"), l("abs", "/"), f("abs/pwned", b"z")])
mk("hardlink-out.tar", [l("h", "../../etc/passwd", tarfile.LNKTYPE), f("f", b"q"), l("h2", "f", tarfile.LNKTYPE)])
mk("dir-replace.tar", [d("d", 0o500), f("d/x", b"1"), f("d", b"now a file"), d("d"), l("d/x", "/x")])
mk("whiteouts.tar", [d("w"), f("w/.wh.gone"), f("w/.wh..wh..opq"), f(".wh.top"), f("w/keep", b"k")])
PY

# Header shapes Go's archive/tar (and so podman) reads in its own way (issue 16), as raw headers: python's tarfile
# cannot write most of them. Each goes to the reader and the extractor (and so to the assembly target).
python3 - "$out/fuzz_tar_reader" "$out/fuzz_extract" <<'PY'
import sys
outs = sys.argv[1:]
def num(v, n):
    return (oct(v)[2:].rjust(n - 1, "0") + "\0").encode() if v >= 0 else (b"\xff" * n)
def hdr(name, size=0, type=b"0", mode=0o644, uid=0, gid=0, mtime=1577934245, link=b"", magic=b"ustar\x0000",
        prefix=b"", raw=None):
    b = bytearray(512)
    def put(off, val): b[off:off + len(val)] = val
    put(0, name); put(100, num(mode, 8)); put(108, uid if isinstance(uid, bytes) else num(uid, 8))
    put(116, num(gid, 8)); put(124, num(size, 12)); put(136, mtime if isinstance(mtime, bytes) else num(mtime, 12))
    put(156, type); put(157, link); put(257, magic); put(345, prefix)
    if raw: raw(b)
    put(148, b"        ")
    put(148, (oct(sum(b))[2:].rjust(6, "0") + "\0 ").encode())
    return bytes(b)
def pad(data): return data + b"\0" * (-len(data) % 512)
def entry(name, data=b"", **kw): return hdr(name, size=len(data), **kw) + pad(data)
def pax(records, type=b"x", name=b"PaxHeaders/x"):
    body = b""
    for k, v in records:
        rec = b" " + k + b"=" + v + b"\n"
        n = len(rec) + 1
        while len(str(n)) + len(rec) != n: n = len(str(n)) + len(rec)
        body += str(n).encode() + rec
    return entry(name, body, type=type)
def gnu(kind, value): return entry(b"././@LongLink", value + b"\0", type=kind, magic=b"ustar  \0")
END = b"\0" * 1024
seeds = {
    "prefix-any-version.tar": entry(b"file", b"x", prefix=b"some/dir", magic=b"ustar\0  ") + END,
    "star-prefix.tar": entry(b"file", b"x", prefix=b"star/dir", raw=lambda b: b.__setitem__(slice(508, 512), b"tar\0")) + END,
    "go17-gnu-prefix.tar": entry(b"foo", b"x", prefix=b"aaaa/bbbb", magic=b"ustar  \0") + END,
    "pax-long-numbers.tar": pax([(b"size", b"000000000000000000000001"), (b"uid", b"+0000000000000000000001000"),
                                 (b"mtime", b"00000000000000000001577934245.5"), (b"atime", b"-1.25")])
                            + entry(b"zeros", b"x") + END,
    "pax-empty-values.tar": pax([(b"path", b""), (b"linkpath", b""), (b"uid", b""), (b"SCHILY.xattr.user.e", b"")])
                            + entry(b"kept", b"x") + END,
    "unknown-types.tar": entry(b"acl", b"x", type=b"A") + entry(b"sol", b"10 uid=0\n", type=b"X") + entry(b"c", b"x", type=b"7") + END,
    "pax-then-end.tar": pax([(b"path", b"ghost")]) + END,
    "gnu-over-pax.tar": pax([(b"path", b"from-pax")]) + gnu(b"L", b"from-gnu") + entry(b"hdr", b"x") + gnu(b"L", b"") + entry(b"kept", b"y") + END,
    "hardlink-meta.tar": entry(b"t", b"x", mode=0o600, uid=1) + entry(b"l", type=b"1", link=b"t", mode=0o755, uid=2, mtime=1) + END,
    "global-nested.tar": pax([(b"comment", b"x")], type=b"g", name=b"deep/er/pax_global_header") + entry(b"f", b"x") + END,
    "old-times.tar": entry(b"old", b"x", mtime=b"\xff" * 12) + pax([(b"mtime", b"9999999999999")]) + entry(b"new", b"y") + END,
    "content-without-file.tar": entry(b"./", b"root content", type=b"0") + entry(b".wh.gone", b"whiteout content") + END,
    "uid-max.tar": entry(b"f", b"x", uid=b"\x80\0\0\0\xff\xff\xff\xff") + END,
}
for out in outs:
    for name, data in seeds.items():
        open(f"{out}/{name}", "wb").write(data)
PY

# Decoder: the first byte picks the mode (0 auto, 1 gzip, 2 zstd, 3 none; bits 2-3 the sink window).
gzip -9n -c "$work/ustar.tar" > "$work/u.gz"
zstd -q -19 -c "$work/ustar.tar" > "$work/u.zst"
{ printf '\000'; cat "$work/u.gz"; } > "$out/fuzz_decoder/auto-gzip"
{ printf '\014'; cat "$work/u.zst"; } > "$out/fuzz_decoder/auto-zstd"
{ printf '\001'; cat "$work/u.gz" "$work/u.gz"; } > "$out/fuzz_decoder/gzip-multimember"
{ printf '\006'; cat "$work/u.zst" "$work/u.zst"; } > "$out/fuzz_decoder/zstd-multiframe"
{ printf '\003'; head -c 700 "$work/ustar.tar"; } > "$out/fuzz_decoder/none"
{ printf '\000'; head -c 60 "$work/u.gz"; } > "$out/fuzz_decoder/gzip-truncated"
{ printf '\010'; head -c 40 "$work/u.zst"; } > "$out/fuzz_decoder/zstd-truncated"

# tar-split lines, as containers/storage writes them.
ts=$out/fuzz_tar_split
printf '{"type":2,"payload":"ZGlyL2ZpbGUudHh0AAAAAA==","position":0}\n' > "$ts/segment"
printf '{"type":1,"name":"dir/file.txt","size":6,"payload":"AAECAwQFBgc=","position":1}\n' > "$ts/file"
printf '{"type":1,"name_raw":"/w==","size":0,"payload":null,"position":2}\n' > "$ts/name-raw"
printf '{"type":1,"name":"a\\u00e9\\"\\\\\\/\\n","size":0,"payload":null,"position":3}\n' > "$ts/escapes"
printf '{"type":2,"payload":"","position":4}\n{"type":1,"name":"x","size":1,"payload":"AAAAAAAAAAA=","position":5}\n' > "$ts/two-lines"

# tar-split assembly: first byte even = a tar to extract and rebuild (the extractor's seeds), odd = tar-split lines
# assembled against a fixed layer directory whose symlinks point at a secret outside it.
ta=$out/fuzz_tar_split_assemble
for f in "$out"/fuzz_extract/*.tar; do
  b=$(basename "$f" .tar)
  { printf '\000'; cat "$f"; } > "$ta/tar-$b"
done
{ printf '\001'; printf '{"type":2,"payload":"aGVsbG8=","position":0}\n{"type":1,"name":"file","size":17,"payload":null,"position":1}\n{"type":1,"name":"up","size":31,"payload":null,"position":2}\n'; } > "$ta/lines-escape-symlink"
{ printf '\001'; printf '{"type":1,"name":"d/upup/secret","size":31,"payload":null}\n{"type":1,"name":"../secret","size":31}\n{"type":1,"name":"workdir/secret","size":31}\n{"type":1,"name":"abs","size":31}\n'; } > "$ta/lines-escape-paths"

du -sb "$out"
