#!/usr/bin/env bash
# Officiant signing against its peers, side by side, with peak resident memory.
#
#   (a) a 1 GiB payload, raw ECDSA P-256: officiant on the rehearsal token (sim) vs
#       `openssl dgst -sha256 -sign` with the same key as a PEM file.  Target: ≤ 1.2×.
#   (b) 1000 ECDSA P-256 signatures on SoftHSM: one officiant batch (one login) vs a
#       shell loop of `openssl dgst -engine pkcs11 -sign`.            Target: ≥ 20×.
#   (b′) the same batch under one approved request (a policy puts the key under a
#       quorum of 1; the request allows the batch; one ssh-keygen approval) vs the same
#       loop.                                                          Target: ≥ 20×.
#   (c) ESP32 Secure Boot V2, 4 MiB image: officiant (sim) vs `espsecure sign-data`
#       with the same key file.                                       Target: ≥ 10×.
#   (d) what approvals add to one signing call: one small payload signed without a
#       policy, then with an approved request (best of BENCH_RUNS_ONE runs, 20), on
#       SoftHSM and on the sim.                                        Target: < 2 ms.
#   (e) NXP HAB4, 16 MiB i.MX RT1060 image, RSA-2048 CSF and IMG keys: officiant (sim)
#       signs nxpimage's unsigned image vs `nxpimage hab export` building the signed one
#       with the same keys as files.                  Target: ≥ 10×, peak RSS < 32 MiB.
#   (f) `officiant transcript verify --head` of a 100,000-entry transcript (written by
#       the bench), and its peak memory against a 10,000-entry one.
#                                                  Target: < 1 s, memory not growing.
#
# Prints a Markdown table for docs/PERFORMANCE.md. Release build; wall time is the best
# of BENCH_RUNS runs (page cache warm); memory is the peak RSS from /usr/bin/time.
# Environment: BENCH_DIR (scratch, default a new temp dir), BENCH_SIZE_MIB (1024),
# BENCH_N (1000), BENCH_RUNS (3).
# BENCH_HAB4_MIB (16), BENCH_TRANSCRIPT_N (100000), BENCH_ONLY (row groups to run: a,
# b (b, b′ and d), c, e, f; e.g. "a,e"; default all).
set -euo pipefail
# PIN files the bench writes are for its own tokens: private, like an operator's.
umask 077

ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${BENCH_DIR:-$(mktemp -d /tmp/officiant-bench.XXXXXX)}
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
N=${BENCH_N:-1000}
RUNS=${BENCH_RUNS:-3}
HAB4_MIB=${BENCH_HAB4_MIB:-16}
want() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; }
VENV=${OFFICIANT_ORACLE_VENV:-/opt/officiant-venv}/bin
MODULE=/usr/lib/softhsm/libsofthsm2.so
ENGINE=$(ls /usr/lib/*/engines-3/pkcs11.so /usr/lib/*/engines-3/libpkcs11.so 2>/dev/null | head -1 || true)
mkdir -p "$W"
log() { echo "bench: $*" >&2; }

log "scratch $W; building release"
(cd "$ROOT" && cargo build --release --quiet --bin officiant)
BIN=$ROOT/target/release/officiant

# best WALL_S and PEAK_KB over $RUNS runs of "$@"; `pre` (a function name in $PRE) runs
# before each run (removes outputs).
WALL=0
PEAK=0
measure() {
    local best="" peak=0 i
    for ((i = 0; i < RUNS; i++)); do
        [ -n "${PRE:-}" ] && $PRE
        local t0 t1
        t0=$(date +%s%N)
        /usr/bin/time -f "%M" -o "$W/time.txt" "$@" >"$W/out.txt" 2>"$W/err.txt" || {
            log "FAILED: $*"
            cat "$W/err.txt" >&2
            return 1
        }
        t1=$(date +%s%N)
        # Wall time in 0.1 ms steps (time's own %e has 10 ms steps, too coarse for (c) and (d)).
        t=$(awk "BEGIN{printf \"%.4f\", ($t1 - $t0) / 1e9}")
        read -r m <"$W/time.txt"
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
        if [ "$m" -gt "$peak" ]; then peak=$m; fi
    done
    WALL=$best
    PEAK=$peak
}
# Peer (PEER array) and officiant (OURS array) run alternately RUNS times, so a change
# in machine load hits both alike; sets P_WALL P_PEAK O_WALL O_PEAK (best wall, max RSS).
pair() {
    local i r=$RUNS
    P_WALL="" P_PEAK=0 O_WALL="" O_PEAK=0
    RUNS=1
    for ((i = 0; i < r; i++)); do
        measure "${PEER[@]}" || return 1
        if [ -z "$P_WALL" ] || awk "BEGIN{exit !($WALL < $P_WALL)}"; then P_WALL=$WALL; fi
        if [ "$PEAK" -gt "$P_PEAK" ]; then P_PEAK=$PEAK; fi
        measure "${OURS[@]}" || return 1
        if [ -z "$O_WALL" ] || awk "BEGIN{exit !($WALL < $O_WALL)}"; then O_WALL=$WALL; fi
        if [ "$PEAK" -gt "$O_PEAK" ]; then O_PEAK=$PEAK; fi
    done
    RUNS=$r
}
mib() { awk "BEGIN{printf \"%.1f MiB\", $1/1024}"; }
ratio() { awk "BEGIN{ if ($2 > 0) printf \"%.2f\", $1/$2; else print \"-\" }"; }

