"""Guidance on a graph model (data.graph: the model writes its own bonds and charges): regressor
guidance moves coordinates and types only, steering rewards read the model's own bonds, and
classifier-free guidance combines every field."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from moldiff.config import load_config
from moldiff.data.batch import collate
from moldiff.data.molset import MolSet
from moldiff.diffusion.state import MolGraph, MoleculeNoise
from moldiff.errors import MoldiffError
from moldiff.generator import MoleculeGenerator, build_network
from moldiff.guidance.plan import GuidanceSpec, plan_guidance
from moldiff.guidance.regressor import GuideTerm, RegressorGuidedDenoiser, parse_guide
from moldiff.guidance.steering import INVALID_REWARD, score_reward
from moldiff.models import load_generator
from moldiff.property_model import load_property_model
from moldiff.solvers import get_solver, solver_times


def _noisy_state(generator, sizes=(5, 7), seeds=(3, 4)):
    graph = MolGraph.from_counts(torch.tensor(sizes)).with_pairs()
    return MoleculeNoise(list(seeds), graph, generator.fields).randn(), graph


def _generate(plan, n=6, steps=8, seed=1):
    times = solver_times("ddpm", steps, plan.generator.denoiser.schedule)
    return plan.generate(n, seed=seed, solver=get_solver("ddpm"), times=times, n_atoms=9)[0]


# ------------------------------------------------------------------------------ regressor guidance
def test_the_predictors_gradient_moves_coordinates_and_types_and_leaves_charges_and_bonds(tiny_graph_model):
    generator, _, _ = load_generator(str(tiny_graph_model))
    predictor = load_property_model("qm9-predictor")
    guided = RegressorGuidedDenoiser(generator.denoiser, predictor, [GuideTerm("mu", direction=1)], scale=5.0)
    z, graph = _noisy_state(generator)
    t = torch.tensor([0.3, 0.5])
    x0, eps = guided.x0_eps(z, t, graph)
    x0_plain, eps_plain = generator.denoiser.x0_eps(z, t, graph)
    for name in ("charges", "bonds"):  # the predictor reads neither
        assert torch.equal(x0[name], x0_plain[name]) and torch.equal(eps[name], eps_plain[name]), name
    for name in ("coords", "types"):
        assert not torch.allclose(x0[name], x0_plain[name]), name
    gradient = guided.gradient(z, t, graph)
    assert gradient["bonds"].abs().max() == 0 and gradient["coords"].abs().max() > 0


def test_regressor_guidance_raises_and_lowers_the_predicted_property_of_a_graph_model(tiny_graph_model):
    # QM9 molecules noised to t = 0.3 and denoised again, guided or not, with the same noise: the
    # predictor knows molecules like these (a barely trained model's own draws are far from them)
    from moldiff.chem.graphs import load_qm9_graphs

    generator, config, payload = load_generator(str(tiny_graph_model))
    predictor = load_property_model("qm9-predictor")
    z0, graph = generator.encode(collate(load_qm9_graphs("valid")[0], list(range(8)), generator.vocab))
    t0 = generator.denoiser.schedule(torch.tensor(0.3))
    mu = {}
    for way in ("min", None, "max"):
        terms = () if way is None else (parse_guide(f"mu={way}"),)
        spec = GuidanceSpec(terms=terms, predictor="qm9-predictor" if terms else None, guide_scale=10.0)
        denoiser = plan_guidance(generator, config, payload, spec).generator.denoiser
        noise = MoleculeNoise(list(range(8)), graph, generator.fields)
        z = float(t0.alpha) * z0 + float(t0.sigma) * noise.randn()
        with torch.no_grad():
            molecules = generator.decode(get_solver("ddpm")(denoiser, z, torch.linspace(0.3, 0.0, 11), graph, noise), graph)
        assert molecules.has_bonds  # still the model's own graph
        mu[way] = float(np.mean(predictor.predict(molecules)["mu"]))
    assert mu["min"] + 0.2 < mu[None] < mu["max"] - 0.2, mu


def test_a_predictor_of_other_atoms_cannot_guide_a_heavy_atom_graph_model(tiny_graph_settings):
    heavy = load_config("tiny_graph", [*tiny_graph_settings, "data.hydrogens=false", "data.elements=[C,N,O,F]"])
    generator = MoleculeGenerator.from_config(heavy, build_network(heavy), {5: 1})
    spec = GuidanceSpec(terms=(parse_guide("mu=max"),), predictor="qm9-predictor")
    with pytest.raises(MoldiffError, match=r"the predictor reads atoms \('H', 'C', 'N', 'O', 'F'\).*writes \('C', 'N', 'O', 'F'\)"):
        plan_guidance(generator, heavy, {}, spec)


# -------------------------------------------------------------------------------------- steering
def _disagreeing_molecules() -> MolSet:
    """Methane at its geometry but written with one hydrogen unbonded (the EDM rule reads methane;
    its own graph is in two pieces), and water with its hydrogens 3 Å from the oxygen, written
    bonded (the EDM rule reads three loose atoms; its own graph is water)."""
    d = 1.09 / np.sqrt(3)
    methane = [[0, 0, 0], [d, d, d], [d, -d, -d], [-d, d, -d], [-d, -d, d]]
    water = [[0, 0, 0], [3.0, 0, 0], [0, 3.0, 0]]
    return MolSet(atomic_numbers=[6, 1, 1, 1, 1, 8, 1, 1], positions=np.array(methane + water, dtype=np.float32),
                  ptr=[0, 5, 8], bonds=[[0, 1, 1], [0, 2, 1], [0, 3, 1], [0, 1, 1], [0, 2, 1]], bond_ptr=[0, 3, 5])  # fmt: skip


def test_the_model_reader_counts_molecules_by_the_bonds_the_model_predicts(tiny_graph_model):
    generator, _, _ = load_generator(str(tiny_graph_model))
    molecules = _disagreeing_molecules()
    # the state a graph model would predict for them: one-hots of their types, charges and bonds
    z, graph = generator.encode(collate(molecules, [0, 1], generator.vocab))
    assert np.array_equal(generator.decode(z, graph).bonds, molecules.bonds)
    own = score_reward(generator.decode, [], reader="model")(z, graph)
    edm = score_reward(generator.decode, [], reader="edm")(z, graph)
    assert own.tolist() == [INVALID_REWARD, 0.0] and edm.tolist() == [0.0, INVALID_REWARD]
    xyz2mol = score_reward(generator.decode, [], reader="xyz2mol")(z, graph)  # the coordinates, as asked
    assert xyz2mol.tolist() == [0.0, INVALID_REWARD]
    qed = score_reward(generator.decode, [parse_guide("qed=max")], reader="model")(z, graph)
    assert qed[0] == INVALID_REWARD and 0 < qed[1] < 1  # RDKit's QED of the model's water
    with pytest.raises(MoldiffError, match="carry none"):
        score_reward(lambda z, g: replace(molecules, bonds=None, bond_ptr=None), [], reader="model")(z, graph)


def test_steering_a_graph_model_reads_its_own_bonds_by_default(tiny_graph_model):
    generator, config, payload = load_generator(str(tiny_graph_model))
    spec = GuidanceSpec(steer=(), particles=3, resamplings=1)
    plan = plan_guidance(generator, config, payload, spec)
    assert plan.record["steer"]["reader"] == "model"
    molecules = _generate(plan, n=2, steps=6)
    assert molecules.has_bonds and len(molecules) == 2
    assert plan_guidance(generator, config, payload, replace(spec, steer_reader="edm")).record["steer"]["reader"] == "edm"


def test_the_model_reader_refuses_a_model_without_bonds():
    plain = load_config(None, ["model.hidden=16", "model.layers=2"])
    generator = MoleculeGenerator.from_config(plain, build_network(plain), {5: 1})
    plan = plan_guidance(generator, plain, {}, GuidanceSpec(steer=(), particles=2))
    assert plan.record["steer"]["reader"] == "edm"
    with pytest.raises(MoldiffError, match="'model' steering reader reads a graph model's own bonds"):
        plan_guidance(generator, plain, {}, GuidanceSpec(steer=(), particles=2, steer_reader="model"))


# --------------------------------------------------------------------------- classifier-free guidance
@pytest.fixture(scope="module")
def conditional_graph_model(tmp_path_factory, tiny_graph_settings):
    from moldiff.train.loop import train

    out = tmp_path_factory.mktemp("cond_graph")
    train(load_config("tiny_graph", [*tiny_graph_settings, f"out_dir={out}", "data.properties=[mu]"]), log=lambda m: None)
    return load_generator(str(out / "model.pt"))


def test_classifier_free_guidance_combines_every_field_of_a_graph_model(conditional_graph_model):
    generator, config, payload = conditional_graph_model
    plan = plan_guidance(generator, config, payload, GuidanceSpec(targets={"mu": 3.0}, guidance_scale=2.5))
    z, graph = _noisy_state(generator)
    graph = replace(graph, cond=plan.conditions(2))
    t = torch.tensor([0.4, 0.7])
    x0 = plan.generator.denoiser.x0(z, t, graph)
    x0_c = generator.denoiser.x0(z, t, graph)
    x0_u = generator.denoiser.x0(z, t, replace(graph, cond=torch.zeros_like(graph.cond)))
    for name in ("coords", "types", "charges", "bonds"):
        torch.testing.assert_close(x0[name], x0_u[name] + 2.5 * (x0_c[name] - x0_u[name]))
        assert not torch.allclose(x0_c[name], x0_u[name]), name  # the condition reaches every field


def test_targets_steer_a_conditional_graph_model(conditional_graph_model):
    generator, config, payload = conditional_graph_model
    low, high = (_generate(plan_guidance(generator, config, payload, GuidanceSpec(targets={"mu": mu}, guidance_scale=2.0)),
                           n=3) for mu in (0.5, 6.0))  # fmt: skip
    assert low.has_bonds and high.has_bonds and list(low.n_atoms) == list(high.n_atoms)
    assert not np.array_equal(low.positions, high.positions)
    with pytest.raises(MoldiffError, match="not on gap"):
        plan_guidance(generator, config, payload, GuidanceSpec(targets={"gap": 5000.0}))


def test_steering_around_a_scaffold_reads_the_graph_models_own_bonds(tiny_graph_model):
    from moldiff.guidance.steering import SCAFFOLD_REWARD

    generator, config, payload = load_generator(str(tiny_graph_model))
    plan = plan_guidance(generator, config, payload, GuidanceSpec(scaffold_smiles="C1CC1", steer=(), particles=2))
    assert plan.record["steer"]["reader"] == "model" and plan.record["steer"]["scaffold_bonus"] == SCAFFOLD_REWARD
    times = solver_times("ddpm", 6, generator.denoiser.schedule)
    molecules = plan.generate(2, seed=1, solver=get_solver("ddpm"), times=times, n_atoms=12)[0]
    assert molecules.has_bonds
    for m in range(2):  # the scaffold's ring, as the model writes it, in each molecule
        assert {(0, 1, 1), (0, 2, 1), (1, 2, 1)} <= {tuple(b) for b in molecules.molecule_bonds(m).tolist()}
