"""``moldiff train-flowmap`` then ``moldiff sample --solver flow-map --steps K``."""

import json

from moldiff.cli.main import main

TINY = ["data.max_train=64", "model.hidden=16", "model.layers=2", "train.batch_size=8", "train.warmup_steps=2",
        "train.log_every=1000", "train.eval_every=1000", "train.val_molecules=16", "train.threads=1",
        "train.max_steps=2", "diffusion.schedule=cosine"]  # fmt: skip


def test_train_flowmap_then_sample_with_k_jumps(tmp_path, capsys):
    sets = [x for s in TINY + [f"out_dir={tmp_path}/fm"] for x in ("--set", s)]
    assert main(["train-flowmap", "--no-track", *sets]) == 0
    model = tmp_path / "fm/model.pt"
    for steps, options in ((1, []), (2, ["--solver-opt", "gamma=0.5"])):
        out = tmp_path / f"s{steps}.sdf"
        capsys.readouterr()
        args = ["sample", "-n", "3", "-o", str(out), "--model", str(model), "--solver", "flow-map",
                "--steps", str(steps), "--json", *options]  # fmt: skip
        assert main(args) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["nfe"] == steps
    capsys.readouterr()
    base = ["sample", "-n", "1", "-o", str(tmp_path / "x.sdf"), "--model", str(model), "--steps", "2"]
    assert main(base + ["--solver", "ddpm"]) == 2
    assert "sample it with --solver flow-map" in capsys.readouterr().err


def test_train_with_a_flowmap_section_distils_a_warm_started_teacher(tmp_path, capsys):
    def sets(extra):
        return [x for s in TINY + extra for x in ("--set", s)]

    assert main(["train", "--no-track", *sets([f"out_dir={tmp_path}/teacher"])]) == 0
    teacher = str(tmp_path / "teacher/model.pt")
    extra = [f"out_dir={tmp_path}/fm", "flowmap.objective=teacher-ode", f"flowmap.teacher={teacher}",
             "flowmap.parameterization=eps", "flowmap.teacher_solver=dpmpp-2m", "flowmap.substeps=2",
             "flowmap.grid_share=0.5"]  # fmt: skip
    capsys.readouterr()
    assert main(["train", "--no-track", "--init", teacher, *sets(extra)]) == 0
    assert "start at zero in embed.weight" in capsys.readouterr().out
    record = json.loads((tmp_path / "fm/run.json").read_text())
    assert record["config"]["flowmap"]["parameterization"] == "eps" and record["init"] == teacher
    out, model = tmp_path / "fm.sdf", str(tmp_path / "fm/model.pt")
    capsys.readouterr()
    assert main(["sample", "-n", "2", "-o", str(out), "--model", model, "--json"]) == 0  # a flow map: 4 jumps
    summary = json.loads(capsys.readouterr().out)
    assert summary["nfe"] == 4 and out.exists()
    record = json.loads(out.with_suffix(".run.json").read_text())
    assert record["solver"] == "flow-map" and record["steps"] == 4
    # guidance is applied per jump: a scaffold is kept by an eps flow map
    assert main(["sample", "-n", "2", "-o", str(out), "--model", model, "--scaffold-smiles", "CO", "--n-atoms", "8",
                 "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["has_scaffold"] == 1.0