# Keys made by openssl; the same files go into the sim and to the peers.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/ec.pem" 2>/dev/null
openssl pkey -in "$W/ec.pem" -pubout -out "$W/ec.pub.pem"
echo "bench-user-pin" >"$W/pin"
# (e)'s HAB4 PKI: four RSA-2048 SRKs (CA), CSF and IMG keys issued by SRK1.
printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = X\n[v3_ca]\nbasicConstraints = critical,CA:true\nkeyUsage = keyCertSign\nsubjectKeyIdentifier = hash\n[v3_usr]\nbasicConstraints = CA:false\nsubjectKeyIdentifier = hash\n' >"$W/hab.cnf"
for k in SRK1 SRK2 SRK3 SRK4 CSF IMG; do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/$k.pem" 2>/dev/null
done
for k in SRK1 SRK2 SRK3 SRK4; do
    openssl req -x509 -new -key "$W/$k.pem" -subj "/CN=$k" -days 3650 -config "$W/hab.cnf" \
        -extensions v3_ca -out "$W/$k.crt.pem"
done
for k in CSF IMG; do
    openssl req -new -key "$W/$k.pem" -subj "/CN=$k" -config "$W/hab.cnf" -out "$W/$k.csr"
    openssl x509 -req -in "$W/$k.csr" -CA "$W/SRK1.crt.pem" -CAkey "$W/SRK1.pem" -set_serial 7 \
        -days 3650 -extfile "$W/hab.cnf" -extensions v3_usr -out "$W/$k.crt.pem" 2>/dev/null
done
rm -rf "$W/token" && mkdir -p "$W/token"
log "importing the key into the sim"
(cd "$ROOT" && BENCH_SIM_DIR="$W/token" BENCH_PIN_FILE="$W/pin" BENCH_KEYS="bench-ec=$W/ec.pem,hab-csf=$W/CSF.pem,hab-img=$W/IMG.pem" \
    cargo test --quiet --test it -- --ignored --exact sign_bench_setup::bench_setup_import_keys_into_sim >/dev/null 2>&1)
SIM=(--backend "sim:$W/token" --pin-source "file:$W/pin")

ROWS=()

# (a) 1 GiB raw.
if want a; then
log "(a) ${SIZE_MIB} MiB payload"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$W/big.bin"
cat "$W/big.bin" >/dev/null
rm_a() { rm -f "$W/big.sig" "$W/big.ossl.sig"; }
PRE=rm_a
PEER=(openssl dgst -sha256 -sign "$W/ec.pem" -out "$W/big.ossl.sig" "$W/big.bin")
OURS=("$BIN" sign "${SIM[@]}" --transcript "$W/transcript.jsonl" --key bench-ec --format raw "$W/big.bin" -o "$W/big.sig")
pair
A_OSSL=$P_WALL A_OSSL_M=$P_PEAK A_OFF=$O_WALL A_OFF_M=$O_PEAK
openssl dgst -sha256 -verify "$W/ec.pub.pem" -signature "$W/big.sig" "$W/big.bin" >/dev/null
rm -f "$W/big.bin"
ROWS+=("| (a) ${SIZE_MIB} MiB payload, raw ECDSA P-256 | officiant (sim) ${A_OFF} s, $(mib "$A_OFF_M") | \`openssl dgst -sha256 -sign\` ${A_OSSL} s, $(mib "$A_OSSL_M") | $(ratio "$A_OFF" "$A_OSSL")× of openssl's time | ≤ 1.2× |")
fi

