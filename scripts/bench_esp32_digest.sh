#!/bin/sh
# Memory and speed of the streaming ESP32 Secure Boot V2 image digest on a 1 GiB + 1 byte
# image: max RSS must stay flat (a few MiB), and the digest must equal sha256sum of the
# image padded with 0xFF to 4 KiB. Usage: scripts/bench_esp32_digest.sh [--release]
set -eu
cd "$(dirname "$0")/.."
profile=debug
[ "${1:-}" = "--release" ] && profile=release
if [ "$profile" = release ]; then cargo build -q --release --example esp32_image_digest
else cargo build -q --example esp32_image_digest; fi
bin=target/$profile/examples/esp32_image_digest
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
head -c 1073741825 /dev/urandom > "$dir/image.bin"
out=$(/usr/bin/time -f "%e s, max RSS %M KiB" -o "$dir/time" "$bin" "$dir/image.bin")
want=$( { cat "$dir/image.bin"; head -c 4095 /dev/zero | tr '\0' '\377'; } | sha256sum | cut -d' ' -f1)
echo "officiant: $out ($(cat "$dir/time"))"
echo "sha256sum: $want 1073745920"
[ "$out" = "$want 1073745920" ] && echo "digest and padded length match"
