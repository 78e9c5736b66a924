"""Wall time of `course check ch02` on the reference notebook (the target is under 3 s).

usage: python benchmarks/bench_check_ch02.py [RUNS]
Runs the real command in a fresh process each time (imports included) and prints
each run and the median.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    command = ["course", "check", "ch02", "--notebook", "solutions/ch02/ch02.ipynb", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": str(os.cpu_count())}
    times = []
    for i in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        print(f"run {i + 1}: {times[-1]:.2f} s (exit {done.returncode})")
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:])
    print(f"median over {runs} runs: {statistics.median(times):.2f} s  (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
