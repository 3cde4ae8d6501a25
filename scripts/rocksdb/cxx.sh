#!/usr/bin/env bash
# The C++ compiler of weir's builds (.cargo/config.toml sets CXX to this script).
#
# RocksDB's C++ is most of a cold build, and two thirds of each of its files' compile time
# goes to parsing the same standard and RocksDB headers again. When the rocksdb crate's build
# script compiles one of RocksDB's own sources, this script first compiles precompiled.h
# (once, with exactly the flags that compile was given, into the build script's output
# directory) and has the compile start from it: about a third less CPU for the library.
# Every other compile, and any compile whose precompiled header cannot be built, runs the
# compiler unchanged.
set -uo pipefail

compiler="${WEIR_CXX:-clang++}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# A compile of one of RocksDB's sources? Collect its flags without the input and output.
flags=()
rocksdb_source=false
skip_next=false
for arg in "$@"; do
    if $skip_next; then
        skip_next=false
        continue
    fi
    case "$arg" in
        -o) skip_next=true ;;
        -c) ;;
        *.cc) [ "${CARGO_PKG_NAME:-}" = librocksdb-sys ] && rocksdb_source=true ;;
        *.cpp | *.c) ;;
        *) flags+=("$arg") ;;
    esac
done
if ! $rocksdb_source || [ -z "${OUT_DIR:-}" ]; then
    exec "$compiler" "$@"
fi

# One precompiled header per set of flags (a build script compiles every file with the same).
key="$( { "$compiler" --version; printf '%s\n' "${flags[@]}"; cat "$here/precompiled.h"; } \
    | sha256sum | cut -c1-16)"
pch="$OUT_DIR/weir-precompiled-$key.pch"
(
    flock 9
    if [ ! -e "$pch" ] && [ ! -e "$pch.failed" ]; then
        if "$compiler" "${flags[@]}" -x c++-header "$here/precompiled.h" -o "$pch.tmp" \
            2>"$pch.log"; then
            mv "$pch.tmp" "$pch"
        else
            # Never fail the build over an optimisation: compile without it and say why once.
            touch "$pch.failed"
            echo "weir: building RocksDB without a precompiled header (see $pch.log)" >&2
        fi
    fi
) 9>"$pch.lock"

if [ -e "$pch" ]; then
    exec "$compiler" -include-pch "$pch" "$@"
fi
exec "$compiler" "$@"
