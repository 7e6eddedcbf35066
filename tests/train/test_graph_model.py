"""A graph model (data.graph, model.backbone egnn_pairs) trains on QM9's bonds and charges, saves,
loads, resumes, and samples molecules that carry its own bonds and charges."""

import numpy as np
import pytest
import torch

from moldiff.chem.graphs import load_qm9_graphs
from moldiff.config import DataConfig, load_config
from moldiff.data.batch import collate
from moldiff.data.molset import MolSet
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


def test_a_heavy_atom_graph_model_writes_molecules_with_their_hydrogens(model_file):
    from dataclasses import replace

    from moldiff.chem.graph_eval import evaluate_graphs
    from moldiff.chem.rdmol import canonicalize_smiles
    from moldiff.generator import MoleculeGenerator, build_network

    heavy_config = load_config("tiny_graph", [*TINY, "data.hydrogens=false", "data.elements=[C,N,O,F]"])
    assert MoleculeGenerator.from_config(heavy_config, build_network(heavy_config), {3: 1}).implicit_hydrogens
    generator, config, _ = load_generator(str(model_file))
    assert not generator.implicit_hydrogens  # this one writes its hydrogens itself
    generator = replace(generator, implicit_hydrogens=True)
    data, _ = load_qm9_graphs("valid")
    index = [0, 5, 40]
    z0, graph = generator.encode(collate(data.without_hydrogens(), index, generator.vocab))
    back = generator.decode(z0, graph)
    assert list(back.n_atoms) == list(data.subset(index).n_atoms)  # every hydrogen back
    _, frame = evaluate_graphs(back, posebusters=False, edm=False)
    assert list(frame["smiles"]) == [canonicalize_smiles(str(data.smiles[i])) for i in index]


def test_graph_settings_that_cannot_work_are_one_line_errors():
    with pytest.raises(MoldiffError, match="egnn_pairs"):
        load_config(None, ["model.backbone=egnn_pairs"])
    with pytest.raises(MoldiffError, match="egnn_pairs"):
        load_config(None, ["data.graph=true"])
    with pytest.raises(MoldiffError, match="known_atoms"):
        load_config("tiny_graph", ["model.known_atoms=true"])


def test_a_users_set_trains_a_graph_model_with_bonds_from_its_smiles_or_its_file(tmp_path):
    from moldiff.chem.io import write_sdf
    from moldiff.data.qm9 import load_qm9

    plain = load_qm9("valid").subset(slice(0, 30))  # coordinates and SMILES, no bonds
    plain.save(tmp_path / "plain.npz")
    train, valid = load_training_data(DataConfig(dataset=str(tmp_path / "plain.npz"), graph=True))
    placed, _ = load_qm9_graphs("valid")
    assert len(train) + len(valid) == 30 and train.has_bonds
    by_id = {int(i): k for k, i in enumerate(placed.ids)}
    for m in range(len(train)):  # the same bonds as QM9's own graphs
        assert np.array_equal(train.molecule_bonds(m), placed.molecule_bonds(by_id[int(train.ids[m])]))
    write_sdf(tmp_path / "mols.sdf", placed.subset(slice(0, 12)), bond_source="file")
    train, valid = load_training_data(DataConfig(dataset=str(tmp_path / "mols.sdf"), graph=True))
    assert train.has_bonds and len(train) + len(valid) == 12
    bare = MolSet(plain.atomic_numbers, plain.positions, plain.ptr)  # neither bonds nor SMILES
    bare.save(tmp_path / "bare.npz")
    with pytest.raises(MoldiffError, match="neither bonds nor SMILES"):
        load_training_data(DataConfig(dataset=str(tmp_path / "bare.npz"), graph=True))


def test_a_charge_outside_the_models_charges_is_an_error(model_file):
    generator, _, _ = load_generator(str(model_file))
    generator.charges = (0,)
    data, _ = load_qm9_graphs("valid")
    charged = int(np.searchsorted(data.ptr, int(np.flatnonzero(data.charges != 0)[0]), side="right") - 1)
    with pytest.raises(MoldiffError, match="formal charges"):
        generator.encode(collate(data, [charged], generator.vocab))


def test_sample_steers_a_graph_model_by_its_own_bonds(model_file, tmp_path):
    import json

    from moldiff.cli.main import main

    out = tmp_path / "s.sdf"
    argv = ["sample", "--model", str(model_file), "-n", "2", "--steps", "5", "-o", str(out), "--no-novelty", "--no-track"]
    assert main([*argv, "--steer", "valid", "--particles", "2"]) == 0
    record = json.loads(out.with_suffix(".run.json").read_text())
    assert record["guidance"]["steer"]["reader"] == "model"


