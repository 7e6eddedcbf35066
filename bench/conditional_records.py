"""The per-molecule verdicts of ``bench_conditional.py``, kept on disk so that the EDM protocol's
10,000 molecules per property can be made in pieces, by several runs on one machine or several."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


class Records:
    """The per-molecule rows of one (property, sampling setting). With a directory they live in
    DIR/NAME.csv.gz, rewritten atomically after every batch, with the settings that made them in
    DIR/NAME.json (written once, by the first run), so a run cut off, or a later run on another
    machine, goes on from the last batch finished. Molecule i depends only on its seed, target and
    size, all drawn from --seed, so molecules 0..k-1 are the same whether one run made them or
    several (bit for bit when the batches fall the same way, e.g. --round a multiple of the batch;
    otherwise up to the rounding of other batch-mates)."""

    LEGACY = ("batch",)  # saved by the first version; it changes only the rounding

    def __init__(self, directory: Path | None, name: str, settings: dict) -> None:
        import pandas as pd

        self.frame, self.settings = pd.DataFrame(), settings
        self.path = self.meta = None
        if directory is None:
            return
        self.path, self.meta = directory / f"{name}.csv.gz", directory / f"{name}.json"
        if self.meta.exists():
            self._check_settings()
        elif self.path.exists():
            raise SystemExit(f"--records: {self.path} has no {self.meta.name} to say how it was made")
        if self.path.exists():
            self.frame = pd.read_csv(self.path)
            if not np.array_equal(self.frame["index"].to_numpy(), np.arange(len(self.frame))):
                raise SystemExit(f"--records: {self.path} does not hold molecules 0, 1, 2, ... in order")

    def _check_settings(self) -> None:
        saved = {k: v for k, v in json.loads(self.meta.read_text()).items() if k not in self.LEGACY}
        differ = sorted(k for k in set(saved) | set(self.settings) if saved.get(k) != self.settings.get(k))
        if differ:
            raise SystemExit(f"--records: {self.path} was measured with other settings "
                             f"({', '.join(differ)}); choose another --records directory")  # fmt: skip

    def _claim(self) -> None:
        """Writes the settings file unless another run already has (then they must agree)."""
        import os

        from moldiff.paths import atomic_write_text

        draft = self.meta.with_name(f".{self.meta.name}.draft{os.getpid()}")
        atomic_write_text(draft, json.dumps(self.settings, indent=1) + "\n")
        try:
            os.link(draft, self.meta)  # fails if it exists: two first runs cannot both write it
        except FileExistsError:
            self._check_settings()
        finally:
            draft.unlink()

    def check_targets(self, targets: np.ndarray) -> None:
        """The saved molecules were drawn for these targets (the same data and drawing code)."""
        saved = self.frame["target"].to_numpy(float) if len(self.frame) else np.empty(0)
        k = min(len(saved), len(targets))
        if not np.allclose(saved[:k], targets[:k], rtol=1e-9, atol=0):
            raise SystemExit(f"--records: {self.path} holds molecules drawn for other targets")

    def __len__(self) -> int:
        return len(self.frame)

    def add(self, rows) -> None:
        import pandas as pd

        from moldiff.paths import atomic_write_bytes

        if self.path is not None and not len(self.frame):  # the first batch: write or check the settings
            self._claim()
        self.frame = pd.concat([self.frame, rows], ignore_index=True) if len(self.frame) else rows
        if self.path is not None:
            atomic_write_bytes(self.path, _gzip_csv(self.frame))  # mtime 0: the same rows, the same bytes

    def first(self, n: int):
        return self.frame.iloc[:n]


def _gzip_csv(frame) -> bytes:
    import gzip

    return gzip.compress(frame.to_csv(index=False).encode(), mtime=0)