# (b) SoftHSM, N signatures. Officiant runs BENCH_RUNS times (best wall time), the
# loop once (it takes tens of seconds).
if want b; then
log "(b) $N signatures on SoftHSM"
mkdir -p "$W/softhsm/tokens" "$W/many"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$W/softhsm/tokens" >"$W/softhsm/softhsm2.conf"
export SOFTHSM2_CONF=$W/softhsm/softhsm2.conf
softhsm2-util --init-token --free --label bench --so-pin 12345678 --pin 87654321 >/dev/null
pkcs11-tool --module "$MODULE" --token-label bench --login --pin 87654321 \
    --keypairgen --key-type EC:prime256v1 --label bench-ec --id 01 >/dev/null 2>&1
pkcs11-tool --module "$MODULE" --token-label bench --read-object --type pubkey --label bench-ec \
    -o "$W/hsm.pub.der" >/dev/null 2>&1
openssl pkey -pubin -inform DER -in "$W/hsm.pub.der" -out "$W/hsm.pub.pem"
echo 87654321 >"$W/hsm-pin"
for ((i = 0; i < N; i++)); do head -c 4096 /dev/urandom >"$W/many/p$i.bin"; done
cat >"$W/openssl-pkcs11.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE
MODULE_PATH = $MODULE
init = 0
EOF
ossl_loop() {
    local i
    for ((i = 0; i < N; i++)); do
        OPENSSL_CONF=$W/openssl-pkcs11.cnf openssl dgst -engine pkcs11 -keyform engine \
            -sign "pkcs11:token=bench;object=bench-ec;type=private;pin-value=87654321" \
            -sha256 -out "$W/many.out/p$i.bin.sig" "$W/many/p$i.bin" 2>/dev/null
    done
}
export -f ossl_loop
export N W MODULE
# Each run writes into a new directory: deleting the last run's 1000 files just before
# would slow the next file creations (ext4 skips recently freed inodes), for either tool.
B_RUN=0
fresh_b() {
    B_RUN=$((B_RUN + 1))
    mkdir -p "$W/many.out.$B_RUN"
    ln -sfn "$W/many.out.$B_RUN" "$W/many.out"
}
PRE=fresh_b
RUNS_SAVED=$RUNS
RUNS=1
if [ -n "$ENGINE" ]; then
    measure bash -c ossl_loop
    B_OSSL=$WALL B_OSSL_M=$PEAK
else
    B_OSSL=""
fi
RUNS=$RUNS_SAVED
B_OFF=""
if measure "$BIN" sign --backend "pkcs11:token=bench?module-path=$MODULE" --pin-source "file:$W/hsm-pin" \
    --key bench-ec --format raw "$W"/many/p*.bin --out-dir "$W/many.out/"; then
    B_OFF=$WALL B_OFF_M=$PEAK
    # openssl judges every signature of the last run.
    for ((i = 0; i < N; i++)); do
        openssl dgst -sha256 -verify "$W/hsm.pub.pem" -signature "$W/many.out/p$i.bin.sig" "$W/many/p$i.bin" >/dev/null ||
            { log "(b) officiant signature $i does not verify"; exit 1; }
    done
else
    B_WHY=$(head -1 "$W/err.txt")
fi
if [ -n "$B_OFF" ] && [ -n "$B_OSSL" ]; then
    ROWS+=("| (b) $N ECDSA P-256 signatures, SoftHSM | officiant batch ${B_OFF} s, $(mib "$B_OFF_M") | openssl engine loop ${B_OSSL} s, $(mib "$B_OSSL_M") (per process) | $(ratio "$B_OSSL" "$B_OFF")× faster | ≥ 20× |")
else
    ROWS+=("| (b) $N ECDSA P-256 signatures, SoftHSM | pending: ${B_WHY:-no result} | openssl engine loop ${B_OSSL:-n/a} s, $(mib "${B_OSSL_M:-0}") (per process) | - | ≥ 20× |")
fi

