#!/bin/sh
# Cross-compiles prebuilds/linux-arm64/carrier-oci.node on an x64 Debian machine (`npm run prebuild:arm64`), linked as
# the x64 prebuild is (binding.gyp: libstdc++ and libzstd static, their symbols hidden), so it needs nothing beyond
# glibc at run time. Needs Debian's g++-aarch64-linux-gnu and libzstd-dev:arm64
# (`dpkg --add-architecture arm64 && apt-get update && apt-get install g++-aarch64-linux-gnu libzstd-dev:arm64`).
# The build runs in a scratch copy of the sources, so build/ (this machine's own addon) is left alone.
set -eu
repo="$(cd "$(dirname "$0")/.." && pwd)"
for tool in aarch64-linux-gnu-g++ aarch64-linux-gnu-strip; do
  command -v "$tool" >/dev/null || { echo "prebuild-arm64: $tool is missing: apt-get install g++-aarch64-linux-gnu" >&2; exit 1; }
done
[ -f /usr/lib/aarch64-linux-gnu/libzstd.a ] || {
  echo 'prebuild-arm64: /usr/lib/aarch64-linux-gnu/libzstd.a is missing: dpkg --add-architecture arm64 && apt-get update && apt-get install libzstd-dev:arm64' >&2
  exit 1
}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$repo/package.json" "$repo/binding.gyp" "$repo/native" "$work/"
ln -s "$repo/node_modules" "$work/node_modules"
cd "$work"
# Node's headers from the Node running this (node-gyp would download them otherwise); N-API: any version will do.
if [ -z "${npm_config_nodedir:-}" ]; then
  prefix="$(dirname "$(dirname "$(command -v node)")")"
  [ -f "$prefix/include/node/node_api.h" ] && export npm_config_nodedir="$prefix"
fi
CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
  "$repo/node_modules/.bin/prebuildify" --napi --strip --arch arm64 --strip-bin aarch64-linux-gnu-strip
mkdir -p "$repo/prebuilds/linux-arm64"
cp prebuilds/linux-arm64/carrier-oci.node "$repo/prebuilds/linux-arm64/carrier-oci.node"
echo "prebuilds/linux-arm64/carrier-oci.node"
