#!/usr/bin/env bash
# Installs what building and testing weir need beyond the Rust toolchain: clang and libclang,
# which the rocksdb crate uses to generate its bindings; cmake (and curl's header), which
# build the bundled librdkafka of the Kafka connector; strace, which the power-loss test
# (cli/tests/durability_order.rs) traces weir's system calls with; and Java 17 with Maven,
# which fetch and run the Apache Kafka broker of the Kafka tests (scripts/kafka.sh). Safe to
# run again; does nothing when they are there.
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
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
# librdkafka's cmake build includes curl's header even with curl turned off.
compgen -G "/usr/include/curl/curl.h" >/dev/null || compgen -G "/usr/include/*/curl/curl.h" >/dev/null ||
    missing+=(libcurl4-openssl-dev)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "installing ${missing[*]} (clang and libclang build RocksDB's bindings, cmake" \
     "librdkafka; strace runs the durability-order test; Java and Maven the Kafka broker)" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
