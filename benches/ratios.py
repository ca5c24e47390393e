#!/usr/bin/env python3
"""Runs the criterion benches ROUNDS times and prints the boundflow / raw ratio table.

Each round runs every group (raw and boundflow side by side, so each pair is measured minutes
apart at most); the ratio of throughputs (raw time / boundflow time) is taken per round from
criterion's median estimates, and the table shows the median ratio over the rounds, with the
range. Usage (from the workspace root):

    python3 benches/ratios.py [ROUNDS] [FILTER]      # e.g. python3 benches/ratios.py 3
"""
import json
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"


def run_round(bench_filter):
    cmd = ["cargo", "bench", "--all-features", "--bench", "channels", "--"]
    if bench_filter:
        cmd.append(bench_filter)
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def medians():
    """{(group, function, capacity): median ns} from the latest criterion run."""
    out = {}
    for bench in CRITERION.rglob("new/benchmark.json"):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        out[(meta["group_id"], meta["function_id"], meta["value_str"])] = est["median"]["point_estimate"]
    return out


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    bench_filter = sys.argv[2] if len(sys.argv) > 2 else ""
    ratios = {}
    for r in range(rounds):
        print(f"round {r + 1}/{rounds}", file=sys.stderr, flush=True)
        run_round(bench_filter)
        m = medians()
        for (group, function, cap), ns in m.items():
            if function == "boundflow":
                raw = [v for (g, f, c), v in m.items() if g == group and c == cap and f != "boundflow"]
                if raw:
                    ratios.setdefault((group, cap), []).append(raw[0] / ns)
    groups = sorted({g for g, _ in ratios})
    print("| group | cap 1 | cap 64 | cap 1024 |")
    print("|---|---|---|---|")
    for g in groups:
        cells = []
        for cap in ("1", "64", "1024"):
            vals = ratios.get((g, cap))
            if not vals:
                cells.append("—")
            else:
                cells.append(f"{statistics.median(vals):.2f}x ({min(vals):.2f}–{max(vals):.2f})")
        print(f"| {g} | " + " | ".join(cells) + " |")
    print_backend_rows(ratios)


def print_backend_rows(ratios):
    """The same medians, one row per backend (bold: under the 0.90x target)."""
    columns = [(mode, topology, cap) for mode in ("blocking", "async")
               for topology in ("spsc", "mpsc4") for cap in ("1", "64", "1024")]
    print()
    print("| backend | " + " | ".join(f"{m} {t} {c}" for m, t, c in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for backend in sorted({g.split("/")[0] for g, _ in ratios}):
        cells = []
        for mode, topology, cap in columns:
            vals = ratios.get((f"{backend}/{mode}/{topology}", cap))
            if not vals:
                cells.append("—")
                continue
            median = statistics.median(vals)
            cells.append(f"**{median:.2f}**" if median < 0.90 else f"{median:.2f}")
        print(f"| {backend} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
