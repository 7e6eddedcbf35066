"""``moldiff evaluate``: exit codes, JSON on stdout, one-line errors, rejects on stderr."""

from __future__ import annotations

import json
from importlib import resources

import pandas as pd
import pytest
from chem_molecules import ETHANOL, WATER, molset_of

from moldiff.chem.io import write_xyz
from moldiff.cli.main import main

EXAMPLE = str(resources.files("moldiff") / "examples" / "qm9_sample.sdf")


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_json_on_bundled_example(capsys):
    assert main(["evaluate", EXAMPLE, "--json", "--no-novelty"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)  # exactly one JSON object, nothing else on stdout
    assert summary["n"] == 100 and summary["n_rejected"] == 0 and summary["novelty"] is None
    for key in ("atom_stability", "mol_stability", "validity", "uniqueness", "valid_x_unique"):
        assert 0.9 <= summary[key] <= 1.0


def test_table_output(capsys):
    assert main(["evaluate", EXAMPLE, "--no-novelty"]) == 0
    out = capsys.readouterr().out
    assert "molecule stability" in out and "validity" in out and "%" in out


def test_reference_smiles_file_and_csv_output(tmp_path, capsys):
    xyz = tmp_path / "gen.xyz"
    write_xyz(xyz, molset_of(WATER, ETHANOL, ETHANOL))
    ref = tmp_path / "ref.smi"
    ref.write_text("OCC ethanol\n")
    out_csv = tmp_path / "rows.csv"
    assert main(["evaluate", str(xyz), "--json", "--reference", str(ref), "--out-csv", str(out_csv)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_unique"] == 2 and summary["novelty"] == pytest.approx(0.5)
    rows = pd.read_csv(out_csv)
    assert rows["smiles"].tolist() == ["O", "CCO", "CCO"] and rows["valid"].all()


def test_reference_csv(tmp_path, capsys):
    xyz = tmp_path / "gen.xyz"
    write_xyz(xyz, molset_of(WATER, ETHANOL))
    ref = tmp_path / "ref.csv"
    ref.write_text("name,SMILES\nw,O\n")
    assert main(["evaluate", str(xyz), "--json", "--reference", str(ref)]) == 0
    assert json.loads(capsys.readouterr().out)["novelty"] == pytest.approx(0.5)


def test_rejects_are_reported_and_counted(tmp_path, capsys):
    xyz = tmp_path / "gen.xyz"
    xyz.write_text("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n2\n\nXx 0 0 0\nH 1 0 0\n")
    assert main(["evaluate", str(xyz), "--json", "--no-novelty"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["n"] == 2 and summary["n_rejected"] == 1 and summary["validity"] == 0.5
    assert "1 of 2 molecules" in captured.err and "Xx" in captured.err


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["evaluate", "missing.sdf"], "no such file"),
        (["evaluate", "pyproject.toml"], "unknown extension"),
        (["evaluate", EXAMPLE, "--reference", "r.smi", "--no-novelty"], "exclude each other"),
    ],
)
def test_one_line_errors(args, match, capsys):
    assert main(args) == 2
    assert match in _one_line_error(capsys)


def test_empty_file_error(tmp_path, capsys):
    (tmp_path / "empty.sdf").write_text("")
    assert main(["evaluate", str(tmp_path / "empty.sdf")]) == 2
    assert "empty" in _one_line_error(capsys)


def test_bad_reference_extension(tmp_path, capsys):
    (tmp_path / "ref.pdb").write_text("x")
    assert main(["evaluate", EXAMPLE, "--reference", str(tmp_path / "ref.pdb")]) == 2
    assert "reference" in _one_line_error(capsys)


def test_warns_when_file_has_no_hydrogens(tmp_path, capsys):
    xyz = tmp_path / "heavy.xyz"
    xyz.write_text("3\n\nC 0 0 0\nC 1.52 0 0\nO 2.0 1.4 0\n")
    assert main(["evaluate", str(xyz), "--json", "--no-novelty"]) == 0
    captured = capsys.readouterr()
    assert "no hydrogen atoms" in captured.err and json.loads(captured.out)["mol_stability"] == 0.0
