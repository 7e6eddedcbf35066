"""Few-step generation with flow maps G(z_s, s, t) that jump along the probability-flow ODE.

``model``: the flow-map parameterisation on an equivariant backbone; ``losses``: distillation from
a teacher Denoiser and from-scratch objectives; ``sampler``: the adapter the ``flow-map`` solver
takes (``moldiff.solvers.flow_map``).
"""

from moldiff.flowmap.model import TIME_COND_FEATURES, FlowMapModel, flowmap_egnn, time_condition
from moldiff.flowmap.sampler import EulerFlowMap, FlowMapSampler, as_flow_map

__all__ = ["TIME_COND_FEATURES", "EulerFlowMap", "FlowMapModel", "FlowMapSampler", "as_flow_map", "flowmap_egnn",
           "time_condition"]  # fmt: skip
