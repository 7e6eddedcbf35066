"""The campaign notebook runs from top to bottom on the built-in model (tiny: 8 molecules, 20 steps)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "campaign.ipynb"


@pytest.mark.slow
def test_campaign_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # one intra-op thread in the kernel too, as conftest does here
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "report: campaigns/example-quick/report.html" in text and "same molecule: True" in text
    assert (tmp_path / "campaigns" / "example-quick" / "report.html").is_file()
    assert [o for o in outputs if "image/png" in o.get("data", {})]
