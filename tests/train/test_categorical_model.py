"""A graph model with categorical discrete fields (diffusion.discrete categorical) trains with finite
cross-entropies, keeps its marginal prior in its model file, and samples with every solver, the
same molecules for the same seeds."""

import numpy as np
import pytest
import torch

from moldiff.config import load_config
from moldiff.errors import MoldiffError
from moldiff.models import load_generator
from moldiff.solvers import SOLVERS, get_solver, solver_times
from moldiff.train.checkpoint import load_checkpoint
from moldiff.train.loop import train


def _train(out, settings, prior: str, steps: int = 2):
    config = load_config("tiny_graph", [*settings, f"out_dir={out}", f"train.max_steps={steps}", "train.log_every=1",
                                        "diffusion.discrete=categorical", f"diffusion.discrete_prior={prior}"])  # fmt: skip
    train(config, log=lambda m: None)
    return out / "model.pt"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_graph_settings):
    return _train(tmp_path_factory.mktemp("categorical"), tiny_graph_settings, "marginal")


def _sample(generator, name: str, seeds: list[int], sizes: list[int], steps: int = 4):
    times = solver_times(name, steps, generator.denoiser.schedule)
    return generator.sample(seeds, sizes, solver=get_solver(name), times=times)


@pytest.mark.parametrize("prior", ["uniform", "masking"])
def test_training_gives_finite_cross_entropies(tmp_path, tiny_graph_settings, prior):
    payload = load_checkpoint(_train(tmp_path, tiny_graph_settings, prior))
    row = payload["history"][-1]
    for key in ("loss", "loss_pos", "loss_type", "loss_charges", "loss_bonds"):
        assert np.isfinite(row[key]), key
    # a cross-entropy over K classes starts near log K (a fresh network is near uniform), far from an MSE's scale
    classes = 5 + (prior == "masking")  # the mask class is never a clean class: log 5 either way
    assert 0.5 * np.log(5) < row["loss_type"] < 3 * np.log(classes)


def test_the_marginal_prior_is_kept_in_the_model_file(model_file):
    generator, config, _ = load_generator(str(model_file))
    marginals = config.diffusion.discrete_marginals
    assert set(marginals) == {"types", "charges", "bonds"} and len(marginals["bonds"]) == 4
    assert abs(sum(marginals["types"]) - 1) < 1e-9 and marginals["bonds"][0] > 0.5  # most pairs are not bonded
    assert torch.allclose(generator.denoiser.class_priors["bonds"], torch.tensor(marginals["bonds"], dtype=torch.float64))
    assert generator.categorical and [f.kind for f in generator.fields] == ["gaussian"] + ["categorical"] * 3


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_every_solver_samples_a_categorical_graph_model(model_file, solver):
    generator, _, _ = load_generator(str(model_file))
    mols = _sample(generator, solver, [11, 12], [4, 6])
    assert list(mols.n_atoms) == [4, 6] and np.isfinite(mols.positions).all()
    assert np.isin(mols.atomic_numbers, [1, 6, 7, 8, 9]).all() and np.isin(mols.charges, [-1, 0, 1]).all()


@pytest.mark.parametrize("solver", ["ddpm", "adaptive"])
def test_the_same_seeds_give_the_same_molecules(model_file, solver):
    generator, _, _ = load_generator(str(model_file))
    first = _sample(generator, solver, [11, 12, 13], [4, 7, 9], steps=6)
    again = _sample(generator, solver, [11, 12, 13], [4, 7, 9], steps=6)
    for key in ("positions", "atomic_numbers", "charges", "bonds"):
        assert np.array_equal(getattr(first, key), getattr(again, key)), key
    alone = _sample(generator, solver, [12], [7], steps=6)  # molecule 1 regenerated on its own
    assert np.array_equal(alone.atomic_numbers, first.atomic_numbers[4:11])
    assert np.allclose(alone.positions, first.positions[4:11], atol=1e-4)
    other = _sample(generator, solver, [21, 12, 13], [4, 7, 9], steps=6)
    assert not np.array_equal(first.positions[:4], other.positions[:4])


def test_a_masking_model_has_one_more_class_per_field(tmp_path, tiny_graph_settings):
    generator, _, _ = load_generator(str(_train(tmp_path, tiny_graph_settings, "masking", steps=1)))
    assert [f.columns for f in generator.fields] == [3, 6, 4, 5] and all(f.masked for f in generator.fields[1:])
    mols = _sample(generator, "ddpm", [1, 2], [5, 5])
    assert np.isin(mols.atomic_numbers, [1, 6, 7, 8, 9]).all()


@pytest.mark.parametrize("settings, message", [
    (["diffusion.discrete=categorical"], "graph models"),
    (["data.graph=true", "model.backbone=egnn_pairs", "diffusion.discrete_prior=masking"], "discrete categorical"),
    (["data.graph=true", "model.backbone=egnn_pairs", "diffusion.discrete=categorical", "diffusion.discrete=onehot"],
     "discrete"),
])  # fmt: skip
def test_config_errors_are_one_line(settings, message):
    with pytest.raises(MoldiffError, match=message) as info:
        load_config("tiny", settings)
    assert "\n" not in str(info.value)


def test_the_ode_likelihood_refuses_a_categorical_model_in_one_line(model_file):
    from moldiff.likelihood import ode_bound

    generator, _, _ = load_generator(str(model_file))
    graph_fields = {f.name: torch.zeros(1, f.columns) for f in generator.fields}
    from moldiff.diffusion.state import MolGraph, MolState

    graph = MolGraph.from_counts(torch.tensor([1])).with_pairs()
    z0 = MolState({**graph_fields, "bonds": torch.zeros(0, 4)}, generator.fields, graph)
    with pytest.raises(MoldiffError, match="categorical.*--method elbo") as info:
        ode_bound(generator.denoiser, z0, graph)
    assert "\n" not in str(info.value)
