"""Scaffolds on a model that generates the bond graph: the scaffold's atoms, formal charges and
bonds (and non-bonds) among its atoms come out exactly; no scaffold atom gets more new bond orders
than its open valence; a heavy-atom scaffold file works as the same scaffold given as SMILES. Each
holds with Gaussian one-hot and with categorical discrete fields."""

import csv

import numpy as np
import pytest
import torch
from rdkit import Chem

from moldiff.chem.io import write_sdf
from moldiff.chem.substructure import fragment_from_smiles
from moldiff.config import load_config
from moldiff.data.molset import MolSet
from moldiff.diffusion.state import MolGraph
from moldiff.errors import MoldiffError
from moldiff.generator import MoleculeGenerator, build_network
from moldiff.guidance.inpaint import Scaffold, generate_with_scaffold
from moldiff.guidance.plan import GuidanceSpec, plan_guidance
from moldiff.guidance.valence import cap_new_bonds
from moldiff.solvers import get_solver, solver_times
from moldiff.train.checkpoint import MODEL, save_checkpoint

BETAINE = "C[N+](C)(C)CC(=O)[O-]"  # charged atoms, and scaffold pairs that are not bonded
HIST = {12: 3, 16: 2, 20: 1}


DISCRETE = ["gaussian", "categorical"]


def _config(heavy: bool = False, discrete: str = "gaussian"):
    extra = ["data.hydrogens=false", "data.elements=[C,N,O,F]"] if heavy else []
    return load_config("tiny_graph", ["model.hidden=16", "model.pair_hidden=8", f"diffusion.discrete={discrete}", *extra])


def _generator(heavy: bool = False, discrete: str = "gaussian"):
    torch.manual_seed(0)
    config = _config(heavy, discrete)
    net = build_network(config)
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    return MoleculeGenerator.from_config(config, net.eval(), HIST), config


def _scaffold(fragment, generator, open_valence=True) -> Scaffold:
    scaffold = Scaffold.from_atoms(fragment.atomic_numbers, fragment.positions, generator.vocab,
                                   fragment.open_valence if open_valence else None)  # fmt: skip
    return scaffold.with_graph(fragment.charges, fragment.bond_orders, generator.charges)


def _orders(mols: MolSet, m: int) -> np.ndarray:
    n = int(mols.n_atoms[m])
    table = np.zeros((n, n), dtype=np.int64)
    i, j, order = mols.molecule_bonds(m).T
    table[i, j] = table[j, i] = order
    return table


@pytest.mark.parametrize("discrete", DISCRETE)
@pytest.mark.parametrize("solver, jump, resamples", [("ddpm", 1, 1), ("heun", 100, 1), ("ddpm", 2, 2)])
def test_scaffold_atoms_charges_and_bonds_come_out_exactly(solver, jump, resamples, discrete):
    gen, _ = _generator(discrete=discrete)
    fragment = fragment_from_smiles(BETAINE)
    k = len(fragment.atomic_numbers)
    assert (fragment.bond_orders[np.triu_indices(k, 1)] == 0).any() and (fragment.charges != 0).any()
    times = solver_times(solver, 6, gen.denoiser.schedule)
    mols, _ = generate_with_scaffold(gen, _scaffold(fragment, gen), 3, seed=5, solver=get_solver(solver), times=times,
                                     jump=jump, resamples=resamples)  # fmt: skip
    assert mols.has_bonds
    for m in range(len(mols)):
        z, pos = mols.molecule(m)
        a = int(mols.ptr[m])
        assert z[:k].tolist() == fragment.atomic_numbers.tolist()
        np.testing.assert_allclose(pos[:k], fragment.positions, atol=1e-3)
        assert mols.charges[a : a + k].tolist() == fragment.charges.tolist()
        assert np.array_equal(_orders(mols, m)[:k, :k], fragment.bond_orders)  # bonds and non-bonds


