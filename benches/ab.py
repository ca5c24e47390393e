#!/usr/bin/env python3
"""A/B of two grid builds (or two option sets) on one cell, in alternating single-round pairs.

    python3 benches/ab.py --pairs 16 --cell async_channel/blocking/spsc/64/ \
        --a "target/release/deps/grid-OLD" --b "target/release/deps/grid-NEW"
    python3 benches/ab.py --cell flume/blocking/spsc/64/ \
        --a "$GRID" --b "$GRID --wait-strategy park"

Each pair runs A and B once each (`--rounds 1`: raw then boundflow, or the other way round, in
one process) and the order alternates between pairs, so that neither side always runs first
after the other (on this noisy machine a fixed order, A's runs then B's, once showed a
difference that alternating pairs did not: `benches/README.md`). Prints, for A and for B, the
median, quartiles and range of the per-run ratios against raw: throughput (boundflow/raw) and
CPU per message (boundflow/raw). Two builds of different commits: build each with
`cargo bench --all-features --bench grid --no-run` and copy the binary it names aside.
"""
import argparse
import re
import shlex
import statistics
import subprocess
import sys

RATIO = re.compile(r"([0-9.]+) \[")


def one_run(command, cell, messages):
    out = subprocess.run(
        command + ["--only", cell, "--no-slow-consumer", "--rounds", "1",
                   "--messages", str(messages)],
        capture_output=True, text=True, check=True).stdout
    backend = cell.split("/")[0]
    for line in out.splitlines():
        cells = [field.strip() for field in line.split("|")]
        if len(cells) > 8 and cells[1] == backend:
            throughput, cpu = (float(RATIO.search(cells[i]).group(1)) for i in (6, 7))
            return throughput, cpu
    sys.exit(f"no row for {cell} in the output of {shlex.join(command)}:\n{out}")


def summary(values):
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (f"median {statistics.median(values):.2f} quartiles {q1:.2f}-{q3:.2f} "
            f"range {min(values):.2f}-{max(values):.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", required=True, help="one grid cell, e.g. tokio/async/spsc/1/")
    parser.add_argument("--a", required=True, help="command A: a grid binary and its options")
    parser.add_argument("--b", required=True, help="command B")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    commands = {"A": shlex.split(args.a), "B": shlex.split(args.b)}
    runs = {"A": [], "B": []}
    for pair in range(args.pairs):
        for side in ("AB" if pair % 2 == 0 else "BA"):
            runs[side].append(one_run(commands[side], args.cell, args.messages))
    print(f"{args.cell}: {args.pairs} alternating pairs, {args.messages} messages a run")
    for side in "AB":
        throughput = [run[0] for run in runs[side]]
        cpu = [run[1] for run in runs[side]]
        print(f"{side} ({args.a if side == 'A' else args.b}):\n"
              f"  throughput boundflow/raw {summary(throughput)}\n"
              f"  CPU per message boundflow/raw {summary(cpu)}")


if __name__ == "__main__":
    main()
