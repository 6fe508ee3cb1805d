#!/bin/sh
# Rebuild the unsigned i.MX samples the signing tests and ceremonies use, with NXP's own
# nxpimage (spsdk):
#
#   rt1060-hab4-unsigned.bin  an i.MX RT1060 FlexSPI NOR HAB image (IVT at file offset
#                             0, application at 0x60002000) for `sign --format imx-hab4`
#   imx93-ahab-unsigned.bin   an i.MX 93 AHAB container (SRK set none) with one Cortex-M33
#                             image, for `sign --format imx-ahab`
#
# The application is 8 KiB of a fixed pattern behind a Cortex-M vector table (initial SP
# 0x20002000, reset vector 0x60002401), which nxpimage needs to recognise it.
#
#   sh assets/imx/make-samples.sh [path/to/nxpimage]
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
"$nxpimage" hab export -c "$work/hab.yaml" -o "$work/hab.bin" >/dev/null
cat > "$work/ahab.yaml" <<YAML
family: mimx9352
revision: latest
target_memory: standard
output: $work/ahab.bin
output_format: bin
containers:
  - container:
      srk_set: none
      used_srk_id: 0
      fuse_version: 0
      sw_version: 1
      images:
        - image_path: $work/app.bin
          load_address: '0x201E0000'
          entry_point: '0x201E0000'
          image_type: executable
          core_id: cortex-m33
          hash_type: sha384
YAML
"$nxpimage" ahab export -c "$work/ahab.yaml" >/dev/null
mv "$work/hab.bin" "$here/rt1060-hab4-unsigned.bin"
mv "$work/ahab.bin" "$here/imx93-ahab-unsigned.bin"
echo "wrote rt1060-hab4-unsigned.bin and imx93-ahab-unsigned.bin in $here"