def test_reconstruction_guidance_moves_the_free_rows_of_every_field_and_keeps_the_scaffold():
    # one network call (the untrained net's x̂₀ is far from the scaffold, so whole runs diverge, as
    # reconstruction guidance does on any poorly trained network)
    from moldiff.diffusion.state import MoleculeNoise
    from moldiff.guidance.inpaint import ScaffoldDenoiser

    gen, _ = _generator()
    scaffold = _scaffold(fragment_from_smiles(BETAINE), gen)
    graph = MolGraph.from_counts(torch.tensor([12, 14])).with_pairs()
    z, t = MoleculeNoise([1, 2], graph, gen.fields).randn(), torch.full((2,), 0.5)
    plain, _ = ScaffoldDenoiser(gen.denoiser, scaffold, gen.type_scale).x0_eps(z, t, graph)
    guided, eps = ScaffoldDenoiser(gen.denoiser, scaffold, gen.type_scale, reconstruction=1e-3).x0_eps(z, t, graph)
    masks = scaffold.masks(graph)
    block = guided["coords"][masks["atoms"]].reshape(2, scaffold.size, 3)
    torch.testing.assert_close(block - block.mean(1, keepdim=True), scaffold.shape(block).expand(2, -1, -1))
    for f in gen.fields:
        known = masks[f.on]
        if f.name != "coords":  # (the scaffold's centroid is free)
            assert torch.equal(guided[f.name][known], plain[f.name][known]), f.name  # the exact scaffold
        assert not torch.allclose(guided[f.name][~known], plain[f.name][~known]), f.name
        assert torch.isfinite(eps[f.name]).all()
    assert guided["bonds"][masks["pairs"]].argmax(1).tolist() == scaffold.bonds.tolist() * 2


def test_cap_keeps_the_strongest_new_bonds_that_fit():
    # one molecule of 5 atoms, scaffold atoms 0 and 1 (bonded); pairs row-major:
    # (0,1) (0,2) (0,3) (0,4) (1,2) (1,3) (1,4) (2,3) (2,4) (3,4)
    graph = MolGraph.from_counts(torch.tensor([5])).with_pairs()
    scores = torch.full((10, 4), -1.0)
    scores[0] = torch.tensor([0.0, 2.0, 0.0, 0.0])  # the scaffold's own bond: never capped
    scores[1] = torch.tensor([0.0, 0.5, 0.9, 0.0])  # 0-2 double (strength 0.9), single beats none
    scores[2] = torch.tensor([0.0, 0.3, 0.0, 0.0])  # 0-3 single, weaker
    scores[3] = torch.tensor([0.0, 0.8, 0.0, 0.0])  # 0-4 single (0.8)
    scores[4] = torch.tensor([0.0, 0.2, 0.0, 0.0])  # 1-2 single: atom 1 has no room
    scores[7] = torch.tensor([0.0, 0.0, 0.0, 3.0])  # 2-3 triple between new atoms: never capped
    classes = cap_new_bonds(scores, graph, torch.tensor([3, 0]))
    # atom 0 has room 3: the double to 2 (strongest) fits, then the single to 4; the single to 3 does not
    assert classes.tolist() == [1, 2, 0, 1, 0, 0, 0, 3, 0, 0]
    classes = cap_new_bonds(scores, graph, torch.tensor([1, 0]))
    assert classes.tolist() == [1, 1, 0, 0, 0, 0, 0, 3, 0, 0]  # the double became single; nothing else fits
    scores[1] = torch.tensor([0.0, -0.5, 0.9, 0.0])  # none beats single: dropped
    assert cap_new_bonds(scores, graph, torch.tensor([1, 0])).tolist() == [1, 0, 0, 1, 0, 0, 0, 3, 0, 0]


def _new_orders(mols: MolSet, k: int) -> np.ndarray:
    """(M, k) bond orders from each scaffold atom to the molecule's other atoms."""
    return np.stack([_orders(mols, m)[:k, k:].sum(1) for m in range(len(mols))])