# (d), first half: one signature on SoftHSM before any policy exists.
RUNS_ONE=${BENCH_RUNS_ONE:-20}
head -c 4096 /dev/urandom >"$W/one.bin"
rm_one() { rm -f "$W/one.bin.sig"; }
PRE=rm_one
RUNS_SAVED=$RUNS
RUNS=$RUNS_ONE
HSM=(--backend "pkcs11:token=bench?module-path=$MODULE" --pin-source "file:$W/hsm-pin")
measure "$BIN" sign "${HSM[@]}" --transcript "$W/one.jsonl" --key bench-ec --format raw "$W/one.bin" -o "$W/one.bin.sig"
D_HSM_PLAIN=$WALL
measure "$BIN" sign "${SIM[@]}" --transcript "$W/one.jsonl" --key bench-ec --format raw "$W/one.bin" -o "$W/one.bin.sig"
D_SIM_PLAIN=$WALL
RUNS=$RUNS_SAVED

# (b′) The key under a policy (quorum 1), one approver key made by ssh-keygen.
log "(b′) $N signatures under one approved request"
ssh-keygen -q -t ed25519 -N '' -C approver -f "$W/approver"
echo "approver $(cut -d' ' -f1,2 "$W/approver.pub")" >"$W/allowed_signers"
printf 'allowed-signers = "allowed_signers"\n\n[keys.bench-ec]\napprovers = ["approver"]\nquorum = 1\n' >"$W/policy.toml"
echo 12345678 >"$W/hsm-so-pin"
"$BIN" policy set --backend "pkcs11:token=bench?module-path=$MODULE" --so-pin-source "file:$W/hsm-so-pin" \
    --policy "$W/policy.toml" --transcript "$W/policy.jsonl" >/dev/null
# A new request and its approval for each run (made outside the timed command).
REQ_N=0
fresh_request() { # backend, uses
    REQ_N=$((REQ_N + 1))
    "$BIN" request create --backend "$1" --key bench-ec --max-uses "$2" --valid-for 1h \
        --description "bench run $REQ_N" -o "$W/req$REQ_N.json" >/dev/null
    ssh-keygen -q -Y sign -f "$W/approver" -n officiant-approval "$W/req$REQ_N.json" 2>/dev/null
    ln -sfn "$W/req$REQ_N.json" "$W/req.json"
    ln -sfn "$W/req$REQ_N.json.sig" "$W/req.json.sig"
}
fresh_bp() {
    fresh_b
    fresh_request "pkcs11:token=bench?module-path=$MODULE" "$N"
}
PRE=fresh_bp
BP_OFF=""
if measure "$BIN" sign "${HSM[@]}" --transcript "$W/bp.jsonl" --key bench-ec --format raw "$W"/many/p*.bin \
    --out-dir "$W/many.out/" --request "$W/req.json" --approval "$W/req.json.sig"; then
    BP_OFF=$WALL BP_OFF_M=$PEAK
    for ((i = 0; i < N; i++)); do
        openssl dgst -sha256 -verify "$W/hsm.pub.pem" -signature "$W/many.out/p$i.bin.sig" "$W/many/p$i.bin" >/dev/null ||
            { log "(b′) officiant signature $i does not verify"; exit 1; }
    done
else
    BP_WHY=$(head -1 "$W/err.txt")
fi
if [ -n "$BP_OFF" ] && [ -n "$B_OSSL" ]; then
    ROWS+=("| (b′) the same $N under one approved request | officiant batch ${BP_OFF} s, $(mib "$BP_OFF_M") | openssl engine loop ${B_OSSL} s (as in b) | $(ratio "$B_OSSL" "$BP_OFF")× faster | ≥ 20× |")
else
    ROWS+=("| (b′) the same $N under one approved request | failed: ${BP_WHY:-no result} | openssl engine loop ${B_OSSL:-n/a} s | - | ≥ 20× |")
fi

# (d), second half: one signature under an approved request (a request of many uses).
fresh_request "pkcs11:token=bench?module-path=$MODULE" 1000
RUNS=$RUNS_ONE
PRE=rm_one
measure "$BIN" sign "${HSM[@]}" --transcript "$W/one.jsonl" --key bench-ec --format raw "$W/one.bin" -o "$W/one.bin.sig" \
    --request "$W/req.json" --approval "$W/req.json.sig"
D_HSM_APPR=$WALL
RUNS=$RUNS_SAVED
unset SOFTHSM2_CONF
fi

