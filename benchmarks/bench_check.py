"""Wall time of `course check CHAPTER` on the reference notebook (the target is under 2.5 s a chapter).

usage: python benchmarks/bench_check.py [CHAPTER ...] [--runs N]   (default: every chapter with a solution, 5 runs)
Runs the real command in a fresh process each time (imports included) and prints
each run and the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time

from autograder import manifest, paths

ROOT = paths.course_root()


def bench(chapter: str, runs: int) -> float:
    """Median seconds of `course check CHAPTER` on the reference, each run in a fresh process."""
    command = ["course", "check", chapter, "--notebook", f"solutions/{chapter}/{chapter}.ipynb", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": str(os.cpu_count())}
    times = []
    for i in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        print(f"{chapter} run {i + 1}: {times[-1]:.2f} s (exit {done.returncode})")
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:])
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    chapters = args.chapters or [ch.id for ch in manifest.load().chapters if paths.solution_notebook(ch.id).exists()]
    medians = {chapter: bench(chapter, args.runs) for chapter in chapters}
    for chapter, median in medians.items():
        print(f"{chapter}: median over {args.runs} runs {median:.2f} s  (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
