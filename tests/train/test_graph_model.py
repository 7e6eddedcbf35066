"""A graph model (data.graph, model.backbone egnn_pairs) trains on QM9's bonds and charges, saves,
loads, resumes, and samples molecules that carry its own bonds and charges."""

import numpy as np
import pytest
import torch

from moldiff.chem.graphs import load_qm9_graphs
from moldiff.config import DataConfig, load_config
from moldiff.data.batch import collate
from moldiff.errors import MoldiffError
from moldiff.models import load_generator
from moldiff.solvers import get_solver, solver_times
from moldiff.train.checkpoint import load_checkpoint
from moldiff.train.data import load_training_data
from moldiff.train.loop import train

TINY = ["data.max_train=16", "model.hidden=16", "model.pair_hidden=8", "train.batch_size=4", "train.warmup_steps=2",
        "train.log_every=1000", "train.eval_every=1000", "train.checkpoint_every=1000", "train.val_molecules=8",
        "tracking.enabled=false", "train.threads=1"]  # fmt: skip


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("graph")
    train(load_config("tiny_graph", TINY + [f"out_dir={out}", "train.max_steps=4"]), log=lambda m: None)
    return out / "model.pt"


def _sample(generator, name: str, seeds: list[int], sizes: list[int]):
    times = solver_times(name, 6, generator.denoiser.schedule)
    return generator.sample(seeds, sizes, solver=get_solver(name), times=times)


@pytest.mark.parametrize("solver", ["ddpm", "heun"])
def test_a_trained_graph_model_samples_its_own_bonds_and_charges(model_file, solver):
    generator, config, _ = load_generator(str(model_file))
    assert generator.graph_model and config.model.backbone == "egnn_pairs"
    mols = _sample(generator, solver, [11, 12, 13], [4, 7, 9])
    assert len(mols) == 3 and mols.has_bonds and list(mols.n_atoms) == [4, 7, 9]
    for m in range(3):
        bonds = mols.molecule_bonds(m)
        i, j, order = bonds.T
        assert (i < j).all() and (j < mols.n_atoms[m]).all() and np.isin(order, [1, 2, 3]).all()
    assert np.isin(mols.charges, [-1, 0, 1]).all() and mols.charges.shape == (20,)
    again = _sample(generator, solver, [11, 12, 13], [4, 7, 9])
    assert np.array_equal(mols.positions, again.positions) and np.array_equal(mols.bonds, again.bonds)
    assert np.array_equal(mols.charges, again.charges) and np.array_equal(mols.atomic_numbers, again.atomic_numbers)
    other = _sample(generator, solver, [21, 12, 13], [4, 7, 9])
    assert not np.array_equal(mols.positions[:4], other.positions[:4])


def test_graph_training_resumes_where_it_stopped(tmp_path):
    tiny = [*TINY, "train.log_every=2"]
    train(load_config("tiny_graph", tiny + [f"out_dir={tmp_path}/full", "train.max_steps=4"]), log=lambda m: None)
    train(load_config("tiny_graph", tiny + [f"out_dir={tmp_path}/part", "train.max_steps=2"]), log=lambda m: None)
    rest = load_config("tiny_graph", tiny + [f"out_dir={tmp_path}/part", "train.max_steps=4"])
    train(rest, resume=True, log=lambda m: None)
    a, b = (load_checkpoint(tmp_path / f"{run}/last.pt") for run in ("full", "part"))
    assert b["step"] == 4 and {"loss_bonds", "loss_charges"} <= set(b["history"][-1])
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_encoding_then_decoding_a_clean_graph_gives_its_bonds_and_charges(model_file):
    generator, _, _ = load_generator(str(model_file))
    data, _ = load_qm9_graphs("valid")
    zwitterion = int(np.flatnonzero(data.charges != 0)[0])  # a molecule with charged atoms
    molecule = int(np.searchsorted(data.ptr, zwitterion, side="right") - 1)
    index = [0, 1, molecule]
    z0, graph = generator.encode(collate(data, index, generator.vocab))
    back = generator.decode(z0, graph)
    original = data.subset(index)
    assert np.array_equal(back.bonds, original.bonds) and np.array_equal(back.bond_ptr, original.bond_ptr)
    assert np.array_equal(back.charges, original.charges) and (back.charges != 0).any()
    assert np.array_equal(back.atomic_numbers, original.atomic_numbers)


def test_graph_settings_that_cannot_work_are_one_line_errors():
    with pytest.raises(MoldiffError, match="egnn_pairs"):
        load_config(None, ["model.backbone=egnn_pairs"])
    with pytest.raises(MoldiffError, match="egnn_pairs"):
        load_config(None, ["data.graph=true"])
    with pytest.raises(MoldiffError, match="known_atoms"):
        load_config("tiny_graph", ["model.known_atoms=true"])
    with pytest.raises(MoldiffError, match="only qm9"):
        load_training_data(DataConfig(dataset="mols.sdf", graph=True))


def test_a_charge_outside_the_models_charges_is_an_error(model_file):
    generator, _, _ = load_generator(str(model_file))
    generator.charges = (0,)
    data, _ = load_qm9_graphs("valid")
    charged = int(np.searchsorted(data.ptr, int(np.flatnonzero(data.charges != 0)[0]), side="right") - 1)
    with pytest.raises(MoldiffError, match="formal charges"):
        generator.encode(collate(data, [charged], generator.vocab))


def test_steering_refuses_a_graph_model_in_one_line(model_file, tmp_path, capsys):
    from moldiff.cli.main import main

    model = model_file
    for extra in (["--steer", "valid", "--particles", "2"],):
        assert main(["sample", "--model", str(model), "-n", "2", "--steps", "5", "-o", str(tmp_path / "o.sdf"), *extra]) == 2
        assert "do not take graph models" in capsys.readouterr().err
