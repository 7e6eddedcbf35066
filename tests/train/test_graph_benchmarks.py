"""bench/bench_graph_models.py and bench/bench_learning_curve.py on a tiny graph model: the records
they write, and the same numbers for the same seeds."""

import json
import shutil

import pytest

from moldiff.config import load_config
from moldiff.train.loop import train


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory, tiny_graph_settings):
    """A training out_dir with a snapshot at step 2 and its model at step 4."""
    out = tmp_path_factory.mktemp("graph_run")
    train(load_config("tiny_graph", tiny_graph_settings + [f"out_dir={out}", "train.max_steps=2"]), log=lambda m: None)
    (out / "snapshots").mkdir()
    shutil.copy(out / "model.pt", out / "snapshots" / "model_0001.pt")
    again = load_config("tiny_graph", tiny_graph_settings + [f"out_dir={out}", "train.max_steps=4"])
    train(again, resume=True, log=lambda m: None)
    shutil.copy(out / "model.pt", out / "snapshots" / "model_0002.pt")  # the same step as model.pt: kept once
    return out


@pytest.fixture(scope="module")
def benches(load_bench):
    return {name: load_bench(name) for name in ("bench_graph_models", "bench_learning_curve")}


def _without_timings(rows: list[dict]) -> str:
    return json.dumps([{k: v for k, v in r.items() if "seconds" not in k} for r in rows], sort_keys=True)


def test_models_share_seeds_and_atom_counts_and_the_same_seeds_give_the_same_table(benches, out_dir, tmp_path):
    bench = benches["bench_graph_models"]
    models = [f"early={out_dir / 'snapshots' / 'model_0001.pt'}", f"late={out_dir / 'model.pt'}"]
    path = tmp_path / "graph_models.json"
    record = bench.benchmark(models, [3, 4], n=5, seed=3, batch_size=5, posebusters=2, out=path, log=lambda m: None)
    assert json.loads(path.read_text())["rows"] == json.loads(json.dumps(bench._round(record)))["rows"]
    assert list(record["models"]) == ["early", "late"]
    assert record["models"]["early"]["step"] == 2 and record["models"]["late"]["step"] == 4
    assert record["models"]["late"]["shares"] == "seeds and atom counts"
    assert [(r["model"], r["nfe"]) for r in record["rows"]] == [("early", 3), ("early", 4), ("late", 3), ("late", 4)]
    for row, errors, other in zip(record["rows"], record["standard_errors"], record["other_measures"]):
        assert row["bonds"] == "model" and 0 <= row["valid_connected"] <= 1 and 0 <= row["edm_atom_stability"] <= 1
        assert row["posebusters_pass"] is not None and errors["posebusters_n"] == 2 and errors["n"] == 5
        assert other["nfe_spent"] == row["nfe"] and row["valid_connected"] <= other["validity"]
    again = bench.benchmark(models, [3, 4], n=5, seed=3, batch_size=5, posebusters=2, log=lambda m: None)
    assert _without_timings(again["rows"]) == _without_timings(record["rows"])
    assert _without_timings(again["other_measures"]) == _without_timings(record["other_measures"])
    assert again["standard_errors"] == record["standard_errors"] and again["models"] == record["models"]


def test_a_coordinate_model_is_judged_with_the_bonds_moldiff_sample_writes(benches):
    from moldiff.chem.io import EDM_BOND_SOURCE, bonds_to_write
    from moldiff.data.molset import MolSet

    bench = benches["bench_graph_models"]
    water = MolSet(atomic_numbers=[8, 1, 1], positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], ptr=[0, 3])
    judged, source = bench.written(water)
    assert source == EDM_BOND_SOURCE and judged.has_bonds and not water.has_bonds
    assert (judged.bonds == bonds_to_write(water)[0]).all() and len(judged.bonds) == 2
    row = bench.score(water)
    assert row["valid_connected"] == 1.0 and row["mol_stability"] == 1.0 and row["geometry_consistency"] == 1.0
    assert row["edm_mol_stability"] == 1.0 and row["bonds"] == EDM_BOND_SOURCE


