#!/usr/bin/env bash
# Apache Flink beside weir, for the side-by-side benchmark (`weir bench nexmark --with-flink`).
# Flink comes from PyPI's apache-flink (its runtime jars ship in the wheel) in a virtual
# environment under $HOME; it needs Java 17 (scripts/setup.sh installs it where missing).
#
#   scripts/flink.sh setup          Installs Flink once (about 1 GB of download).
#   scripts/flink.sh run ARGS...    Runs scripts/flink/nexmark.py ARGS (installing first).
#
# Environment: WEIR_FLINK_HOME (default ~/.cache/weir/flink-VERSION: the virtual environment).
set -euo pipefail

version=2.3.0
script_dir="$(cd "$(dirname "$0")" && pwd)"
home="${WEIR_FLINK_HOME:-$HOME/.cache/weir/flink-$version}"

die() { echo "flink.sh: $*" >&2; exit 1; }

setup() {
    [ -f "$home/.complete" ] && return
    command -v java >/dev/null || die "java is not installed (run scripts/setup.sh)"
    command -v python3 >/dev/null || die "python3 is not installed"
    echo "flink.sh: installing apache-flink $version into $home ..." >&2
    rm -rf "$home"
    python3 -m venv "$home"
    "$home/bin/pip" install --quiet "apache-flink==$version"
    touch "$home/.complete"
}

case "${1:-}" in
    setup) setup ;;
    run) shift; setup; exec "$home/bin/python" "$script_dir/flink/nexmark.py" "$@" ;;
    *) die "usage: flink.sh setup | run --query Q --events PATH [--parallelism P] [--count N]" ;;
esac
