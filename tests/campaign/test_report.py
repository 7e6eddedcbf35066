"""The report: self-contained HTML (no scripts, no external resources) with every section, built
from the campaign directory alone; `moldiff report DIR` rebuilds it."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest

from moldiff.campaign.config import load_campaign
from moldiff.campaign.report import render
from moldiff.campaign.runner import _write_batch, batch_range, finish
from moldiff.paths import file_digest
from moldiff.chem.conformers import smiles_to_3d
from moldiff.chem.scoring import score_molset
from moldiff.cli.main import main
from moldiff.data.molset import MolSet

DRUGLIKE = ["CC(=O)Nc1ccc(O)cc1", "NC(=O)c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "O=C1NC(=S)SC1=Cc1ccccc1",
            "Cc1ccc(S(N)(=O)=O)cc1", "CN1CCN(c2ccccc2)CC1", "OC(c1ccccc1)c1ccccc1", "c1ccc2[nH]ccc2c1"]  # fmt: skip


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.h2, self.urls, self.text = [], [], [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_h2 = tag == "h2"
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_endtag(self, tag):
        self._in_h2 = False if tag == "h2" else self._in_h2

    def handle_data(self, data):
        self.text.append(data)
        if self._in_h2:
            self.h2.append(data.strip())


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model, reference_file):
    """A campaign directory finished from hand-made batches of real drug-like molecules."""
    import yaml

    folder = tmp_path_factory.mktemp("report")
    raw = {"name": "druglike", "model": str(tiny_model), "n_molecules": len(DRUGLIKE), "seed": 1,
           "output_dir": str(folder / "out"), "sampling": {"steps": 2, "batch_size": 4},
           "scoring": {"reference": str(reference_file), "fcd": False},
           "filters": {"ranges": {"qed": {"min": 0.5}}, "alerts": ["pains"]},
           "desirability": {"qed": {"transform": "sigmoid", "low": 0.4, "high": 0.8}}, "tracking": {"enabled": False}}  # fmt: skip
    (folder / "c.yaml").write_text(yaml.safe_dump(raw))
    config = load_campaign(folder / "c.yaml")
    from moldiff.campaign.reference import load_reference

    reference = load_reference(config.scoring.reference)
    out = config.out_dir()
    for b in range(config.n_batches):
        start, end = batch_range(config, b)
        confs = [smiles_to_3d(s) for s in DRUGLIKE[start:end]]
        molset = MolSet(np.concatenate([c.atomic_numbers for c in confs]), np.concatenate([c.positions for c in confs]),
                        np.concatenate([[0], np.cumsum([len(c.atomic_numbers) for c in confs])]),
                        ids=np.arange(start, end))  # fmt: skip
        frame = score_molset(molset, reference)
        frame.insert(1, "seed", np.arange(start, end))
        meta = {"batch": b, "start": start, "end": end, "fingerprint": config.fingerprint(), "model": str(tiny_model),
                "model_sha256": file_digest(tiny_model), "model_step": 0, "device": "cpu",
                "seconds_generate": 0.0, "seconds_score": 0.0}  # fmt: skip
        _write_batch(out, b, molset, frame, meta)
    (out / "campaign.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    result = finish(config, out, [out], tracking_uri=None)
    return out, result


def test_report_is_self_contained_and_has_every_section(finished):
    out, result = finished
    html = (out / "report.html").read_text()
    page = _Page()
    page.feed(html)
    assert page.h2 == ["Provenance", "Set metrics", "Distributions", "Top molecules", "Why molecules were filtered",
                       "Campaign file (resolved)"]  # fmt: skip
    assert "script" not in page.tags and "link" not in page.tags
    assert page.urls and all(u.startswith("data:image/png;base64,") for u in page.urls)  # nothing fetched
    assert "svg" in page.tags  # the molecule grid, inline
    text = " ".join(page.text)
    kept = result.frame[result.frame["status"] == "kept"]
    assert len(kept) >= 4 and all(s in text for s in kept["smiles"])
    assert "PAINS alert" in text and "validity (xyz2mol)" in text and "QM9" not in text
    assert "reference.smi" in text  # the reference set named in the provenance


def test_moldiff_report_rebuilds_the_file(finished, capsys, tmp_path):
    out, _ = finished
    before = (out / "report.html").read_text()
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    after = (out / "report.html").read_text()
    assert after == before
    assert main(["report", str(tmp_path)]) == 2
    assert "not a finished campaign directory" in capsys.readouterr().err


def test_a_scaffold_campaign_report_highlights_the_scaffold(finished, tmp_path):
    import shutil

    out, _ = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    run = json.loads((copy / "run.json").read_text())
    run["guidance"] = {"scaffold": {"smiles": "c1ccccc1", "source": "c1ccccc1", "atoms": 6, "jump": 1, "resamples": 1}}
    (copy / "run.json").write_text(json.dumps(run))
    html = render(copy)
    assert "The scaffold <code>c1ccccc1</code> is highlighted" in html and "#FF7F7F" in html
    assert "#FF7F7F" not in (out / "report.html").read_text()  # no scaffold: nothing highlighted


def test_seeds_are_shown_exactly():
    from moldiff.campaign.report import _num

    seed = 8791398145135533503  # 63 bits: a float would print 8791398145135533056
    assert _num(np.int64(seed)) == _num(seed) == str(seed)
    assert _num(0.8176) == "0.818" and _num(float("nan")) == "" and _num(3.0) == "3"
