"""``moldiff train --init``: a conditional model starts as the unconditional one it came from."""

import pytest
import torch

from moldiff.config import load_config
from moldiff.errors import MoldiffError
from moldiff.generator import build_network
from moldiff.train.warm_start import warm_start

SMALL = ["model.hidden=16", "model.layers=2"]


def _inputs(cond_features: int):
    torch.manual_seed(1)
    x, h = torch.randn(7, 3), torch.randn(7, 5)
    batch, ptr = torch.tensor([0, 0, 0, 1, 1, 1, 1]), torch.tensor([0, 3, 7])
    cond = torch.randn(2, cond_features) if cond_features else None
    return x, h, torch.rand(2), batch, ptr, cond


def test_a_conditional_network_starts_as_its_unconditional_source():
    torch.manual_seed(0)
    plain = build_network(load_config(None, SMALL))
    cond_net = build_network(load_config(None, SMALL + ["data.properties=[gap, mu]"]))
    widened = warm_start(cond_net, plain.state_dict())
    assert widened == ["embed.weight"]
    x, h, t, batch, ptr, cond = _inputs(4)
    out_plain = plain(x, h, t, batch, ptr)
    out_cond = cond_net(x, h, t, batch, ptr, cond)
    for a, b in zip(out_plain, out_cond):
        torch.testing.assert_close(a, b)
    assert cond_net.embed.weight[:, -4:].abs().sum() == 0


def test_same_shapes_load_exactly_and_other_architectures_are_errors():
    torch.manual_seed(0)
    source, target = build_network(load_config(None, SMALL)), build_network(load_config(None, SMALL))
    assert warm_start(target, source.state_dict()) == []
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))
    with pytest.raises(MoldiffError, match="does not fit this network"):
        warm_start(build_network(load_config(None, ["model.hidden=32", "model.layers=2"])), source.state_dict())
    with pytest.raises(MoldiffError, match="other architecture"):
        warm_start(build_network(load_config(None, ["model.hidden=16", "model.layers=3"])), source.state_dict())


def test_a_larger_vocabulary_starts_from_the_shared_elements():
    """A QM9 network (H C N O F) warm-starts one over H C N O F S Cl: on molecules made of the shared
    elements it computes exactly what its source did, and the new elements start at zero."""
    from moldiff.train.warm_start import remap_elements

    torch.manual_seed(0)
    source = build_network(load_config(None, SMALL))
    for p in source.parameters():  # the source's output layer starts at zero; make it informative
        p.data.normal_()
    wide = ["H", "C", "N", "O", "F", "S", "Cl"]
    target = build_network(load_config(None, SMALL + [f"data.elements=[{', '.join(wide)}]"]))
    warm_start(target, remap_elements(source.state_dict(), ["H", "C", "N", "O", "F"], wide))
    x, h, t, batch, ptr, _ = _inputs(0)
    out_source = source(x, h, t, batch, ptr)
    out_target = target(x, torch.cat([h, torch.zeros(7, 2)], 1), t, batch, ptr)
    torch.testing.assert_close(out_source[0], out_target[0])
    torch.testing.assert_close(out_source[1], out_target[1][:, :5])
    assert out_target[1][:, 5:].abs().sum() == 0 and target.embed.weight[:, 5:7].abs().sum() == 0
    reordered = remap_elements(source.state_dict(), ["H", "C", "N", "O", "F"], ["C", "H", "N", "O", "F"])
    assert torch.equal(reordered["embed.weight"][:, 0], source.state_dict()["embed.weight"][:, 1])
