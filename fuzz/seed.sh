#!/bin/sh
# Build fuzz/corpus/TARGET/ from the seeds tests/it/parsers_never_panic/ uses (the shipped
# ceremonies and fixtures, and the signed ESP32/STM32 images, key and signature it makes).
set -eu
cd "$(dirname "$0")/.."
mkdir -p fuzz/corpus
OFFICIANT_FUZZ_CORPUS="$PWD/fuzz/corpus" \
    cargo test --features mock-hsm --test it -- parsers_never_panic:: --test-threads 2
ls fuzz/corpus
