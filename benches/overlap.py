#!/usr/bin/env python3
"""Do two grid runs agree? Reads the markdown two runs of `cargo bench --bench grid` printed
and, for every cell both have, says whether their throughput ranges overlap and whether their
CPU ranges do ("holds on rerun" in benches/README.md), then lists the cells that do not.

    cargo bench --all-features --bench grid -- --rounds 9 --messages 100000 > first.md
    cargo bench --all-features --bench grid -- --rounds 9 --messages 100000 > rerun.md
    python3 benches/overlap.py first.md rerun.md
"""

import re
import sys

# A median and its range as the grid prints them: "0.93 [0.72–1.01]", bold or not.
RATIO = re.compile(r"\*{0,2}(-?[\d.]+) \[(-?[\d.]+)–(-?[\d.]+)\]\*{0,2}")


def cells(path):
    """{(backend, mode, vs, topology, capacity): ((lo, hi) throughput, (lo, hi) CPU)}"""
    found = {}
    with open(path, encoding="utf-8") as table:
        for line in table:
            columns = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(columns) < 7:
                continue
            throughput, cpu = RATIO.fullmatch(columns[5]), RATIO.fullmatch(columns[6])
            if throughput and cpu:
                found[tuple(columns[:5])] = tuple(
                    (float(m.group(2)), float(m.group(3))) for m in (throughput, cpu)
                )
    return found


def overlaps(a, b):
    return a[0] <= b[1] and b[0] <= a[1]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    first, rerun = cells(sys.argv[1]), cells(sys.argv[2])
    shared = sorted(first.keys() & rerun.keys())
    if not shared:
        sys.exit("no cell appears in both files")
    apart = []
    for cell in shared:
        for name, a, b in zip(("throughput", "CPU"), first[cell], rerun[cell]):
            if not overlaps(a, b):
                apart.append(f"  {'/'.join(cell)} {name}: {a[0]}–{a[1]} against {b[0]}–{b[1]}")
    ranges = 2 * len(shared)
    print(f"{ranges - len(apart)} of {ranges} ranges overlap ({len(shared)} cells, throughput and CPU)")
    for line in apart:
        print(line)


if __name__ == "__main__":
    main()
