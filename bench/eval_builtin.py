"""Quality of the coordinate-only built-in model with the default sampler: `moldiff sample -n 1000
--model qm9-edm`, scored by the EDM protocol.

    python bench/eval_builtin.py [-n 1000] [--model qm9-edm]

Writes bench/results/builtin_eval.json (summary, seconds, the command) for the model card.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--model", default="qm9-edm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["moldiff", "sample", "-n", str(args.n), "--model", args.model, "-o", f"{tmp}/samples.sdf", "--json"]
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - start
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    record = {"command": " ".join(cmd[:-3] + ["-o", "samples.sdf"]), "seconds": seconds, "summary": summary}
    out = Path(__file__).parent / "results" / "builtin_eval.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"{args.n} molecules in {seconds:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
