"""Wall time of the README's main job, `moldiff sample -n 100` with the built-in model (whole
process: start-up, model load, 500 DDPM steps, evaluation, writing SDF/CSV). Target: < 180 s.

    python bench/bench_sample.py [--runs 2] [-n 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("-n", type=int, default=100)
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            cmd = [sys.executable, "-m", "moldiff", "sample", "-n", str(args.n), "-o", f"{tmp}/s{i}.sdf", "--json"]
            start = time.perf_counter()
            result = subprocess.run(cmd, capture_output=True, text=True, check=True)
            times.append(time.perf_counter() - start)
            summary = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"run {i}: {times[-1]:.1f} s  (atom stability {summary['atom_stability']:.3f}, "
                  f"validity {summary['validity']:.3f})")  # fmt: skip
    median = statistics.median(times)
    print(f"moldiff sample -n {args.n}: median {median:.1f} s over {args.runs} runs (target < 180 s)")
    out = Path(__file__).parent / "results" / "sample.json"
    out.write_text(json.dumps({"n": args.n, "seconds": times, "median_seconds": median}, indent=2) + "\n")


if __name__ == "__main__":
    main()
