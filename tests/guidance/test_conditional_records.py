"""The EDM conditional protocol (bench/bench_conditional.py) keeps every molecule's verdicts per
batch, so a 10,000-molecule run can be spread over several sessions and machines. These tests pin
what that promise rests on: records go on where they stopped, on the batch grid, and refuse to mix
settings."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_conditional.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_conditional", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batch_rows(first: int, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng([seed, first])
    return pd.DataFrame({"index": np.arange(first, first + n), "target": rng.normal(size=n),
                         "judged": rng.normal(size=n), "guide": rng.normal(size=n),
                         "n_atoms": np.full(n, 10), "n_stable_atoms": rng.integers(8, 11, n),
                         "mol_stable": rng.random(n) < 0.5, "valid": rng.random(n) < 0.8,
                         "seconds": np.full(n, 0.5), "device": "cpu"})  # fmt: skip


SETTINGS = {"property": "gap", "model": "abc", "precision": "bf16", "batch": 3}


def test_records_reopened_go_on_after_the_last_batch(bench, tmp_path):
    records = bench.Records(tmp_path, "gap_cfg", SETTINGS, batch=3, keep=9)
    records.add(batch_rows(0, 3))
    records.add(batch_rows(3, 3))
    again = bench.Records(tmp_path, "gap_cfg", SETTINGS, batch=3, keep=9)
    assert len(again) == 6
    pd.testing.assert_frame_equal(again.first(6).reset_index(drop=True),
                                  pd.concat([batch_rows(0, 3), batch_rows(3, 3)], ignore_index=True),
                                  check_dtype=False)  # fmt: skip


def test_a_short_last_batch_is_redone_when_more_molecules_are_asked_for(bench, tmp_path):
    records = bench.Records(tmp_path, "gap_cfg", SETTINGS, batch=3, keep=5)
    records.add(batch_rows(0, 3))
    records.add(batch_rows(3, 2))  # --n 5 ends with a batch of two
    assert len(bench.Records(tmp_path, "gap_cfg", SETTINGS, batch=3, keep=5)) == 5
    assert len(bench.Records(tmp_path, "gap_cfg", SETTINGS, batch=3, keep=9)) == 3


def test_records_of_other_settings_are_refused(bench, tmp_path):
    bench.Records(tmp_path, "gap_cfg", SETTINGS, batch=3, keep=9).add(batch_rows(0, 3))
    with pytest.raises(SystemExit, match="other settings \\(precision\\)"):
        bench.Records(tmp_path, "gap_cfg", {**SETTINGS, "precision": "fp32"}, batch=3, keep=9)


def test_records_out_of_order_are_refused(bench, tmp_path):
    bench.Records(tmp_path, "gap_cfg", SETTINGS, batch=3, keep=9).add(batch_rows(3, 3))
    with pytest.raises(SystemExit, match="in order"):
        bench.Records(tmp_path, "gap_cfg", SETTINGS, batch=3, keep=9)


def test_the_summary_of_records_is_the_judges_mae_over_every_molecule(bench):
    frame = pd.concat([batch_rows(0, 3), batch_rows(3, 3)], ignore_index=True)
    frame.loc[4, "judged"] = np.nan  # an element the judge does not know: not judged, still generated
    summary = bench.summarise(frame, guided=True)
    errors = (frame["judged"] - frame["target"]).abs().dropna()
    assert summary["mae"] == pytest.approx(errors.mean())
    assert summary["mae_se"] == pytest.approx(errors.std(ddof=1) / np.sqrt(5))
    assert (summary["n"], summary["n_judged"]) == (6, 5)
    assert summary["validity"] == pytest.approx(frame["valid"].mean())
    assert summary["atom_stability"] == pytest.approx(frame["n_stable_atoms"].sum() / 60)
    assert summary["guide_mae"] == pytest.approx((frame["guide"] - frame["target"]).abs().mean())
    assert bench.summarise(frame.iloc[:0], guided=False) is None


def test_rounds_end_at_n(bench):
    from argparse import Namespace

    assert bench.rounds(Namespace(round=None, report_only=False, n=10)) == [10]
    assert bench.rounds(Namespace(round=4, report_only=False, n=10)) == [4, 8, 10]
    assert bench.rounds(Namespace(round=5, report_only=False, n=10)) == [5, 10]