@pytest.mark.parametrize("discrete", DISCRETE)
def test_no_scaffold_atom_gets_more_new_bonds_than_its_open_valence(discrete):
    gen, _ = _generator(discrete=discrete)
    gen.bond_decoding = "argmax"  # (valence decoding alone often leaves no room to overfill)
    fragment = fragment_from_smiles("O=C(N)c1ccccc1")
    k = len(fragment.atomic_numbers)
    times = solver_times("ddpm", 6, gen.denoiser.schedule)
    run = {"seed": 1, "solver": get_solver("ddpm"), "times": times, "n_atoms": 14}
    capped, _ = generate_with_scaffold(gen, _scaffold(fragment, gen), 6, **run)
    assert (_new_orders(capped, k) <= fragment.open_valence[None]).all()
    # the same run without the cap: the untrained model overfills some scaffold atom
    free, _ = generate_with_scaffold(gen, _scaffold(fragment, gen, open_valence=False), 6, **run)
    assert (_new_orders(free, k) > fragment.open_valence[None]).any()
    assert np.array_equal(capped.positions, free.positions)  # the cap reads bonds only


def _heavy_sdf(fragment, path):
    """The fragment's heavy atoms and Kekulé bonds as an SDF block without hydrogens."""
    k = len(fragment.atomic_numbers)
    i, j = np.nonzero(np.triu(fragment.bond_orders))
    bonds = np.column_stack([i, j, fragment.bond_orders[i, j]])
    write_sdf(path, MolSet(fragment.atomic_numbers, fragment.positions, np.array([0, k]), charges=fragment.charges,
                           bonds=bonds, bond_ptr=np.array([0, len(bonds)])))  # fmt: skip
    return path


@pytest.mark.parametrize("smiles, discrete", [("c1ccccc1", "gaussian"), (BETAINE, "gaussian"),
                                              ("O=C(N)c1ccncc1", "gaussian"), ("O=C(N)c1ccncc1", "categorical")])
