"""The built-in models give the same molecules for the same seeds, whatever the code inside does.

``tests/fixtures/same_molecules.npz`` holds the coordinates and elements of a few molecules per
case (every built-in model, every solver, a target, regressor guidance, scaffolds, steering), and
for a graph model the bonds and formal charges it wrote, plus
ELBO, ODE-likelihood and training-loss values, as the code gave them when it was recorded.
Re-record only on purpose (a change that is meant to change molecules):
``OMP_NUM_THREADS=1 python tests/test_same_molecules.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURE = Path(__file__).parent / "fixtures" / "same_molecules.npz"
EXAMPLES = Path(__file__).resolve().parents[1] / "moldiff" / "examples"

# case name -> the config keys `moldiff sample` would set from its options
CASES = {
    "qm9-default": {"model": "qm9", "n": 3, "seed": 1, "sampling.steps": 10},
    "qm9-edm-default": {"model": "qm9-edm", "n": 3, "seed": 1, "sampling.steps": 10},
    "qm9-edm-ddpm": {"model": "qm9-edm", "n": 2, "seed": 2, "sampling.steps": 10, "sampling.solver": "ddpm"},
    "qm9-edm-ddim": {"model": "qm9-edm", "n": 2, "seed": 3, "sampling.steps": 10, "sampling.solver": "ddim",
                     "sampling.options": {"eta": 0.5}},
    "qm9-edm-heun": {"model": "qm9-edm", "n": 2, "seed": 4, "sampling.steps": 10, "sampling.solver": "heun"},
    "qm9-edm-euler": {"model": "qm9-edm", "n": 2, "seed": 5, "sampling.steps": 10, "sampling.solver": "euler"},
    "qm9-edm-euler-maruyama": {"model": "qm9-edm", "n": 2, "seed": 6, "sampling.steps": 10,
                               "sampling.solver": "euler-maruyama"},
    "qm9-edm-pc": {"model": "qm9-edm", "n": 2, "seed": 7, "sampling.steps": 10, "sampling.solver": "pc"},
    "qm9-edm-dpmpp-2m": {"model": "qm9-edm", "n": 2, "seed": 8, "sampling.steps": 10, "sampling.solver": "dpmpp-2m"},
    "qm9-edm-adaptive": {"model": "qm9-edm", "n": 2, "seed": 9, "sampling.steps": 20, "sampling.solver": "adaptive"},
    "qm9-edm-closed-shell": {"model": "qm9-edm", "n": 2, "seed": 10, "sampling.steps": 10,
                             "sampling.types": "closed-shell", "sampling.n_atoms": 12},
    "drugs-default": {"model": "drugs", "n": 2, "seed": 11, "sampling.steps": 8},
    "qm9-fast": {"model": "qm9-fast", "n": 3, "seed": 12},
    "qm9-cond-target": {"model": "qm9-cond", "n": 2, "seed": 13, "sampling.steps": 10,
                        "guidance.targets": {"gap": "4.5eV"}, "guidance.guidance_scale": 2.0},
    "qm9-cond-unconditional": {"model": "qm9-cond", "n": 2, "seed": 14, "sampling.steps": 10},
    "qm9-edm-guide": {"model": "qm9-edm", "n": 2, "seed": 15, "sampling.steps": 10, "guidance.guide": {"alpha": "max"},
                      "guidance.predictor": "qm9-predictor"},
    "qm9-edm-steer": {"model": "qm9-edm", "n": 2, "seed": 16, "sampling.steps": 10, "steer.rewards": "valid",
                      "steer.particles": 2},
    "qm9-scaffold": {"model": "qm9-scaffold", "n": 2, "seed": 17, "sampling.steps": 10,
                     "scaffold.smiles": "c1ccccc1", "sampling.n_atoms": 16, "scaffold.valence_guard": True},
    "qm9-edm-inpaint": {"model": "qm9-edm", "n": 2, "seed": 18, "sampling.steps": 10, "scaffold.smiles": "c1ccccc1",
                        "sampling.n_atoms": 15, "scaffold.resample": 2},
    "drugs-scaffold": {"model": "drugs-scaffold", "n": 2, "seed": 19, "sampling.steps": 8,
                       "scaffold.sdf": str(EXAMPLES / "benzamide_series.sdf"), "sampling.n_atoms": 30},
    "qm9-fast-scaffold": {"model": "qm9-fast", "n": 2, "seed": 20, "scaffold.smiles": "C1CC1", "sampling.n_atoms": 12},
}  # fmt: skip


def generate_case(keys: dict):
    """The molecules `moldiff sample` generates for these config keys, on the CPU in fp32."""
    from moldiff.cli.sample import _sample_config
    from moldiff.guidance.plan import plan_guidance
    from moldiff.models import load_generator, resolve_model
    from moldiff.solvers import get_solver, solver_times

    given = {key: ("", value) for key, value in keys.items() if key != "guidance.predictor"}
    given["sampling.device"] = ("", "cpu")
    cfg = _sample_config(None, [], given, keys.get("guidance.predictor"))
    generator, config, payload = load_generator(str(resolve_model(cfg.model)), device="cpu")
    s = cfg.sampling
    generator.type_decoding = s.types
    s = s.resolved(flow_map=hasattr(generator.denoiser, "jump"))
    plan = plan_guidance(generator, config, payload, cfg.guidance_spec(), device="cpu")
    times = solver_times(s.solver, s.steps, generator.denoiser.schedule, grid=s.grid, **s.options)
    particles = 1 if plan.steering is None else plan.steering["particles"]
    mols, _ = plan.generate(cfg.n, seed=cfg.seed, solver=get_solver(s.solver, **s.options), times=times,
                            n_atoms=s.n_atoms, batch_size=max(1, s.batch_size // particles), device="cpu")  # fmt: skip
    return mols


def likelihood_and_loss() -> dict[str, np.ndarray]:
    """ELBO and ODE bounds and training losses of the built-in qm9-edm model on three example molecules."""
    from moldiff.chem.io import read_sdf
    from moldiff.data.batch import collate
    from moldiff.diffusion.losses import training_loss
    from moldiff.likelihood import ode_bound, variational_bound
    from moldiff.models import load_generator

    generator, config, _ = load_generator("qm9-edm")
    mols, _ = read_sdf(EXAMPLES / "qm9_sample.sdf")
    batch = collate(mols, np.arange(3), generator.vocab, ())
    z0, graph = generator.encode(batch)
    log_p_n = torch.zeros(graph.num_graphs)
    common = dict(type_scale=generator.type_scale, log_p_n=log_p_n)
    out = {}
    with torch.no_grad():
        elbo = variational_bound(generator.denoiser, z0, graph, samples=2, generator=torch.Generator().manual_seed(0),
                                 **common)  # fmt: skip
    out["elbo"] = elbo["nll"].numpy()
    ode = ode_bound(generator.denoiser, z0, graph, steps=3, probes=1, generator=torch.Generator().manual_seed(1),
                    **common)  # fmt: skip
    out["ode"] = ode["nll"].detach().numpy()
    for view in ("variational", "score", "flow"):
        diffusion = config.diffusion.model_copy(update={"view": view})
        losses = training_loss(generator.denoiser, z0, graph, diffusion, generator=torch.Generator().manual_seed(2))
        out[f"loss_{view}"] = np.array([float(losses[k].detach()) for k in ("loss", "loss_pos", "loss_type")])
    return out


def graph_arrays(name: str, mols) -> dict[str, np.ndarray]:
    """The bonds and formal charges a graph model wrote (none for a coordinate-only model)."""
    if mols.bonds is None:
        return {}
    return {f"{name}/charges": mols.charges.astype(np.int8), f"{name}/bonds": mols.bonds.astype(np.int32),
            f"{name}/bond_ptr": mols.bond_ptr.astype(np.int32)}


def record() -> None:
    torch.set_num_threads(1)
    arrays = {}
    for name, keys in CASES.items():
        mols = generate_case(keys)
        arrays[f"{name}/positions"] = mols.positions.astype(np.float32)
        arrays[f"{name}/numbers"] = mols.atomic_numbers.astype(np.int8)
        arrays[f"{name}/ptr"] = mols.ptr.astype(np.int32)
        arrays.update(graph_arrays(name, mols))
        print(name, mols.n_atoms.tolist(), file=sys.stderr)
    arrays.update({f"likelihood/{k}": v for k, v in likelihood_and_loss().items()})
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, **arrays)


@pytest.fixture(scope="module")
def recorded():
    return dict(np.load(FIXTURE))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_same_molecules_for_the_same_seeds(name, recorded):
    mols = generate_case(CASES[name])
    np.testing.assert_array_equal(mols.ptr, recorded[f"{name}/ptr"])
    np.testing.assert_array_equal(mols.atomic_numbers, recorded[f"{name}/numbers"])
    np.testing.assert_allclose(mols.positions, recorded[f"{name}/positions"], atol=1e-5, rtol=0)
    graph = graph_arrays(name, mols)
    assert sorted(graph) == sorted(k for k in recorded if k.startswith(f"{name}/") and k.split("/")[1] in
                                   ("charges", "bonds", "bond_ptr"))  # a graph model's bonds, and only its
    for key, value in graph.items():
        np.testing.assert_array_equal(value, recorded[key])


@pytest.mark.slow
def test_same_likelihoods_and_losses(recorded):
    values = likelihood_and_loss()
    assert sorted(values) == sorted(k.split("/", 1)[1] for k in recorded if k.startswith("likelihood/"))
    for key, value in values.items():
        np.testing.assert_allclose(value, recorded[f"likelihood/{key}"], rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    record()