# (c) ESP32 SBv2, 4 MiB.
if want c; then
log "(c) ESP32 Secure Boot V2, 4 MiB"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$W/app.bin"
rm_c() { rm -f "$W/app.signed.bin" "$W/app.esp.bin"; }
PRE=rm_c
PEER=("$VENV/espsecure" sign-data --version 2 --keyfile "$W/ec.pem" --output "$W/app.esp.bin" "$W/app.bin")
OURS=("$BIN" sign "${SIM[@]}" --transcript "$W/transcript.jsonl" --key bench-ec --format esp32-sbv2 "$W/app.bin" -o "$W/app.signed.bin")
pair
C_ESP=$P_WALL C_ESP_M=$P_PEAK C_OFF=$O_WALL C_OFF_M=$O_PEAK
"$VENV/espsecure" verify-signature --version 2 --keyfile "$W/ec.pub.pem" "$W/app.signed.bin" >/dev/null
ROWS+=("| (c) ESP32 SBv2, 4 MiB image, ECDSA P-256 | officiant (sim) ${C_OFF} s, $(mib "$C_OFF_M") | \`espsecure sign-data\` ${C_ESP} s, $(mib "$C_ESP_M") | $(ratio "$C_ESP" "$C_OFF")× faster | ≥ 10× |")
fi

# (d), the sim: its key goes under the policy only now, after (c).
if want b; then
echo bench-so-pin >"$W/sim-so-pin"
"$BIN" policy set --backend "sim:$W/token" --so-pin-source "file:$W/sim-so-pin" \
    --policy "$W/policy.toml" --transcript "$W/policy.jsonl" >/dev/null
RUNS=$RUNS_ONE
PRE=rm_one
fresh_request "sim:$W/token" 1000
measure "$BIN" sign "${SIM[@]}" --transcript "$W/one.jsonl" --key bench-ec --format raw "$W/one.bin" -o "$W/one.bin.sig" \
    --request "$W/req.json" --approval "$W/req.json.sig"
D_SIM_APPR=$WALL
RUNS=$RUNS_SAVED
ms() { awk "BEGIN{printf \"%.1f ms\", ($1 - $2) * 1000}"; }
ROWS+=("| (d) one signature, SoftHSM: without a policy → with an approved request | ${D_HSM_PLAIN} s → ${D_HSM_APPR} s | | adds $(ms "$D_HSM_APPR" "$D_HSM_PLAIN") | < 2 ms |")
ROWS+=("| (d) one signature, sim: without a policy → with an approved request | ${D_SIM_PLAIN} s → ${D_SIM_APPR} s | | adds $(ms "$D_SIM_APPR" "$D_SIM_PLAIN") | < 2 ms |")
fi

# (e) NXP HAB4, 16 MiB RT1060 image.
if want e; then
log "(e) HAB4, ${HAB4_MIB} MiB image"
"$BIN" fuses hab4 --cert "$W/SRK1.crt.pem" --cert "$W/SRK2.crt.pem" --cert "$W/SRK3.crt.pem" \
    --cert "$W/SRK4.crt.pem" --table "$W/srk_table.bin" --fuse "$W/srk_fuse.bin" >/dev/null
python3 - "$W/hab-app.bin" "$HAB4_MIB" <<'PY'
import os, struct, sys
n = int(sys.argv[2]) * 1024 * 1024 - 0x2000
open(sys.argv[1], "wb").write(struct.pack("<II", 0x20002000, 0x60002401) + os.urandom(n - 8))
PY
hab_cfg() { # $1: output, $2: 1 to add the signing sections
    cat <<YAML
options:
  flags: $([ "$2" = 1 ] && echo 8 || echo 0)
  startAddress: 0x60000000
  ivtOffset: 0x1000
  initialLoadSize: 0x2000
  entryPointAddress: 0x60002401
  family: mimxrt1060
inputImageFile: $W/hab-app.bin
YAML
    [ "$2" = 1 ] && cat <<YAML
sections:
  - Header:
      Header_Version: '4.3'
      Header_HashAlgorithm: sha256
      Header_Engine: ANY
      Header_EngineConfiguration: 0
      Header_CertificateFormat: x509
      Header_SignatureFormat: CMS
  - InstallSRK:
      InstallSRK_Table: $W/srk_table.bin
      InstallSRK_SourceIndex: 0
  - InstallCSFK:
      InstallCSFK_File: $W/CSF.crt.pem
  - AuthenticateCSF:
      Signer: type=file;file_path=$W/CSF.pem
  - InstallKey:
      InstallKey_File: $W/IMG.crt.pem
      InstallKey_VerificationIndex: 0
      InstallKey_TargetIndex: 2
  - AuthenticateData:
      AuthenticateData_VerificationIndex: 2
      AuthenticateData_Engine: ANY
      AuthenticateData_EngineConfiguration: 0
      Signer: type=file;file_path=$W/IMG.pem
YAML
    return 0
}
hab_cfg "$W/hab-unsigned.bin" 0 >"$W/hab-unsigned.yaml"
hab_cfg "$W/hab-nxp.bin" 1 >"$W/hab-signed.yaml"
"$VENV/nxpimage" hab export -c "$W/hab-unsigned.yaml" -o "$W/hab-unsigned.bin" >/dev/null
cat "$W/hab-unsigned.bin" >/dev/null
rm_d() { rm -f "$W/hab-nxp.bin" "$W/hab-ours.bin"; }
PRE=rm_d
PEER=("$VENV/nxpimage" hab export -c "$W/hab-signed.yaml" -o "$W/hab-nxp.bin")
OURS=("$BIN" sign "${SIM[@]}" --transcript "$W/transcript.jsonl" --format imx-hab4 \
    --srk-table "$W/srk_table.bin" --srk-index 0 --csf-key hab-csf --csf-cert "$W/CSF.crt.pem" \
    --img-key hab-img --img-cert "$W/IMG.crt.pem" "$W/hab-unsigned.bin" -o "$W/hab-ours.bin")
