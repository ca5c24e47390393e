#!/usr/bin/env python3
"""Instructions per `try_send` + `try_recv` pair, raw backend vs boundflow, under callgrind.

Instruction counts are repeatable on this noisy machine where wall time is not. Each kind runs
twice (SHORT and LONG iterations); the difference divided by LONG - SHORT is the cost of one
pair, with setup and teardown cancelled out. Needs valgrind. Usage (from the workspace root):

    python3 benches/callgrind.py
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


def executable():
    out = subprocess.run(
        ["cargo", "bench", "--all-features", "--bench", "try_loop", "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "try_loop" and msg.get("executable"):
            return msg["executable"]
    sys.exit("try_loop executable not found")


def instructions(exe, kind, iterations):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", exe, kind, str(iterations)],
            check=True, capture_output=True,
        )
        for line in out.read_text().splitlines():
            m = re.match(r"(summary|totals): (\d+)", line)
            if m:
                return int(m.group(2))
    sys.exit(f"no instruction total for {kind}")


def main():
    exe = executable()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"Instructions per try_send + try_recv pair (callgrind, capacity 64, commit {commit}):\n")
    print("| backend | raw | boundflow | boundflow − raw | boundflow over AnyBackend | AnyBackend − static |")
    print("|---|---|---|---|---|---|")
    for backend in BACKENDS:
        per = {}
        for variant in ("raw", "boundflow", "any"):
            kind = f"{backend}/{variant}"
            per[variant] = (instructions(exe, kind, LONG) - instructions(exe, kind, SHORT)) / (LONG - SHORT)
        print(
            f"| {backend} | {per['raw']:.1f} | {per['boundflow']:.1f} | {per['boundflow'] - per['raw']:+.1f} "
            f"| {per['any']:.1f} | {per['any'] - per['boundflow']:+.1f} |"
        )


if __name__ == "__main__":
    main()
