"""The EDM conditional protocol (bench/bench_conditional.py) keeps every molecule's verdicts per
batch, so a 10,000-molecule run can be spread over several runs and machines. These tests pin
what that promise rests on: records go on where they stopped and refuse to mix settings."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def bench(load_bench):
    return load_bench("bench_conditional")


def batch_rows(first: int, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng([seed, first])
    return pd.DataFrame({"index": np.arange(first, first + n), "target": rng.normal(size=n),
                         "judged": rng.normal(size=n), "guide": rng.normal(size=n),
                         "n_atoms": np.full(n, 10), "n_stable_atoms": rng.integers(8, 11, n),
                         "mol_stable": rng.random(n) < 0.5, "valid": rng.random(n) < 0.8,
                         "seconds": np.full(n, 0.5), "device": "cpu"})  # fmt: skip


SETTINGS = {"property": "gap", "model": "abc", "precision": "bf16"}


def test_records_reopened_go_on_after_the_last_batch(bench, tmp_path):
    records = bench.Records(tmp_path, "gap_cfg", SETTINGS)
    records.add(batch_rows(0, 3))
    records.add(batch_rows(3, 3))
    again = bench.Records(tmp_path, "gap_cfg", SETTINGS)
    assert len(again) == 6
    pd.testing.assert_frame_equal(again.first(6).reset_index(drop=True),
                                  pd.concat([batch_rows(0, 3), batch_rows(3, 3)], ignore_index=True),
                                  check_dtype=False)  # fmt: skip


def test_records_of_other_settings_are_refused(bench, tmp_path):
    bench.Records(tmp_path, "gap_cfg", SETTINGS).add(batch_rows(0, 3))
    with pytest.raises(SystemExit, match="other settings \\(precision\\)"):
        bench.Records(tmp_path, "gap_cfg", {**SETTINGS, "precision": "fp32"})


def test_records_of_the_first_version_with_a_batch_size_are_accepted(bench, tmp_path):
    bench.Records(tmp_path, "gap_cfg", SETTINGS).add(batch_rows(0, 3))
    meta = tmp_path / "gap_cfg.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "batch": 25}))  # only rounding: not a setting
    assert len(bench.Records(tmp_path, "gap_cfg", SETTINGS)) == 3


def test_records_without_their_settings_file_are_refused(bench, tmp_path):
    bench.Records(tmp_path, "gap_cfg", SETTINGS).add(batch_rows(0, 3))
    (tmp_path / "gap_cfg.json").unlink()
    with pytest.raises(SystemExit, match="has no gap_cfg.json"):
        bench.Records(tmp_path, "gap_cfg", SETTINGS)


def test_records_drawn_for_other_targets_are_refused(bench, tmp_path):
    rows = batch_rows(0, 3)
    bench.Records(tmp_path, "gap_cfg", SETTINGS).add(rows)
    records = bench.Records(tmp_path, "gap_cfg", SETTINGS)
    records.check_targets(np.r_[rows["target"].to_numpy(), 1.0, 2.0])  # more molecules asked for: fine
    records.check_targets(rows["target"].to_numpy()[:2])  # fewer (a report on the first two): fine
    with pytest.raises(SystemExit, match="other targets"):
        records.check_targets(rows["target"].to_numpy() + 1.0)


def test_records_out_of_order_are_refused(bench, tmp_path):
    bench.Records(tmp_path, "gap_cfg", SETTINGS).add(batch_rows(3, 3))
    with pytest.raises(SystemExit, match="in order"):
        bench.Records(tmp_path, "gap_cfg", SETTINGS)


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


def test_a_row_short_of_n_says_how_many_molecules_it_holds(bench):
    assert bench.row_count(100, [{"n": 100}, {"n": 100}]) == ""
    assert bench.row_count(10_000, [{"n": 2300}, {"n": 2300}]) == " (n = 2,300)"
    assert bench.row_count(10_000, [{"n": 2400}, {"n": 2300}]) == " (n = 2,300–2,400)"
    assert bench.row_count(300, [{}]) == ""  # details saved before rows counted their molecules


def test_the_standing_against_published_rows_counts_standard_errors(bench):
    measured = {"moldiff": {"alpha": 2.0, "gap": 700.0, "mu": 0.8}}
    errors = {"moldiff": {"alpha": 0.1, "gap": 5.0, "mu": None}}
    edm = {"EDM (published)": bench.PUBLISHED_ROWS["EDM (published)"]}
    text = bench.standing(measured, errors, ["alpha", "gap", "mu", "Cv"], edm)
    row = next(line for line in text.splitlines() if line.startswith("| moldiff − EDM"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    assert cells == ["−0.76 (−7.6 SE)", "+45 (+9.0 SE)", "−0.311", "–"]


def test_the_report_sets_every_measured_row_against_edm_and_eegsde(bench, tmp_path):
    from argparse import Namespace

    args = Namespace(n=10_000, properties=["alpha", "gap"], solver="dpmpp-2m-sde", steps=100, guidance_scale=1.0,
                     model=None, joint=True, init=None, max_train=None, eegsde_tuned={}, guide_predictor=None,
                     work_dir=None,
                     steer_predictors=[], precision_resolved="bf16", references_only=False, out=tmp_path / "report")  # fmt: skip
    reference = {name: {"alpha": 9.0, "gap": 1500.0} for name in
                 ("Naive upper bound", "#Atoms (shuffled within size)", "#Atoms", "QM9 lower bound")}  # fmt: skip
    details = {"alpha": {"steered": {"mae": 2.0, "mae_se": 0.1, "n": 400, "model_step": 7}},
               "gap": {"steered": {"mae": 500.0, "mae_se": 10.0, "n": 400, "model_step": 7}}}  # fmt: skip
    text = bench.write_results(args, reference, details, {"steered": "moldiff steered"}, 5, started=0.0)
    assert (tmp_path / "report.md").read_text() == text
    lines = text.split("### Against published")[1].splitlines()
    assert "| moldiff steered (n = 400) − EDM | −0.76 (−7.6 SE) | −155 (−15.5 SE) |" in lines
    assert "| moldiff steered (n = 400) − EEGSDE | −0.5 (−5.0 SE) | +13 (+1.3 SE) |" in lines


def parse(bench, monkeypatch, *argv: str):
    monkeypatch.setattr("sys.argv", ["bench_conditional.py", *argv])
    return bench.parse_args()


def test_resume_keeps_a_finished_property_that_has_no_tuned_row(bench, monkeypatch, tmp_path):
    out = tmp_path / "conditional"
    args = parse(bench, monkeypatch, "--properties", "alpha", "gap", "--eegsde-scale", "--eegsde-tuned", "alpha=16",
                 "--predictor-minutes", "1", "--n", "10", "--resume", "--out", str(out),
                 "--work-dir", str(tmp_path / "work"))  # fmt: skip
    args.precision_resolved = "fp32"  # main() resolves it

    def save(details: dict) -> None:
        out.with_suffix(".json").write_text(json.dumps({"details": details, "args": bench.saved_args(args)}))

    full = {"mae": 1.0, "n": 10, "model_step": 1}
    save({"alpha": {"cfg": full, "eegsde_tuned": full}, "gap": {"cfg": full}})
    assert sorted(bench.resumed_details(args)) == ["alpha", "gap"]  # gap has no λ, so no tuned row to wait for
    save({"alpha": {"cfg": full, "eegsde_tuned": full}, "gap": {"cfg": {**full, "n": 5}}})
    assert sorted(bench.resumed_details(args)) == ["alpha"]  # a row short of --n is measured again


def test_rows_are_checked_after_tiny_gives_its_guide(bench, monkeypatch, tmp_path):
    args = parse(bench, monkeypatch, "--tiny", "--rows", "steered", "--steer-particles", "2", "--eegsde-scale", "1")
    assert args.rows == ["steered"] and args.predictor_minutes > 0
    with pytest.raises(SystemExit):  # without --tiny there is no guide for a steered row
        parse(bench, monkeypatch, "--rows", "steered", "--steer-particles", "2")


def test_a_row_choice_that_leaves_a_property_without_rows_is_refused(bench, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        parse(bench, monkeypatch, "--properties", "alpha", "gap", "--guide-predictor", "qm9-predictor", "--rows",
              "tuned", "--eegsde-tuned", "alpha=16")  # fmt: skip
    assert "gives gap no row" in capsys.readouterr().err


def test_a_report_needs_an_existing_records_directory(bench, monkeypatch, tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse(bench, monkeypatch, "--report-only", "--records", str(tmp_path / "typo"))
    assert "is not a directory of records" in capsys.readouterr().err


def test_without_a_work_dir_the_built_in_models_are_measured(bench, monkeypatch):
    from moldiff.models import BUILTIN_PREDICTORS

    args = parse(bench, monkeypatch, "--properties", "gap")
    assert args.work_dir is None and args.joint  # qm9-cond is the joint model of all six properties
    assert bench.judge_file(args) == BUILTIN_PREDICTORS["qm9-judge"]
    with pytest.raises(SystemExit):  # training a guide needs somewhere to put it
        parse(bench, monkeypatch, "--predictor-minutes", "75")


def test_the_shipped_records_were_measured_with_the_built_in_models():
    """The 10,000-molecule records name their models by digest: the built-in files are those models."""
    from moldiff.models import BUILTIN, BUILTIN_PREDICTORS
    from moldiff.paths import file_digest

    records = Path(__file__).resolve().parents[2] / "bench" / "results" / "conditional_10k"
    settings = [json.loads(path.read_text()) for path in sorted(records.glob("*.json"))]
    assert len(settings) == 6
    for s in settings:
        assert s["model"] == file_digest(BUILTIN["qm9-cond"])
        assert s["judge"] == file_digest(BUILTIN_PREDICTORS["qm9-judge"])
        assert s["predictor"] == file_digest(BUILTIN_PREDICTORS["qm9-predictor"])
