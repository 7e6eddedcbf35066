"""Training keeps copies of its model file at CPU-time marks, for learning curves."""

from moldiff.config import load_config
from moldiff.models import load_generator
from moldiff.train.loop import train

def test_snapshots_are_loadable_model_files_in_cpu_time_order(tmp_path, tiny_graph_settings):
    config = load_config("tiny_graph", [*tiny_graph_settings, f"out_dir={tmp_path}", "train.max_steps=12",
                                        "train.snapshot_every_cpu_minutes=0.0001"])  # fmt: skip
    train(config, log=lambda m: None)
    snaps = sorted((tmp_path / "snapshots").glob("model_step*.pt"))
    assert len(snaps) >= 2
    payloads = [load_generator(str(p))[2] for p in snaps]
    steps = [p["step"] for p in payloads]
    assert steps == sorted(steps) and 0 < steps[0] and steps[-1] <= 12
    assert [int(p.name[len("model_step") : -3]) for p in snaps] == steps


def test_no_snapshots_unless_asked(tmp_path, tiny_graph_settings):
    train(load_config("tiny_graph", [*tiny_graph_settings, f"out_dir={tmp_path}", "train.max_steps=3"]), log=lambda m: None)
    assert not (tmp_path / "snapshots").exists()
