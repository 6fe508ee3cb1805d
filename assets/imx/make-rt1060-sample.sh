#!/bin/sh
# Rebuild rt1060-hab4-unsigned.bin: an unsigned i.MX RT1060 FlexSPI NOR image made by
# NXP's own nxpimage (spsdk), for the HAB4 signing tests and ceremonies. The application
# is 8 KiB of a fixed pattern behind a Cortex-M vector table (initial SP 0x20002000,
# reset vector 0x60002401), which nxpimage needs to recognise it.
#
#   sh assets/imx/make-rt1060-sample.sh [path/to/nxpimage]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
nxpimage=${1:-/opt/officiant-venv/bin/nxpimage}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/app.bin" <<'PY'
import struct, sys
body = bytes((i * 7 + 3) & 0xFF for i in range(8192 - 8))
open(sys.argv[1], "wb").write(struct.pack("<II", 0x20002000, 0x60002401) + body)
PY
cat > "$work/hab.yaml" <<YAML
options:
  flags: 0
  startAddress: 0x60000000
  ivtOffset: 0x1000
  initialLoadSize: 0x2000
  entryPointAddress: 0x60002401
  family: mimxrt1060
inputImageFile: $work/app.bin
YAML
"$nxpimage" hab export -c "$work/hab.yaml" -o "$work/out.bin" >/dev/null
mv "$work/out.bin" "$here/rt1060-hab4-unsigned.bin"
echo "wrote $here/rt1060-hab4-unsigned.bin"
