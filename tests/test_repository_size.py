"""The repository stays lean: training states, data sets and sample dumps live outside git. Only
the built-in models (moldiff/models/, a few MB each) may be large."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 1_000_000  # bytes
LARGE_ALLOWED = "moldiff/models/"


def tracked_files() -> list[str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed, so the tracked files cannot be listed")
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listing.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout (an installed or unpacked copy): no tracked files to check")
    return [name for name in listing.stdout.decode().split("\0") if name]


def test_no_tracked_file_outside_the_built_in_models_is_over_1_mb():
    sizes = {name: (ROOT / name).stat().st_size for name in tracked_files() if (ROOT / name).is_file()}
    too_large = {name: size for name, size in sizes.items() if size > LIMIT and not name.startswith(LARGE_ALLOWED)}
    assert too_large == {}, "keep these out of git (or shrink them): " + ", ".join(
        f"{name} ({size / 1e6:.1f} MB)" for name, size in sorted(too_large.items()))
