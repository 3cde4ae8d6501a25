#!/usr/bin/env bash
# The C++ compiler of weir's builds (.cargo/config.toml sets CXX to this script).
#
# RocksDB's C++ is most of a cold build, and two thirds of each of its files' compile time
# goes to parsing the same standard and RocksDB headers again. When the rocksdb crate's build
# script compiles one of RocksDB's own sources with clang++, this script first compiles
# precompiled.h (once, with exactly the flags that compile was given, into the build script's
# output directory) and has the compile start from it: about a quarter less CPU for the
# library. Every other compile runs the compiler unchanged, and so does a RocksDB compile
# whenever the header cannot be built or used (another compiler, a missing tool, a stale
# header): the header only ever saves time, it never fails a build.
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
        rocksdb/*.cc) [ "${CARGO_PKG_NAME:-}" = librocksdb-sys ] && rocksdb_source=true ;;
        *.cc | *.cpp | *.c) ;;
        *) flags+=("$arg") ;;
    esac
done
if ! $rocksdb_source || [ -z "${OUT_DIR:-}" ] \
    || ! "$compiler" --version 2>/dev/null | grep -q clang \
    || ! command -v flock >/dev/null || ! command -v sha256sum >/dev/null; then
    exec "$compiler" "$@"
fi

# One precompiled header per set of flags (a build script compiles every file with the same).
key="$( { "$compiler" --version; printf '%s\n' "${flags[@]}"; cat "$here/precompiled.h"; } \
    | sha256sum | cut -c1-16)"
[ -n "$key" ] || exec "$compiler" "$@"
pch="$OUT_DIR/weir-precompiled-$key.pch"
(
    flock 9 || exit 0
    if [ ! -e "$pch" ] && [ ! -e "$pch.failed" ]; then
        if "$compiler" "${flags[@]}" -x c++-header "$here/precompiled.h" -o "$pch.tmp" \
            2>"$pch.log"; then
            mv "$pch.tmp" "$pch"
        else
            touch "$pch.failed"
            echo "weir: building RocksDB without a precompiled header (see $pch.log)" >&2
        fi
    fi
) 9>"$pch.lock"

# A header clang refuses (one older than a header it holds) costs a second compile, not the
# build.
if [ -e "$pch" ] && "$compiler" -include-pch "$pch" "$@"; then
    exit 0
fi
exec "$compiler" "$@"
