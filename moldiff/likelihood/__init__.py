"""Likelihoods of a trained denoiser, in nats per molecule: the variational bound (``elbo``) and
the probability-flow ODE likelihood with a Hutchinson trace estimator (``ode``). Both use only the
Denoiser interface, so they work for a model trained in any view."""

from moldiff.likelihood.elbo import degrees_of_freedom, variational_bound
from moldiff.likelihood.ode import ode_bound, ode_log_density

__all__ = ["degrees_of_freedom", "ode_bound", "ode_log_density", "variational_bound"]
