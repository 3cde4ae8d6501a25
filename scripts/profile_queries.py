#!/usr/bin/env python3
"""What bounds each Nexmark query: runs `weir nexmark run` under `perf record` once per query
and prints a markdown table of where its CPU time went, symbol by symbol, grouped into what
the engine does with a record (read the log, decode, allocate, copy, keep state, move it
through the dataflow, the operators' and the query's own code, the kernel).

    scripts/profile_queries.py --from log:bench-data/events-2000000/topic [--queries q0,q5]
        [--workers 2] [--weir target/release/weir] [--frequency 999]

Needs `perf` (linux-perf). The profile is flat, by symbol, so inlined code counts where it was
inlined into: decoding inlined into the log reader counts as "log read", and closures of the
operators and queries (`call_mut` and the like) as "operators and query". `postcard` and
`serde_json` count as "decode" wherever they run (state encodes with postcard too), `memcmp`
and `foldhash` as "state". Runs in a scratch directory (queries write dead letters and side
tables to the working directory).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

# Categories, first match wins: (name, pattern on "dso symbol").
CATEGORIES = [
    ("kernel", r"^\[kernel"),
    ("log read", r"crc32c|SegmentCursor|record::decode|PartitionReader|LogReader|JsonLinesReader|read_partition"),
    ("decode", r"deserialize|Deserialize|postcard|Codec::decode|decode_text|from_utf8|simdutf8|serde_json|datetime::parse|decode_line|parse_str|parse_integer|parse_number|skip_to_escape"),
    ("allocation", r"\bmi_|_mi_|malloc|__rust_alloc|__rust_dealloc|__rust_realloc|drop_slow|drop_in_place|arcinner|Arc<\[T\]>::copy_from_slice|realloc|free\b|operator delete|operator new"),
    ("copies", r"memmove|memcpy|memset"),
    ("state", r"StateCache|state::|hashbrown|HashMap|HashSet|BTree|rocksdb|foldhash|memcmp|checkpoint_files|Entries"),
    ("dataflow", r"timely|Exchange|push_pull|LogPuller|communication|Capability|frontier|progress::|weir_engine::(pipeline|runtime|source|sink)"),
    ("operators and query", r"weir_operators|weir_nexmark|weir_engine|call_mut|call_once|closure|FnMut|FnOnce|spec_extend|Iterator|fold"),
]
COLUMNS = [name for name, _ in CATEGORIES] + ["other"]
LINE = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*?)\s*$")
RATE = re.compile(r"([\d.]+) M events/s")


def categorize(report):
    """Shares by category and the top symbols, from `perf report --sort dso,symbol`."""
    shares = dict.fromkeys(COLUMNS, 0.0)
    top = []
    for line in report.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        # perf may append IPC columns after two or more spaces.
        share, dso, symbol = float(match[1]), match[2], re.split(r"\s{2,}", match[3])[0]
        name = next(
            (name for name, pattern in CATEGORIES if re.search(pattern, f"{dso} {symbol}")),
            "other",
        )
        shares[name] += share
        top.append((share, symbol))
    top.sort(reverse=True)
    return shares, top[:3]


def short(symbol):
    """A symbol without its generic arguments and paths, to fit a table cell."""
    while True:
        stripped = re.sub(r"<[^<>]*>", "", symbol)
        if stripped == symbol:
            break
        symbol = stripped
    return symbol.split("::")[-1][:40] if "::" in symbol else symbol[:40]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", required=True)
    parser.add_argument("--queries", default="all")
    parser.add_argument("--workers", default="2")
    parser.add_argument("--weir", default="target/release/weir")
    parser.add_argument("--frequency", default="999")
    args = parser.parse_args()
    if args.queries == "all":
        listing = subprocess.run(
            [args.weir, "nexmark", "run", "--help"], capture_output=True, text=True, check=True
        ).stdout
        queries = [q for q in re.findall(r"^\s+- ([\w-]+):", listing, re.M) if q != "all"]
    else:
        queries = args.queries.split(",")
    print(f"Profiles of `weir nexmark run --from {args.source} --workers {args.workers}`, "
          f"`perf record -F {args.frequency}`; shares of CPU samples, %.\n")
    print("| query | M events/s | " + " | ".join(COLUMNS) + " | top symbols |")
    print("| --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " | --- |")
    weir = os.path.abspath(args.weir)
    source = args.source
    if not source.startswith(("log:", "kafka:")):
        source = os.path.abspath(source)
    elif source.startswith("log:"):
        source = "log:" + os.path.abspath(source[4:])
    failed = []
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "perf.data")
        for query in queries:
            run = subprocess.run(
                ["perf", "record", "-q", "-F", args.frequency, "-o", data, "--",
                 weir, "nexmark", "run", "--query", query, "--from", source,
                 "--workers", args.workers],
                capture_output=True, text=True, cwd=scratch,
            )
            if run.returncode != 0:
                print(f"{query} failed ({run.returncode}): {run.stderr.strip()[-400:]}",
                      file=sys.stderr)
                failed.append(query)
                continue
            rate = RATE.search(run.stdout + run.stderr)
            report = subprocess.run(
                ["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol",
                 "--stdio"],
                capture_output=True, text=True, check=True,
            ).stdout
            shares, top = categorize(report)
            cells = " | ".join(f"{shares[name]:.0f}" for name in COLUMNS)
            symbols = ", ".join(f"{short(symbol)} {share:.0f}" for share, symbol in top)
            print(f"| {query} | {rate[1] if rate else '?'} | {cells} | {symbols} |", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
