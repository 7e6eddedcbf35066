"""`moldiff --version` names the installed version, which is the package's own."""

import tomllib
from pathlib import Path

import moldiff
from moldiff.cli.main import main, version


def test_version_option_prints_the_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"moldiff {version()}"


def test_the_package_version_is_the_project_version():
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    assert moldiff.__version__ == project["version"]
