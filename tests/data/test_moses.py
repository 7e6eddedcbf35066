"""MOSES preparation: SMILES read out of the molsets wheel, conformers in cached chunks that a
second run reuses, rejects with reasons, the CLI's outputs. A tiny stand-in wheel keeps it offline;
one slow test reads 20 molecules from the real wheel."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

from moldiff.cli.main import main
from moldiff.data import moses
from moldiff.data.molset import MolSet
from moldiff.errors import MoldiffError

SMILES = ["CCO", "c1ccccc1O", "not_a_smiles", "C[Si](C)(C)C", "CC(=O)Nc1ccc(O)cc1", "Clc1ccccc1Br", "CCN"]


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch):
    path = tmp_path / "molsets-0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(moses.SPLITS["train"], gzip.compress(("SMILES\n" + "\n".join(SMILES) + "\n").encode()))
    monkeypatch.setenv(moses.WHEEL_ENV, str(path))
    monkeypatch.setenv("MOLDIFF_HOME", str(tmp_path / "home"))
    return path


def test_reads_smiles_from_the_wheel(fake_wheel):
    assert moses.moses_smiles("train") == SMILES
    with pytest.raises(MoldiffError, match="cannot read MOSES test"):
        moses.moses_smiles("test")


def test_prepare_embeds_rejects_and_resumes_from_cached_chunks(fake_wheel, monkeypatch):
    first = moses.prepare_moses(6, seed=1, workers=1, chunk_size=2)
    assert len(first.molset) + len(first.rejects) == 6
    reasons = dict(first.rejects)
    if 2 in reasons:
        assert reasons[2] == "unparsable SMILES"
    if 3 in reasons:
        assert "Si" in reasons[3]
    assert first.info["subset"] == 6 and first.info["split_size"] == len(SMILES)
    assert set(first.info["elements"]) <= set(moses.MOSES_ELEMENTS.symbols)

    def no_embedding(*args, **kwargs):
        raise AssertionError("a cached chunk was embedded again")

    monkeypatch.setattr("moldiff.chem.conformers.embed_many", no_embedding)
    again = moses.prepare_moses(6, seed=1, workers=1, chunk_size=2)
    assert again.molset.ids.tolist() == first.molset.ids.tolist() and again.rejects == first.rejects
    assert (again.molset.positions == first.molset.positions).all()


def test_subsets_of_other_sizes_share_cached_chunks_correctly(fake_wheel):
    # every subset is a prefix of one shuffled order, so chunks are shared across subset sizes
    small = moses.prepare_moses(3, seed=1, workers=1, chunk_size=4)
    assert len(small.molset) + len(small.rejects) == 3
    full = moses.prepare_moses(7, seed=1, workers=1, chunk_size=4)  # chunk 0 was cached for 3: embedded again
    assert len(full.molset) + len(full.rejects) == 7
    again = moses.prepare_moses(3, seed=1, workers=1, chunk_size=4)  # now chunk 0 holds 4: ours only
    assert again.molset.ids.tolist() == small.molset.ids.tolist() and again.rejects == small.rejects


def test_cli_writes_set_description_and_rejects(fake_wheel, tmp_path, capsys):
    out = tmp_path / "moses.npz"
    assert main(["data", "prepare", "moses", "--subset", str(len(SMILES)), "-o", str(out), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert f"{len(SMILES)} of {len(SMILES)} molecules, embedded 5, rejected 2" in text
    data = MolSet.load(out)
    assert len(data) == 5 and data.smiles is not None
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["vocabulary"] == list(moses.MOSES_ELEMENTS.symbols) and "Br" in info["elements"]
    assert out.with_suffix(".rejects.csv").read_text().count("\n") == 3  # header + 2
    assert main(["data", "prepare", "moses", "--subset", "0", "-o", str(out)]) == 2
    assert "--subset must be at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_twenty_molecules_from_the_real_wheel(tmp_path, monkeypatch):
    # PyPI is reachable wherever moldiff installs (CI included), so a failed fetch is a failure
    monkeypatch.delenv(moses.WHEEL_ENV, raising=False)
    prepared = moses.prepare_moses(20, workers=1)
    assert len(prepared.molset) + len(prepared.rejects) == 20 and len(prepared.molset) >= 18
    assert prepared.info["split_size"] == 1_584_663
    assert 20 <= prepared.info["atoms_per_molecule"]["mean"] <= 70


def test_prepare_also_takes_your_own_file(tmp_path, capsys):
    fixtures = Path(__file__).parent / "fixtures"
    out = tmp_path / "own.npz"
    assert main(["data", "prepare", str(fixtures / "good.sdf"), "-o", str(out)]) == 0
    assert "read 3, kept 3, rejected 0" in capsys.readouterr().out and len(MolSet.load(out)) == 3
    assert main(["data", "prepare", "chembl", "-o", str(out)]) == 2
    assert "give 'moses' or an existing" in capsys.readouterr().err


def test_a_training_config_can_name_the_moses_subset(fake_wheel):
    """`data: {dataset: moses, subset: N}` prepares (or reuses) the same cached conformers and splits
    them 90/10; the campaign reference of such a model is the same subset's SMILES."""
    from moldiff.campaign.reference import reference_smiles
    from moldiff.config import load_config
    from moldiff.train.data import load_training_data

    cfg = load_config(None, ["data.dataset=moses", "data.subset=6", "data.elements=[H, C, N, O, F, S, Cl, Br]"])
    train, valid = load_training_data(cfg.data)
    prepared = moses.prepare_moses(6)
    assert len(train) + len(valid) == len(prepared.molset) and len(valid) == 1
    name, smiles = reference_smiles("training", cfg)
    assert "MOSES" in name and sorted(smiles) == sorted(SMILES[i] for i in moses.subset_order(len(SMILES), 6))
