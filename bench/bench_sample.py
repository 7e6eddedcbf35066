"""Wall time of the README's main job, `moldiff sample -n 100` with the built-in model (whole
process: start-up, model load, the default sampler (moldiff/defaults.py), evaluation, writing
SDF/CSV), against the same command with EDM's sampler (500 ancestral steps), the two taken in
turn so that their ratio holds on a noisy machine. Target: < 180 s.

    python bench/bench_sample.py [--runs 2] [-n 100] [--no-compare]
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

EDM_SAMPLER = ["--solver", "ddpm", "--steps", "500"]


def timed(cmd: list[str]) -> tuple[float, dict]:
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--no-compare", action="store_true", help="skip the 500-step ancestral sampler")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            base = [sys.executable, "-m", "moldiff", "sample", "-n", str(args.n), "-o", f"{tmp}/s{i}.sdf", "--json"]
            seconds, summary = timed(base)
            row = {"default_seconds": seconds, "default_summary": summary}
            if not args.no_compare:
                row["edm_seconds"], row["edm_summary"] = timed(base + EDM_SAMPLER)
                row["ratio"] = row["edm_seconds"] / seconds
            rows.append(row)
            print(f"run {i}: default {seconds:.1f} s (atom stability {summary['atom_stability']:.3f}, validity "
                  f"{summary['validity']:.3f})" + ("" if args.no_compare else
                  f"; 500 ancestral steps {row['edm_seconds']:.1f} s ({row['ratio']:.1f}× slower)"))  # fmt: skip
    median = statistics.median(r["default_seconds"] for r in rows)
    print(f"moldiff sample -n {args.n}: median {median:.1f} s over {args.runs} runs (target < 180 s)")
    record = {"n": args.n, "runs": rows, "median_seconds": median}
    if not args.no_compare:
        record["median_ratio"] = statistics.median(r["ratio"] for r in rows)
        print(f"500 ancestral steps / default, median of pairs: {record['median_ratio']:.2f}")
    out = Path(__file__).parent / "results" / "sample.json"
    out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
