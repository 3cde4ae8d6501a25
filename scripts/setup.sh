#!/usr/bin/env bash
# Installs what building and testing weir need beyond the Rust toolchain: clang and libclang,
# which the rocksdb crate uses to generate its bindings, and strace, which the power-loss test
# (cli/tests/durability_order.rs) traces weir's system calls with. Safe to run again; does
# nothing when they are there.
set -euo pipefail

missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
# libclang itself (bindgen loads it), not libclang-cpp.
if ! compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null && \
   ! compgen -G "/usr/lib/llvm-*/lib/libclang-[0-9]*.so*" >/dev/null && \
   ! compgen -G "/usr/lib/*-linux-gnu/libclang-[0-9]*.so*" >/dev/null; then
    missing+=(libclang-dev)
fi
command -v strace >/dev/null 2>&1 || missing+=(strace)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "installing ${missing[*]} (clang and libclang build RocksDB's bindings; strace runs the" \
     "durability-order test)" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