def test_the_learning_curve_scores_each_saved_model_once_against_its_cpu_hours(benches, out_dir, tmp_path):
    bench = benches["bench_learning_curve"]
    files = bench.model_files(out_dir)
    assert [step for _, step, _ in files] == [2, 4] and files[0][2] < files[1][2]
    path = tmp_path / "curve.json"
    runs = {"a": out_dir, "b": out_dir}
    record = bench.curve(runs, n=4, nfe=3, batch_size=4, out=path, log=lambda m: None)
    assert [(r["run"], r["step"]) for r in record["rows"]] == [("a", 2), ("a", 4), ("b", 2), ("b", 4)]
    assert record["rows"][0]["cpu_hours"] < record["rows"][1]["cpu_hours"]
    for key in bench.KEYS:
        assert record["rows"][0][key] == record["rows"][2][key]  # one file, one seed: one answer
        assert 0 <= record["rows"][0][key] <= 1 and f"{key}_se" in record["rows"][0]
    equal = record["at_equal_cpu_hours"]
    assert [r["run"] for r in equal] == ["a", "b"] and equal[0]["cpu_hours"] == record["rows"][1]["cpu_hours"]
    assert equal[0]["valid_connected"] == record["rows"][1]["valid_connected"]
    previous = json.loads(path.read_text())
    seen = []
    again = bench.curve(runs, n=4, nfe=3, batch_size=4, previous=previous, log=seen.append)
    assert seen == [] and again["rows"] == previous["rows"]  # nothing sampled again
    fresh = bench.curve({"a": out_dir}, n=4, nfe=3, batch_size=4, log=seen.append)
    assert len(seen) == 2 and _without_timings(fresh["rows"]) == _without_timings(record["rows"][:2])


def test_at_equal_cpu_hours_interpolates_between_a_runs_files(benches):
    bench = benches["bench_learning_curve"]
    zero = {k: 0.0 for k in bench.KEYS}
    rows = [{"run": "long", "cpu_hours": 1.0, **zero}, {"run": "long", "cpu_hours": 3.0, **{k: 1.0 for k in bench.KEYS}},
            {"run": "short", "cpu_hours": 0.5, **zero}, {"run": "short", "cpu_hours": 2.0, **zero}]  # fmt: skip
    equal = {r["run"]: r for r in bench.at_equal_cpu_hours(rows)}
    assert equal["long"]["cpu_hours"] == 2.0 and equal["long"]["valid_connected"] == pytest.approx(0.5)
    assert equal["short"]["valid_connected"] == 0.0
    assert bench.at_equal_cpu_hours(rows[:2]) == []


def test_models_of_another_vocabulary_share_the_seeds_and_draw_their_own_atom_counts(benches):
    import numpy as np

    class Sizes:  # what run_inputs reads of a generator: its training sizes
        def __init__(self, low, high):
            self.low, self.high = low, high

        def sample_atom_counts(self, n, rng):
            return rng.integers(self.low, self.high, size=n)

    bench = benches["bench_graph_models"]
    explicit = {"elements": ["H", "C"], "hydrogens": True}
    heavy = {"elements": ["C"], "hydrogens": False}
    generators = {"a": Sizes(10, 20), "b": Sizes(10, 20), "heavy": Sizes(1, 5)}
    inputs = bench.run_inputs(generators, {"a": explicit, "b": dict(explicit), "heavy": heavy}, 6, seed=1)
    assert inputs["a"][:2] == inputs["b"][:2] and inputs["b"][2] == "seeds and atom counts"
    assert inputs["heavy"][0] == inputs["a"][0] and "own training sizes" in inputs["heavy"][2]
    assert np.all(np.array(inputs["heavy"][1]) < 5) and len(set(inputs["a"][0])) == 6
