"""A flow-map network built from a run config, and a MoleculeGenerator that samples with it.

The generator's ``denoiser`` slot holds a :class:`FlowMapSampler` (it has the ``schedule`` and
``nfe`` the generator and CLI read), so ``MoleculeGenerator.sample`` with the ``flow-map`` solver
jumps with the learned map.
"""

from __future__ import annotations

import torch

from moldiff.config import FlowMapRunConfig, RunConfig
from moldiff.data.elements import AtomVocabulary
from moldiff.flowmap.model import FlowMapModel, flowmap_egnn
from moldiff.flowmap.sampler import FlowMapSampler
from moldiff.generator import MoleculeGenerator, build_schedule
from moldiff.guidance.condition import condition_features


def build_flowmap_network(config: RunConfig) -> torch.nn.Module:
    """The backbone of u(z_s, s, t): the run's EGNN with two more condition columns for (t, s − t)."""
    m = config.model
    return flowmap_egnn(len(config.data.elements), cond_features=condition_features(config.data.properties),
                        hidden=m.hidden, layers=m.layers, attention=m.attention, norm_factor=m.norm_factor)  # fmt: skip


def flowmap_generator(config: RunConfig, net: torch.nn.Module, atom_count_hist: dict[int, int]) -> MoleculeGenerator:
    """A MoleculeGenerator whose ``denoiser`` is the flow-map sampler of ``net``."""
    schedule = build_schedule(config.diffusion)
    fm = getattr(config, "flowmap", None)
    parameterization, alpha_floor = (fm.parameterization, fm.alpha_floor) if fm else ("velocity", 0.0)
    sampler = FlowMapSampler(FlowMapModel(net, parameterization, schedule, alpha_floor), schedule)
    return MoleculeGenerator(sampler, AtomVocabulary(tuple(config.data.elements)), config.diffusion.type_scale,
                             atom_count_hist)  # fmt: skip


def is_flowmap_payload(payload: dict) -> bool:
    """Whether a checkpoint holds a flow map (its config has a ``flowmap`` section)."""
    return isinstance(payload.get("config"), dict) and "flowmap" in payload["config"]


def load_flowmap_generator(payload: dict, device: str = "cpu") -> tuple[MoleculeGenerator, FlowMapRunConfig]:
    """(generator with the EMA weights, config) from a flow-map checkpoint's payload."""
    from moldiff.config import validate_config

    config = validate_config(payload["config"], FlowMapRunConfig)
    net = build_flowmap_network(config)
    net.load_state_dict(payload["ema"])
    net.to(device).eval()
    hist = {int(k): int(v) for k, v in payload["atom_count_hist"].items()}
    return flowmap_generator(config, net, hist), config
