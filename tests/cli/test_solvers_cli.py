"""``moldiff sample --solver NAME --steps K [--solver-opt k=v]`` and ``moldiff nll``."""

import json

import pytest
import torch

from moldiff import defaults
from moldiff.cli.main import main
from moldiff.config import load_config
from moldiff.generator import build_network
from moldiff.solvers import SOLVERS
from moldiff.train.checkpoint import save_checkpoint
from moldiff.train.loop import model_payload


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """An untrained small model: enough to test plumbing."""
    cfg = load_config(None, ["model.hidden=16", "model.layers=2"])
    torch.manual_seed(0)
    net = build_network(cfg)
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_checkpoint(path, model_payload(cfg, net.state_dict(), {5: 1, 9: 2, 12: 1, 18: 3, 19: 3}, 0, []))
    return path


@pytest.mark.parametrize("solver, steps, options, nfe", [
    ("heun", 6, [], 5), ("pc", 6, ["--solver-opt", "corrector_steps=2"], 6),
    ("ddim", 4, ["--solver-opt", "eta=0.5"], 4), ("dpmpp-2m", 3, [], 3),
])  # fmt: skip
def test_sample_reports_the_nfe(model_file, tmp_path, capsys, solver, steps, options, nfe):
    out = tmp_path / "s.sdf"
    args = ["sample", "-n", "3", "-o", str(out), "--model", str(model_file), "--solver", solver, "--steps", str(steps)]
    assert main(args + options + ["--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    record = json.loads(out.with_suffix(".run.json").read_text())
    assert summary["nfe"] == nfe == record["nfe"]
    assert record["solver"] == solver and record["steps"] == steps


def test_grid_is_the_solvers_own_unless_given(model_file, tmp_path, capsys):
    runs = {}
    for name, extra in (("own", []), ("edm", ["--grid", "edm"])):
        out = tmp_path / f"{name}.sdf"
        assert main(["sample", "-n", "2", "-o", str(out), "--model", str(model_file), "--steps", "4", "--json",
                     *extra]) == 0  # fmt: skip
        runs[name] = (json.loads(out.with_suffix(".run.json").read_text()), out.read_text())
    assert runs["own"][0]["grid"] == SOLVERS[defaults.SOLVER].grid and runs["edm"][0]["grid"] == "edm"
    assert runs["own"][1] != runs["edm"][1]  # another grid, other molecules


def test_closed_shell_types_give_even_electron_counts(model_file, tmp_path, capsys):
    from moldiff.chem.io import read_sdf

    out = tmp_path / "cs.sdf"
    assert main(["sample", "-n", "6", "-o", str(out), "--model", str(model_file), "--steps", "3", "--json",
                 "--types", "closed-shell"]) == 0  # fmt: skip
    molset, _ = read_sdf(out)
    electrons = [int(molset.atomic_numbers[a:b].sum()) for a, b in zip(molset.ptr[:-1], molset.ptr[1:])]
    assert all(e % 2 == 0 for e in electrons) and json.loads(out.with_suffix(".run.json").read_text())["types"] == "closed-shell"


def test_adaptive_reports_its_mean_nfe_per_batch(model_file, tmp_path, capsys):
    out = tmp_path / "a.sdf"
    assert main(["sample", "-n", "3", "--batch-size", "2", "-o", str(out), "--model", str(model_file), "--solver",
                 "adaptive", "--solver-opt", "rtol=0.05", "--solver-opt", "atol=5e-2", "--json"]) == 0  # fmt: skip
    record = json.loads(out.with_suffix(".run.json").read_text())
    assert record["nfe"] >= 4 and record["solver_options"] == {"rtol": 0.05, "atol": 0.05}


@pytest.mark.parametrize("options, needle", [
    (["--solver", "ddim", "--solver-opt", "temperature=2"], "has no option temperature"),
    (["--solver", "ddim", "--solver-opt", "eta"], "KEY=VALUE"),
    (["--solver", "ddim", "--solver-opt", "eta=-1"], "eta must be >= 0"),
    (["--solver", "pc", "--solver-opt", "corrector_steps=1.5"], "must be int"),
    (["--grid", "quadratic"], "--grid: expected one of 'uniform', 'log_snr', 'log_snr_late', 'edm' or null (got 'quadratic')"),
    (["--types", "parity"], "--types: expected one of 'argmax', 'closed-shell' (got 'parity')"),
])  # fmt: skip
def test_bad_solver_options_are_one_line_errors(model_file, tmp_path, capsys, options, needle):
    base = ["sample", "-n", "1", "-o", str(tmp_path / "x.sdf"), "--model", str(model_file), "--steps", "2"]
    code = main(base + options)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "\n" not in err and needle in err, err


def test_nll_both_methods(model_file, tmp_path, capsys):
    out = tmp_path / "nll.json"
    assert main(["nll", "--model", str(model_file), "-n", "3", "--method", "both", "--elbo-samples", "1",
                 "--ode-steps", "1", "--json", "-o", str(out)]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads(out.read_text())
    assert result["n"] + result["skipped_unseen_atom_count"] == 3
    assert result["edm_reference_nll"] == -110.7  # a coordinate-only model with hydrogens, on QM9
    for method in ("elbo", "ode"):
        terms = result[method]["terms"]
        assert set(terms) >= {"recon_x", "recon_h", "log_p_n"}
        total = sum(terms.values()) - 2 * terms["log_p_n"]  # log p(N) enters with a minus sign
        assert abs(result[method]["nll"] - total) < 1e-3 * abs(total) + 1e-3


@pytest.mark.parametrize("args, needle", [
    (["--method", "magic"], "--method"),
    (["--data", "qm9:nope"], "unknown QM9 split"),
    (["--data", "missing.npz"], "--data"),
    (["-n", "0"], "-n must be"),
])  # fmt: skip
def test_nll_bad_arguments(model_file, capsys, args, needle):
    code = main(["nll", "--model", str(model_file)] + args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and needle in err, err


def test_nll_of_the_default_graph_model_has_no_edm_reference(capsys):
    assert main(["nll", "-n", "2", "--elbo-samples", "1", "--json"]) == 0  # the heavy-atom graph model qm9
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 2 and set(result["elbo"]["fields"]) >= {"charges", "bonds"}
    assert result["edm_reference_nll"] is None  # EDM's number counts hydrogens and no bonds