def test_a_heavy_atom_scaffold_file_fixes_what_its_smiles_fixes(smiles, discrete, tmp_path):
    gen, config = _generator(discrete=discrete)
    from_smiles = plan_guidance(gen, config, {}, GuidanceSpec(scaffold_smiles=smiles))
    path = _heavy_sdf(from_smiles.fragment, tmp_path / "scaffold.sdf")
    assert all(a.GetAtomicNum() != 1 for a in Chem.SDMolSupplier(str(path), removeHs=False)[0].GetAtoms())
    from_file = plan_guidance(gen, config, {}, GuidanceSpec(scaffold_sdf=str(path)))
    a, b = from_smiles.scaffold, from_file.scaffold
    for name in ("types", "charges", "bonds", "open_valence"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    torch.testing.assert_close(a.positions, b.positions, atol=1e-3, rtol=0)
    assert from_file.open_hydrogens == from_smiles.open_hydrogens > 0  # explicit H: the model adds them
    times = solver_times("ddpm", 4, gen.denoiser.schedule)
    runs = [plan.generate(2, seed=3, solver=get_solver("ddpm"), times=times)[0] for plan in (from_smiles, from_file)]
    k = a.size
    for mols in runs:
        assert (mols.n_atoms >= k + from_file.open_hydrogens).all()
        for m in range(len(mols)):
            assert np.array_equal(_orders(mols, m)[:k, :k], from_file.fragment.bond_orders)
            assert mols.charges[mols.ptr[m] : mols.ptr[m] + k].tolist() == from_file.fragment.charges.tolist()
            assert (_orders(mols, m)[:k, k:].sum(1) <= from_file.fragment.open_valence).all()


@pytest.mark.parametrize("discrete", DISCRETE)
def test_a_heavy_atom_graph_model_needs_no_room_for_hydrogens(tmp_path, discrete):
    gen, config = _generator(heavy=True, discrete=discrete)
    gen.atom_count_hist = {7: 1, 8: 1}  # a benzene and one or two heavy atoms: no room for 6 hydrogens
    plan = plan_guidance(gen, config, {}, GuidanceSpec(scaffold_smiles="c1ccccc1"))
    assert plan.open_hydrogens == 0 and plan.fragment.open_hydrogens == 6
    assert set(plan.atom_counts(0, 20, None)) == {7, 8}
    times = solver_times("ddpm", 4, gen.denoiser.schedule)
    mols, _ = plan.generate(3, seed=0, solver=get_solver("ddpm"), times=times)
    assert (_new_orders(mols, 6) <= 1).all()
    for m in range(len(mols)):  # the model made heavy atoms only; RDKit's hydrogens come after them
        z = mols.molecule(m)[0]
        heavy = int((z != 1).sum())
        assert heavy in (7, 8) and (z[:heavy] != 1).all() and (z[heavy:] == 1).all()
    # kept hydrogens (--scaffold-h, or every one but the * of an attachment SMILES) stay hydrogens,
    # which RDKit adds back: the heavy atoms keep their room
    kept = plan_guidance(gen, config, {}, GuidanceSpec(scaffold_smiles="c1ccccc1", scaffold_h=True))
    assert kept.scaffold.size == 6 and kept.scaffold.open_valence.tolist() == [0] * 6
    marked = plan_guidance(gen, config, {}, GuidanceSpec(scaffold_smiles="*c1ccncc1"))
    assert marked.scaffold.open_valence.tolist() == [1, 0, 0, 0, 0, 0] and marked.open_hydrogens == 0
    assert marked.scaffold.bonds.sum() == 9  # the pyridine ring's Kekulé orders: 3 single, 3 double


def test_a_scaffold_without_its_graph_is_refused_by_a_graph_model():
    gen, _ = _generator()
    fragment = fragment_from_smiles("c1ccccc1")
    plain = Scaffold.from_atoms(fragment.atomic_numbers, fragment.positions, gen.vocab, fragment.open_valence)
    with pytest.raises(MoldiffError, match="charges and bonds"):
        generate_with_scaffold(gen, plain, 1, seed=0, solver=get_solver("ddpm"),
                               times=solver_times("ddpm", 2, gen.denoiser.schedule))  # fmt: skip
    with pytest.raises(MoldiffError, match="formal charges"):
        plain.with_graph([0, 0, 0, 0, 0, 2], fragment.bond_orders, gen.charges)


def test_sample_cli_keeps_a_smiles_scaffold_and_writes_the_models_bonds(tmp_path):
    from moldiff.cli.main import main

    gen, config = _generator()
    model = tmp_path / "graph.pt"
    state = gen.denoiser.net.state_dict()
    save_checkpoint(model, {"kind": MODEL, "config": config.model_dump(mode="json"), "ema": state,
                            "atom_count_hist": HIST})  # fmt: skip
    out = tmp_path / "o.sdf"
    assert main(["sample", "--model", str(model), "--scaffold-smiles", "c1ccccc1", "-n", "4", "--steps", "5",
                 "-o", str(out)]) == 0  # fmt: skip
    mols = [m for m in Chem.SDMolSupplier(str(out), sanitize=False, removeHs=False)]
    assert len(mols) == 4
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert [r["has_scaffold"] for r in rows] == ["True"] * 4  # read from the model's own bonds
    ring = fragment_from_smiles("c1ccccc1").bond_orders
    for mol in mols:
        assert mol.GetProp("bond_source") == "model"
        assert [a.GetAtomicNum() for a in mol.GetAtoms()][:6] == [6] * 6
        orders = np.zeros((6, 6), dtype=np.int64)
        for bond in mol.GetBonds():
            i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            if i < 6 and j < 6:
                orders[i, j] = orders[j, i] = int(bond.GetBondTypeAsDouble())
        assert np.array_equal(orders, ring)
        room = np.ones(6)  # one order of room per ring carbon
        for bond in mol.GetBonds():
            i, j = sorted((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
            if i < 6 <= j:
                room[i] -= bond.GetBondTypeAsDouble()
        assert (room >= 0).all()
