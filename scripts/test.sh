#!/usr/bin/env bash
# The test command: set up every vendor tool the tests are judged by, then run the suite.
#
#   bash scripts/test.sh [cargo test arguments…]     e.g. bash scripts/test.sh --test it sign_raw::
#   bash scripts/test.sh --setup-only                 the judges only (.ci/run, before cargo)
#
# System packages (SoftHSMv2, OpenSC, p11tool, the OpenSSL pkcs11 engine, srktool,
# cert_create/fiptool, mkimage, tmux, ssh-keygen) are installed with apt-get when this runs as root or
# with passwordless sudo, and only when one is missing; otherwise a missing one stops
# here with the command that installs it. The Python oracles (espsecure from esptool,
# nxpcrypto/nxpimage from spsdk) come from $OFFICIANT_ORACLE_VENV if set, else
# /opt/officiant-venv when it has them, else a venv this script makes without root in
# ${XDG_CACHE_HOME:-~/.cache}/officiant/oracle-venv. A test whose judge is missing fails;
# with OFFICIANT_ALLOW_SKIP=1 it is skipped instead and counted in one line at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(softhsm2 opensc gnutls-bin libengine-pkcs11-openssl imx-code-signing-tool
  arm-trusted-firmware-tools u-boot-tools openssl tmux openssh-client ca-certificates
  python3-venv)
PIP_PINS=('esptool==5.6.0' 'spsdk==3.12.0')
PY_TOOLS=(espsecure nxpcrypto nxpimage)

say() { printf 'scripts/test.sh: %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

# Whether a package's judge is here: the files and programs the tests use from it.
present() {
  case "$1" in
    softhsm2) [ -f /usr/lib/softhsm/libsofthsm2.so ] && have softhsm2-util ;;
    opensc) have pkcs11-tool ;;
    gnutls-bin) have p11tool ;;
    libengine-pkcs11-openssl) compgen -G '/usr/lib/*/engines-3/pkcs11.so' >/dev/null ;;
    imx-code-signing-tool) have srktool ;;
    arm-trusted-firmware-tools) have cert_create && have fiptool ;;
    u-boot-tools) have mkimage ;;
    openssl) have openssl ;;
    tmux) have tmux ;;
    openssh-client) have ssh-keygen && have ssh-agent ;;
    ca-certificates) [ -f /etc/ssl/certs/ca-certificates.crt ] ;;
    python3-venv) have python3 && python3 -c 'import ensurepip, venv' 2>/dev/null ;;
  esac
}

# A venv that has every Python oracle.
venv_ready() {
  local t
  for t in "${PY_TOOLS[@]}"; do [ -x "$1/bin/$t" ] || return 1; done
}

# Whether a venv holds exactly the pinned versions.
venv_pinned() {
  local pin
  for pin in "${PIP_PINS[@]}"; do
    compgen -G "$1/lib/python3*/site-packages/${pin%%==*}-${pin##*==}.dist-info" >/dev/null ||
      return 1
  done
}

# The venv: the caller's, the shared one, or our own (made or re-pinned below).
own=0
if [ -n "${OFFICIANT_ORACLE_VENV:-}" ]; then
  VENV=$OFFICIANT_ORACLE_VENV
elif venv_ready /opt/officiant-venv; then
  VENV=/opt/officiant-venv
else
  VENV=${XDG_CACHE_HOME:-${HOME:?set HOME or OFFICIANT_ORACLE_VENV}/.cache}/officiant/oracle-venv
  own=1
fi
need_venv=0
if ! venv_ready "$VENV" || { [ "$own" = 1 ] && ! venv_pinned "$VENV"; }; then
  need_venv=1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if [ "$p" = python3-venv ] && [ "$need_venv" = 0 ]; then continue; fi
  present "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    as_root=(env)
  elif have sudo && sudo -n true 2>/dev/null; then
    as_root=(sudo -n env)
  else
    as_root=()
  fi
  if [ ${#as_root[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${PACKAGES[@]}" >/dev/null
    still=()
    for p in "${missing[@]}"; do present "$p" || still+=("$p"); done
    if [ ${#still[@]} -gt 0 ]; then
      say "installed, yet still missing: ${still[*]}"
      exit 1
    fi
  else
    line="missing packages: ${missing[*]}; install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "${OFFICIANT_ALLOW_SKIP:-}" != 1 ]; then
      say "$line (or set OFFICIANT_ALLOW_SKIP=1 to skip the tests they judge)"
      exit 1
    fi
    say "$line; OFFICIANT_ALLOW_SKIP=1: the tests they judge will be skipped"
  fi
fi

if [ "$need_venv" = 1 ]; then
  if present python3-venv; then
    say "installing ${PIP_PINS[*]} into $VENV"
    mkdir -p "$(dirname "$VENV")"
    [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PIP_PINS[@]}"
    venv_ready "$VENV" || { say "$VENV still lacks one of ${PY_TOOLS[*]}"; exit 1; }
  elif [ "${OFFICIANT_ALLOW_SKIP:-}" != 1 ]; then
    say "no Python venv for ${PY_TOOLS[*]}: install python3-venv, or set OFFICIANT_ORACLE_VENV"
    exit 1
  fi
fi
export OFFICIANT_ORACLE_VENV=$VENV
if [ "${1:-}" = --setup-only ]; then exit 0; fi

# Skips are recorded by the tests (tests/it/support/oracles.rs); this run starts afresh.
target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target=$PWD/$target ;; esac
mkdir -p "$target"
export OFFICIANT_SKIP_LOG=$target/officiant-skips.txt
rm -f "$OFFICIANT_SKIP_LOG"

status=0
cargo test --features mock-hsm "$@" || status=$?

if [ -s "$OFFICIANT_SKIP_LOG" ]; then
  # One line: how many tests were skipped, and for which tools (tests per tool).
  n=$(sort -u "$OFFICIANT_SKIP_LOG" | cut -f1 | sort -u | wc -l)
  tools=$(sort -u "$OFFICIANT_SKIP_LOG" | cut -f2 | sort | uniq -c | sort -k1,1nr -k2 |
    awk '{ printf "%s%s (%d)", (NR > 1 ? ", " : ""), $2, $1 }')
  [ "$n" = 1 ] && noun=test || noun=tests
  echo "$n $noun skipped for missing tools: $tools"
fi
exit "$status"
