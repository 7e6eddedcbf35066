"""The wheel is a complete moldiff: built from this source tree and installed into a fresh virtual
environment, it carries the built-in models and their cards, the shipped configs and the examples,
and `moldiff sample` runs from an empty directory with nothing of the source tree in reach.

The fresh environment sees the current environment's dependencies through a .pth file listing its
site-packages folders (installing torch and rdkit anew would be slow and need the network). Python
adds those folders to sys.path without processing the .pth files inside them, so an editable
install of moldiff there stays invisible and the wheel's copy is the one that runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "moldiff"

pytestmark = pytest.mark.slow


def _run(args: list, cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of a copy of this source tree (pip, offline, with the build backend installed here)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(PACKAGE, source / "moldiff", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", work / "dist", source], cwd=work)  # fmt: skip
    (built,) = (work / "dist").glob("moldiff-*.whl")
    return built


def _shipped(folder: str, pattern: str) -> set[str]:
    return {f"moldiff/{folder}/{p.name}" for p in (PACKAGE / folder).glob(pattern)}


def test_the_wheel_carries_models_cards_configs_and_examples(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    models = _shipped("models", "*.pt")
    assert models and models <= names
    assert {name.removesuffix(".pt") + ".md" for name in models} <= names  # every model with its card
    assert _shipped("configs", "*.yaml") and _shipped("configs", "*.yaml") <= names
    assert _shipped("configs/campaigns", "*.yaml") and _shipped("configs/campaigns", "*.yaml") <= names
    assert _shipped("examples", "*") and _shipped("examples", "*") <= names


def test_the_installed_wheel_samples_from_an_empty_directory(wheel, tmp_path):
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
         cwd=tmp_path)  # fmt: skip
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              cwd=tmp_path).strip())  # fmt: skip
    ours = [p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p) and Path(p).is_dir()]
    (site_packages / "outer_dependencies.pth").write_text("\n".join(ours) + "\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    located = _run([python, "-c", "import moldiff; print(moldiff.__file__)"], cwd=empty, env=env).strip()
    assert Path(located).resolve().is_relative_to(env_dir.resolve()), located
    moldiff = env_dir / "bin" / "moldiff"
    version = _run([moldiff, "--version"], cwd=empty, env=env)
    assert version.split()[-1] == _run([python, "-c", "import moldiff; print(moldiff.__version__)"], cwd=empty,
                                       env=env).strip()  # fmt: skip
    _run([moldiff, "sample", "-n", "5"], cwd=empty, env=env)
    assert {p.name for p in empty.iterdir()} >= {"samples.sdf", "samples.csv"}
    assert (empty / "samples.sdf").read_text().count("$$$$") == 5
