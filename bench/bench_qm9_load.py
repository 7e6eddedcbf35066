"""Seconds to load full QM9 a second time, i.e. from the processed cache. Target: under 5 s.

    python bench/bench_qm9_load.py           # uses (and if needed fills) $MOLDIFF_HOME/qm9
    python bench/bench_qm9_load.py --cold    # parses qm9pack into a fresh temporary cache first
"""

import sys
import tempfile
import time
from pathlib import Path

from moldiff.data.qm9 import load_qm9


def _timed(cache_dir: Path | None) -> tuple[float, int]:
    start = time.perf_counter()
    data = load_qm9(cache_dir=cache_dir)
    return time.perf_counter() - start, len(data)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = Path(tmp) if "--cold" in sys.argv[1:] else None
        first, _ = _timed(cache_dir)
        second, n = _timed(cache_dir)
    print(f"QM9 ({n} molecules): first load {first:.2f} s, second load {second:.2f} s")


if __name__ == "__main__":
    main()
