"""What a newcomer meets first: a short README that starts with the two commands CI runs, and files
that describe moldiff rather than the history of its making."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
# the word for a stint of development work, spelt in pieces so that this file passes its own check;
# pytest's fixture scope of the same name is code, not prose
WORD = "sess" + "ion"
SESSION_WORD = re.compile(rf"\b{WORD}s?\b", re.IGNORECASE)
PYTEST_SCOPE = re.compile(rf"""scope\s*=\s*["']{WORD}["']""")


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    paths = [ROOT / p for p in out.decode().split("\0") if p]
    return [p for p in paths if p.is_file() and b"\0" not in p.read_bytes()[:4096]]


def test_readme_is_a_front_door_of_at_most_150_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines"


def test_readme_starts_with_the_two_commands_ci_runs():
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)
    ci = (ROOT / ".ci" / "run").read_text().replace(" -q ", " ")  # CI only quietens pip
    install, tests = blocks[0].strip(), blocks[1].strip()
    assert install.startswith("pip install") and "moldiff sample" in install
    assert tests.startswith("pip install") and "pytest" in tests
    assert install in ci and tests in ci


def test_no_file_speaks_of_the_history_of_its_development():
    offenders = []
    for path in _tracked_text_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if SESSION_WORD.search(PYTEST_SCOPE.sub("", line)):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert not offenders, f"files mention a development {WORD}: " + ", ".join(offenders[:10])