def test_sample_scores_and_writes_the_graph_models_own_bonds(model_file, tmp_path, capsys):
    import json

    import pandas as pd

    from moldiff.cli.main import main

    out = tmp_path / "g.sdf"
    argv = ["sample", "--model", str(model_file), "-n", "3", "--steps", "6", "--output", str(out), "--no-novelty",
            "--json", "--no-track"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"geometry_consistency", "valid_connected_consistent", "edm"} <= set(summary)  # the graph evaluator's
    frame = pd.read_csv(tmp_path / "g.csv")
    assert list(frame["bond_source"]) == ["model"] * 3 and "geometry_consistent" in frame


def _self_conditioned_generator():
    from moldiff.generator import MoleculeGenerator, build_network

    config = load_config("tiny_graph", [*TINY, "model.self_conditioning=true"])
    torch.manual_seed(3)
    net = build_network(config)
    for p in net.parameters():  # untrained heads start at zero: make the fed-back estimate matter
        p.data.add_(0.05 * torch.randn_like(p))
    return MoleculeGenerator.from_config(config, net.eval(), {5: 1, 7: 1}), config


def test_a_self_conditioned_model_reads_its_last_estimate_only_along_a_trajectory():
    from moldiff.diffusion.state import MolGraph, MoleculeNoise

    generator, _ = _self_conditioned_generator()
    denoiser = generator.denoiser
    graph = MolGraph.from_counts(torch.tensor([5, 7])).with_pairs()
    z = MoleculeNoise([1, 2], graph, generator.fields, "cpu").randn()
    t = torch.full((2,), 0.6)
    with torch.no_grad():
        alone = [denoiser.raw(z, t, graph)["bonds"] for _ in range(2)]
        assert torch.equal(alone[0], alone[1])  # outside a trajectory nothing is fed back
        with denoiser.feeding_back():
            first, second = (denoiser.raw(z, t, graph)["bonds"] for _ in range(2))
        assert torch.equal(first, alone[0]) and not torch.allclose(second, first)
        assert torch.equal(denoiser.raw(z, t, graph)["bonds"], alone[0])  # and it forgets on leaving


def test_a_self_conditioned_model_samples_the_same_molecules_for_the_same_seeds():
    generator, _ = _self_conditioned_generator()
    a, b = (_sample(generator, "ddpm", [4, 5], [5, 6]) for _ in range(2))
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.bonds, b.bonds)


def test_self_conditioned_training_feeds_back_about_half_the_batches():
    from moldiff.diffusion.losses import training_loss

    generator, config = _self_conditioned_generator()
    data, _ = load_qm9_graphs("valid")
    z0, graph = generator.encode(collate(data, list(range(4)), generator.vocab))
    calls = []
    net = generator.denoiser.net.train()
    original = net.forward
    net.forward = lambda *a, **k: calls.append(k.get("previous") is not None) or original(*a, **k)
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        training_loss(generator.denoiser, z0, graph, config.diffusion, generator=g)
    fed = sum(calls)
    assert len(calls) == 40 + fed and 10 <= fed <= 30  # a first pass and a fed pass, or one plain pass
    assert not generator.denoiser.feed_back_next


def test_guidance_wrappers_pass_self_conditioning_through_to_the_network():
    from moldiff.guidance.base import GuidedDenoiser

    class Plain(GuidedDenoiser):
        def x0_eps(self, z, t, graph):
            return self.inner.x0_eps(z, t, graph)

    generator, _ = _self_conditioned_generator()
    wrapped = Plain(Plain(generator.denoiser))
    with wrapped.feeding_back():
        assert generator.denoiser._feeding_back
    assert not generator.denoiser._feeding_back


def test_placed_graphs_are_cached_by_the_sets_content(tmp_path, monkeypatch):
    import moldiff.chem.graphs as graphs
    from moldiff.data.qm9 import load_qm9

    plain = load_qm9("valid").subset(slice(0, 8))
    plain.save(tmp_path / "plain.npz")
    monkeypatch.setenv("MOLDIFF_HOME", str(tmp_path / "home"))
    calls = []
    place = graphs.with_graphs
    monkeypatch.setattr(graphs, "with_graphs", lambda data: calls.append(len(data)) or place(data))
    first, _ = load_training_data(DataConfig(dataset=str(tmp_path / "plain.npz"), graph=True))
    again, _ = load_training_data(DataConfig(dataset=str(tmp_path / "plain.npz"), graph=True))
    assert calls == [8] and np.array_equal(first.bonds, again.bonds) and np.array_equal(first.positions, again.positions)
    plain.subset(slice(0, 7)).save(tmp_path / "plain.npz")  # another set: placed anew
    load_training_data(DataConfig(dataset=str(tmp_path / "plain.npz"), graph=True))
    assert calls == [8, 7]
