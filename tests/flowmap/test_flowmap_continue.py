"""A flow map's model file records its training position and teachers, so a machine without the
training state continues it (`train.continues` with --resume) as it does a diffusion model."""

from moldiff.config import FlowMapRunConfig, load_config
from moldiff.flowmap.train import train_flowmap
from moldiff.train.checkpoint import load_checkpoint
from moldiff.train.loop import train

TINY = ["data.max_train=64", "model.hidden=16", "model.layers=2", "train.batch_size=8", "train.warmup_steps=2",
        "train.log_every=2", "train.eval_every=1000", "train.val_molecules=16", "tracking.enabled=false",
        "train.threads=1", "diffusion.schedule=cosine"]  # fmt: skip


def test_a_distilled_flow_map_continues_from_its_model_file(tmp_path):
    train(load_config(None, TINY + [f"out_dir={tmp_path}/teacher", "train.max_steps=2"]), log=lambda m: None)
    options = ["flowmap.objective=teacher-ode", f"flowmap.teacher={tmp_path}/teacher/model.pt", "flowmap.substeps=1"]

    def run(name: str, steps: int, *extra: str, resume: bool = False) -> list[str]:
        log: list[str] = []
        cfg = load_config(None, TINY + options + [f"out_dir={tmp_path}/{name}", f"train.max_steps={steps}", *extra],
                          FlowMapRunConfig)  # fmt: skip
        train_flowmap(cfg, resume=resume, log=log.append)
        return log

    run("shipped", 4)
    shipped = load_checkpoint(tmp_path / "shipped/model.pt")
    assert shipped["teachers"][0]["from_step"] == 0 and (shipped["epoch"], shipped["cursor"]) == (0, 4)
    log = run("fresh", 6, f"train.continues={tmp_path}/shipped/model.pt", resume=True)
    assert any("continuing" in m and "step 4" in m for m in log)
    state = load_checkpoint(tmp_path / "fresh/last.pt")
    assert state["step"] == 6 and [r["step"] for r in state["history"] if "loss" in r] == [2, 4, 6]
    assert state["teachers"] == shipped["teachers"]  # the same teacher weights: one stretch
