"""The ELBO and the ODE likelihood of a graph model cover its formal charges and bonds: every field
has its own part, the parts add up to the bound, and ``moldiff nll`` reports them."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from moldiff.chem.graphs import load_qm9_graphs
from moldiff.cli.main import main
from moldiff.config import load_config
from moldiff.data.batch import collate
from moldiff.likelihood import field_totals, ode_bound, variational_bound
from moldiff.likelihood.elbo import degrees_of_freedom, recon_key
from moldiff.likelihood.ode import _eps_and_divergence, _probes
from moldiff.models import load_generator
from moldiff.train.loop import train

TINY = ["data.max_train=16", "model.hidden=16", "model.pair_hidden=8", "train.batch_size=4", "train.warmup_steps=2",
        "train.log_every=1000", "train.eval_every=1000", "train.checkpoint_every=1000", "train.val_molecules=8",
        "tracking.enabled=false", "train.threads=1", "train.max_steps=4"]  # fmt: skip
FIELDS = ("coords", "types", "charges", "bonds")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("graph")
    train(load_config("tiny_graph", TINY + [f"out_dir={out}"]), log=lambda m: None)
    return out / "model.pt"


@pytest.fixture(scope="module")
def valid():
    return load_qm9_graphs("valid")[0]


def _encode(generator, data, sizes):
    """Clean states of one validation molecule of each size."""
    index = [int(np.flatnonzero(data.n_atoms == n)[0]) for n in sizes]
    return generator.encode(collate(data, index, generator.vocab))


def test_graph_elbo_has_a_part_per_field_that_add_up(model_file, valid):
    generator, _, _ = load_generator(str(model_file))
    z0, graph = _encode(generator, valid, (8, 12, 18, 25))
    log_p_n = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    terms = variational_bound(generator.denoiser, z0, graph, type_scale=generator.type_scale, log_p_n=log_p_n,
                              samples=4, generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert {"recon_x", "recon_h", "recon_charges", "recon_bonds"} <= set(terms)
    assert all(bool(torch.isfinite(v).all()) for v in terms.values())
    parts = field_totals(terms)
    assert tuple(parts) == FIELDS
    total = sum(parts.values()) - terms["log_p_n"]
    assert torch.allclose(terms["nll"], total, rtol=1e-9)
    # the bound of a graph model = its coordinate model's part (coordinates, types) + charges + bonds
    coordinate_part = parts["coords"] + parts["types"]
    assert torch.allclose(terms["nll"], coordinate_part + parts["charges"] + parts["bonds"] + log_p_n.double().neg())
    for name in FIELDS:  # the fields' parts add up to the aggregate terms
        assert torch.allclose(terms[f"{name}/recon"], terms[recon_key(name)])
    assert torch.allclose(terms["prior"], sum(terms[f"{n}/prior"] for n in FIELDS))
    assert torch.allclose(terms["diffusion"], sum(terms[f"{n}/diffusion"] for n in FIELDS))

    # one dimension per unordered pair and bond class; the bond part grows with the pairs, not the atoms
    pairs, atoms = graph.num_pairs.double(), graph.num_atoms.double()
    assert torch.equal(degrees_of_freedom(z0, "bonds"), pairs * 4)
    assert torch.equal(degrees_of_freedom(z0, "charges"), atoms * 3)
    assert torch.equal(degrees_of_freedom(z0, "coords"), (atoms - 1) * 3)
    prior_per_pair = terms["bonds/prior"] / pairs
    assert torch.allclose(prior_per_pair, prior_per_pair[0].expand(4), rtol=1e-9)
    per_pair, per_atom = parts["bonds"] / pairs, parts["bonds"] / atoms
    assert float(per_pair.max() / per_pair.min()) < 1.4  # 8 to 25 atoms: 28 to 300 pairs
    assert float(per_atom.max() / per_atom.min()) > 2.5


def test_graph_ode_likelihood_runs_and_repeats_for_a_seed(model_file, valid):
    generator, _, _ = load_generator(str(model_file))
    z0, graph = _encode(generator, valid, (6, 9))

    def bound(seed):
        return ode_bound(generator.denoiser, z0, graph, type_scale=generator.type_scale, steps=2, method="bosh3",
                         probes=2, generator=torch.Generator().manual_seed(seed))  # fmt: skip

    first, again, other = bound(0), bound(0), bound(1)
    assert all(bool(torch.isfinite(v).all()) for v in first.values())
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["nll"], other["nll"])
    parts = field_totals(first)
    assert tuple(parts) == FIELDS and all(bool((parts[n] != 0).all()) for n in ("charges", "bonds"))
    assert torch.allclose(first["nll"], sum(parts.values()) - first["log_p_n"], rtol=1e-9)


def test_exact_divergence_spans_the_pair_field(model_file, valid):
    """The exact trace over every field equals the trace of the projected Jacobian of ε̂, field by field."""
    generator, _, _ = load_generator(str(model_file))
    generator.denoiser.net.double()
    z0, graph = _encode(generator, valid, (3, 6))
    z = z0.to(torch.float64) + 0.3 * z0.randn_like(torch.Generator().manual_seed(0), dtype=torch.float64)
    t = torch.full((graph.num_graphs,), 0.4, dtype=torch.float64)
    vectors, weight = _probes(z, graph, "exact", 1, None)
    _, div = _eps_and_divergence(generator.denoiser, z, t, graph, vectors, weight)

    sizes = [z[f.name].numel() for f in z.specs]

    def state(flat):
        values = [v.reshape(z[f.name].shape) for f, v in zip(z.specs, flat.split(sizes))]
        return type(z)(dict(zip((f.name for f in z.specs), values)), z.specs, graph).project()

    def flat_eps(flat):
        return torch.cat([v.reshape(-1) for v in generator.denoiser.eps(state(flat), t, graph).values.values()])

    flat = torch.cat([v.reshape(-1) for v in z.values.values()])
    jac = torch.autograd.functional.jacobian(flat_eps, flat)  # ε̂ of the projected state: J P
    project = torch.stack([torch.cat([v.reshape(-1) for v in state(e).values.values()]) for e in torch.eye(len(flat),
                                                                                                          dtype=flat.dtype)], 1)  # fmt: skip
    blocks = (project @ jac).diagonal().split(sizes)
    for f, block in zip(z.specs, blocks):
        assert abs(float(block.sum()) - float(div[f.name].sum())) < 1e-8 * (1 + abs(float(block.sum()))), f.name


def test_nll_command_reports_each_field_of_a_graph_model(model_file, valid, tmp_path, capsys):
    generator, _, _ = load_generator(str(model_file))
    seen = np.flatnonzero(np.isin(valid.n_atoms, list(generator.atom_count_hist)))[:3]  # sizes it was trained on
    data = tmp_path / "mols.npz"
    valid.subset(seen).save(data)
    out = tmp_path / "nll.json"
    assert main(["nll", "--model", str(model_file), "--data", str(data), "--method", "both", "--elbo-samples", "1",
                 "--ode-steps", "1", "--json", "-o", str(out)]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads(out.read_text()) and result["n"] == 3
    for method in ("elbo", "ode"):
        r = result[method]
        assert {"recon_x", "recon_h", "recon_charges", "recon_bonds", "log_p_n"} <= set(r["terms"])
        total = sum(r["terms"].values()) - 2 * r["terms"]["log_p_n"]
        assert abs(r["nll"] - total) < 1e-3 * abs(total) + 1e-3
        assert tuple(r["fields"]) == FIELDS
        by_field = sum(part["total"] for part in r["fields"].values()) - r["terms"]["log_p_n"]
        assert abs(r["nll"] - by_field) < 1e-3 * abs(by_field) + 1e-3
    assert main(["nll", "--model", str(model_file), "--data", str(data), "--elbo-samples", "1"]) == 0
    text = capsys.readouterr().out
    assert "by field: coords" in text and "bonds" in text and "charges" in text
    replace(valid.subset(seen), bonds=None, bond_ptr=None).save(data)  # molecules without their graph
    assert main(["nll", "--model", str(model_file), "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "has no bonds" in err and "\n" not in err
