#!/usr/bin/env python3
"""Instructions per `try_send` + `try_recv` pair, raw backend vs boundflow, under callgrind.

Instruction counts are repeatable on this noisy machine where wall time is not. Each kind runs
twice (SHORT and LONG iterations); the difference divided by LONG - SHORT is the cost of one
pair, with setup and teardown cancelled out. Needs valgrind. Usage (from the workspace root):

    python3 benches/callgrind.py          # raw vs boundflow vs boundflow over AnyBackend
    python3 benches/callgrind.py --async  # send().await + recv().await pairs, each ready at once
    python3 benches/callgrind.py --ffi    # FFI boundflow_try_send vs Rust try_send(Box::from(slice))
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHORT, LONG = 10_000, 110_000
BACKENDS = ["tokio", "flume", "crossbeam", "async_channel"]


def executable(bench="try_loop", package_args=("--all-features",)):
    out = subprocess.run(
        ["cargo", "bench", *package_args, "--bench", bench, "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == bench and msg.get("executable"):
            return msg["executable"]
    sys.exit(f"{bench} executable not found")


def instructions(exe, kind, iterations, prefix=()):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", exe, *prefix, kind, str(iterations)],
            check=True, capture_output=True,
        )
        for line in out.read_text().splitlines():
            m = re.match(r"(summary|totals): (\d+)", line)
            if m:
                return int(m.group(2))
    sys.exit(f"no instruction total for {kind}")


def head_commit():
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def per_pair(exe, kind, prefix=()):
    """Instructions of one iteration of `kind`: the long run less the short one."""
    return (instructions(exe, kind, LONG, prefix) - instructions(exe, kind, SHORT, prefix)) / (LONG - SHORT)


def ffi():
    exe = executable("ffi", ("-p", "boundflow-ffi"))
    commit = head_commit()
    per = {}
    for kind in ("rust", "ffi"):
        per[kind] = per_pair(exe, kind, ("pairs",))
    print(f"Instructions per 64-byte send + Rust try_recv (callgrind, crossbeam, capacity 1024, commit {commit}):\n")
    print("| send | instructions | vs Rust |")
    print("|---|---|---|")
    print(f"| Rust `try_send(Box::from(slice))` | {per['rust']:.1f} | 1.00x |")
    print(f"| FFI `boundflow_try_send` | {per['ffi']:.1f} | {per['ffi'] / per['rust']:.2f}x |")


def async_pairs():
    exe = executable("async_loop")
    commit = head_commit()
    print(f"Instructions per send().await + recv().await pair, each ready at its first poll (callgrind, capacity 64, commit {commit}):\n")
    print("| backend | raw | boundflow | boundflow − raw |")
    print("|---|---|---|---|")
    for backend in BACKENDS:
        per = {}
        # crossbeam has no async API: its boundflow row stands alone.
        for variant in ("raw", "boundflow") if backend != "crossbeam" else ("boundflow",):
            per[variant] = per_pair(exe, f"{backend}/{variant}")
        raw, ours = per.get("raw"), per["boundflow"]
        raw_cell = "—" if raw is None else f"{raw:.1f}"
        over_cell = "—" if raw is None else f"{ours - raw:+.1f}"
        print(f"| {backend} | {raw_cell} | {ours:.1f} | {over_cell} |")


def main():
    if "--ffi" in sys.argv:
        return ffi()
    if "--async" in sys.argv:
        return async_pairs()
    exe = executable()
    commit = head_commit()
    print(f"Instructions per try_send + try_recv pair (callgrind, capacity 64, commit {commit}):\n")
    print("| backend | raw | boundflow | boundflow − raw | boundflow over AnyBackend | AnyBackend − static |")
    print("|---|---|---|---|---|---|")
    for backend in BACKENDS:
        per = {}
        for variant in ("raw", "boundflow", "any"):
            per[variant] = per_pair(exe, f"{backend}/{variant}")
        print(
            f"| {backend} | {per['raw']:.1f} | {per['boundflow']:.1f} | {per['boundflow'] - per['raw']:+.1f} "
            f"| {per['any']:.1f} | {per['any'] - per['boundflow']:+.1f} |"
        )


if __name__ == "__main__":
    main()
