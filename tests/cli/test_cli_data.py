"""``moldiff data ingest`` and ``moldiff data info``: outputs, and one-line errors for bad input."""

from pathlib import Path

import pytest

from moldiff.cli.main import main
from moldiff.data.molset import MolSet

FIXTURES = Path(__file__).parents[1] / "data" / "fixtures"


def _one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_ingest_smi_writes_set_rejects_and_summary(tmp_path, capsys):
    out = tmp_path / "mine.npz"
    assert main(["data", "ingest", str(FIXTURES / "mixed.smi"), "-o", str(out), "--workers", "2"]) == 0
    captured = capsys.readouterr()
    rejects = tmp_path / "mine.rejects.csv"
    assert captured.out.strip() == f"read 5, kept 3, rejected 2 (see {rejects})"
    assert captured.err == ""
    data = MolSet.load(out)
    assert data.ids.tolist() == [0, 2, 4] and data.smiles.tolist() == ["CCO", "Oc1ccccc1", "O"]
    assert rejects.read_text().splitlines() == [
        "index,reason", "1,unparsable SMILES", '3,"element Cl not in vocabulary (H, C, N, O, F)"']


def test_ingest_options_elements_and_max_atoms(tmp_path, capsys):
    out = tmp_path / "sdf.npz"
    argv = ["data", "ingest", str(FIXTURES / "bad.sdf"), "-o", str(out), "--elements", "h,c,o,cl"]
    assert main(argv) == 0
    assert "read 7, kept 2, rejected 5" in capsys.readouterr().out
    assert MolSet.load(out).smiles.tolist() == ["CO", "CCl"]
    assert main(["data", "ingest", str(FIXTURES / "good.sdf"), "-o", str(out), "--max-atoms", "9"]) == 0
    assert capsys.readouterr().out.strip() == f"read 3, kept 2, rejected 1 (see {tmp_path / 'sdf.rejects.csv'})"
    assert (tmp_path / "sdf.rejects.csv").read_text() == "index,reason\n1,too many atoms (13 > 9)\n"


def test_info_of_an_ingested_set(tmp_path, capsys):
    out = tmp_path / "good.npz"
    assert main(["data", "ingest", str(FIXTURES / "good.sdf"), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{out}: 3 molecules, 30 atoms" in text
    assert "atoms per molecule: min 8, mean 10.0, max 13" in text
    assert "     9        1 " in text and "    13        1 " in text  # histogram rows
    assert "    H  53.33 %" in text  # 16 of 30 atoms
    assert "properties: energy" in text


@pytest.mark.slow
def test_info_qm9(capsys):
    assert main(["data", "info", "qm9:test"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("qm9:test: 13083 molecules")
    assert "    F " in text and "properties: Cv, alpha, gap, homo, lumo, mu" in text


@pytest.mark.parametrize("argv, message", [
    (["data", "ingest", "{tmp}/missing.sdf", "-o", "{tmp}/o.npz"], "no such file"),
    (["data", "ingest", "{fx}/empty.smi", "-o", "{tmp}/o.npz"], "is empty"),
    (["data", "ingest", "{fx}/blank.smi", "-o", "{tmp}/o.npz"], "no molecules in"),
    (["data", "ingest", "{fx}/no_smiles_column.csv", "-o", "{tmp}/o.npz"], "has no SMILES column"),
    (["data", "ingest", "{fx}/garbage.sdf", "-o", "{tmp}/o.npz"], "no molecule block found"),
    (["data", "ingest", "{fx}/good.sdf", "-o", "{tmp}/o.npz", "--elements", "H"], "no usable molecules"),
    (["data", "ingest", "{fx}/good.sdf", "-o", "{tmp}/o.npz", "--elements", "H,Qq"], "--elements: unknown element"),
    (["data", "ingest", "{fx}/good.sdf", "-o", "{tmp}/o.npz", "--max-atoms", "0"], "max_atoms must be at least 1"),
    (["data", "ingest", "{fx}/mixed.smi", "-o", "{tmp}/o.npz", "--workers", "0"], "--workers must be at least 1"),
    (["data", "ingest", "{fx}/good.sdf", "-o", "{tmp}/o.csv"], "must be an .npz file"),
    (["data", "ingest", "{tmp}/mols.txt", "-o", "{tmp}/o.npz"], "unknown file type"),
    (["data", "info", "{tmp}/missing.npz"], "no such file"),
    (["data", "info", "{fx}/props.csv"], "cannot read molecule set"),
    (["data", "info", "qm9:training"], "unknown QM9 split 'training'"),
    (["data", "ingest", "{fx}/good.sdf"], "Missing option '-o' / '--out'"),
    (["data", "ingest", "{fx}/good.sdf", "-o", "{tmp}/o.npz", "--max-atoms", "many"], "'--max-atoms'"),
    (["data", "convert"], "No such command 'convert'"),
])  # fmt: skip
def test_bad_input_is_one_line_on_stderr(tmp_path, capsys, argv, message):
    (tmp_path / "mols.txt").write_text("CCO\n")
    argv = [a.format(tmp=tmp_path, fx=FIXTURES) for a in argv]
    err = _one_line_error(capsys, argv)
    assert err.startswith("error: ") and message in err
    assert not (tmp_path / "o.npz").exists()


def test_failed_ingest_leaves_no_partial_output(tmp_path, capsys):
    _one_line_error(capsys, ["data", "ingest", str(FIXTURES / "empty.smi"), "-o", str(tmp_path / "o.npz")])
    assert list(tmp_path.iterdir()) == []