pair
E_NXP=$P_WALL E_NXP_M=$P_PEAK E_OFF=$O_WALL E_OFF_M=$O_PEAK
# The judges: nxpimage reads our image, and our verify checks both signatures.
"$VENV/nxpimage" hab verify -f mimxrt1060 -b "$W/hab-ours.bin" | grep -q "Overall  result: Succeeded"
"$BIN" verify --format imx-hab4 --srk-table "$W/srk_table.bin" "$W/hab-ours.bin" >/dev/null
ROWS+=("| (e) HAB4, ${HAB4_MIB} MiB i.MX RT1060 image, RSA-2048 CSF and IMG keys | officiant (sim) ${E_OFF} s, $(mib "$E_OFF_M") | \`nxpimage hab export\` (file keys) ${E_NXP} s, $(mib "$E_NXP_M") | $(ratio "$E_NXP" "$E_OFF")× faster | ≥ 10×, < 32 MiB |")
fi

if want f; then
# (f) transcript verify: 100,000 entries against 10,000 (constant memory).
log "(f) transcript verify, ${BENCH_TRANSCRIPT_N:-100000} entries"
long_transcript() { # file entries -> prints the head
    (cd "$ROOT" && BENCH_TRANSCRIPT="$1" BENCH_TRANSCRIPT_N="$2" \
        cargo test --quiet --test it -- --ignored --exact sign_bench_setup::bench_setup_long_transcript --nocapture 2>/dev/null |
        grep -E '^[0-9a-f]{64}$')
}
rm -f "$W/long.jsonl" "$W/short.jsonl"
F_N=${BENCH_TRANSCRIPT_N:-100000}
F_HEAD=$(long_transcript "$W/long.jsonl" "$F_N")
FS_HEAD=$(long_transcript "$W/short.jsonl" $((F_N / 10)))
PRE=
measure "$BIN" transcript verify "$W/long.jsonl" --head "$F_HEAD"
grep -q "head matches" "$W/out.txt" || { log "(f) verify did not match the head"; exit 1; }
F_WALL=$WALL F_PEAK=$PEAK
measure "$BIN" transcript verify "$W/short.jsonl" --head "$FS_HEAD"
FS_WALL=$WALL FS_PEAK=$PEAK
F_MIB=$(awk "BEGIN{printf \"%.1f\", $(stat -c %s "$W/long.jsonl") / 1048576}")
ROWS+=("| (f) \`transcript verify --head\`, $F_N entries ($F_MIB MiB) | ${F_WALL} s, $(mib "$F_PEAK") ($((F_N / 10)) entries: ${FS_WALL} s, $(mib "$FS_PEAK")) | | | < 1 s, memory not growing |")
rm -f "$W/long.jsonl" "$W/short.jsonl"
fi

echo
echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), release build, best of $RUNS alternating runs (b: 1 run each); load average $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| benchmark | Officiant (wall, peak RSS) | peer (wall, peak RSS) | ratio | target |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
[ -z "${BENCH_DIR:-}" ] && rm -rf "$W"
exit 0
