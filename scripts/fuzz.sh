#!/usr/bin/env bash
# The coverage-guided fuzzers (fuzz/, cargo fuzz with libFuzzer).
#
#   scripts/fuzz.sh list                  the targets
#   scripts/fuzz.sh run TARGET [SECONDS]  fuzz one target (default 600 s), growing its corpus
#   scripts/fuzz.sh smoke [SECONDS]       lint the entry points, then every target for
#                                         SECONDS (default 20) on the committed corpus,
#                                         which it replays first (CI)
#   scripts/fuzz.sh cmin TARGET           shrink a target's corpus to the inputs that matter
#
# The fuzzers link the RocksDB library the project's release build compiled (found under
# the cargo target directory, built first if missing) instead of compiling RocksDB's C++ a
# second time with the fuzzers' flags: the targets never reach RocksDB's code.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
rocksdb_lib() {
    # The newest, should an older RocksDB version's build be left beside it.
    ls -td "$target_dir"/release/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1
}
if [ -z "$(rocksdb_lib)" ]; then
    cargo build --release -p weir-engine
fi
ROCKSDB_LIB_DIR="$(dirname "$(rocksdb_lib)")"
export ROCKSDB_LIB_DIR ROCKSDB_STATIC=1
# The fuzzers' own build directory, kept beside the project's between runs.
export CARGO_TARGET_DIR="$target_dir/fuzz"

# No sanitizer: the project forbids unsafe code, and libFuzzer's coverage works without one
# (and without a nightly compiler). Debug assertions and overflow checks stay on.
fuzz() { cargo fuzz "$@"; }
build_flags=(--sanitizer none --release --debug-assertions --fuzz-dir fuzz)

targets() { sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^weir-fuzz$'; }

run_target() {
    local target=$1 seconds=$2
    mkdir -p "fuzz/corpus/$target"
    fuzz run "${build_flags[@]}" "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
}

case "${1:-}" in
list) targets ;;
run) run_target "$2" "${3:-600}" ;;
smoke)
    # The entry points exist only under cfg(fuzzing), where the workspace's clippy run does
    # not look: lint them here, in a build directory of their own.
    RUSTFLAGS="--cfg fuzzing" CARGO_TARGET_DIR="$target_dir/fuzz-clippy" cargo clippy \
        -p weir-engine -p weir-connectors -p weir-nexmark -p weir-cli --release -- -D warnings
    fuzz build "${build_flags[@]}"
    for target in $(targets); do
        # A copy: a smoke run checks the committed corpus, it does not grow it.
        scratch=$(mktemp -d)
        cp -r "fuzz/corpus/$target/." "$scratch/"
        echo "== $target: $(ls "$scratch" | wc -l) committed inputs, then ${2:-20} s"
        if ! fuzz run "${build_flags[@]}" "$target" "$scratch" -- \
            -max_total_time="${2:-20}" -timeout=10 -rss_limit_mb=4096 >"$scratch.log" 2>&1; then
            tail -60 "$scratch.log" >&2
            exit 1
        fi
        tail -2 "$scratch.log"
        rm -rf "$scratch" "$scratch.log"
    done
    ;;
cmin) fuzz cmin "${build_flags[@]}" "$2" "fuzz/corpus/$2" ;;
*)
    sed -n '2,10p' "$0" >&2
    exit 2
    ;;
esac
