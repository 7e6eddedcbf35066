"""The guidance options of ``moldiff sample`` as a :class:`~moldiff.guidance.plan.GuidanceSpec`:
``--target``/``--guidance-scale`` (a conditional model), ``--guide``/``--predictor``/``--guide-scale``
(regressor guidance) and ``--scaffold``/``--scaffold-smiles``/``--scaffold-h``/``--jump``/``--resample``/
``--reconstruction``/``--valence-guard``.
Here the strings are parsed and their combinations checked; ``moldiff.guidance.plan`` does the rest.
"""

from __future__ import annotations

from pathlib import Path

from moldiff import defaults
from moldiff.errors import MoldiffError
from moldiff.guidance.plan import GuidanceSpec


def guidance_spec(*, targets: list[str], guidance_scale: float, guides: list[str], predictor: str | None,
                  guide_scale: float, scaffold: Path | None, scaffold_smiles: str | None, scaffold_h: bool,
                  jump: int, resamples: int, reconstruction: float | None = None,
                  valence_guard: bool | None = None, steer: list[str] | None = None,
                  particles: int = defaults.STEER_PARTICLES, steer_strength: float = defaults.STEER_STRENGTH,
                  resamplings: int = defaults.STEER_RESAMPLINGS, steer_window: float = 1.0,
                  steer_select: str = defaults.STEER_SELECT, steer_reader: str = "edm") -> GuidanceSpec:  # fmt: skip
    """Parse and cross-check the options (MoldiffError naming the option on bad input)."""
    from moldiff.guidance.regressor import parse_guide
    from moldiff.guidance.steering import predicted_terms
    from moldiff.guidance.units import parse_target

    parsed = dict(parse_target(t) for t in targets)
    if guidance_scale != 1.0 and not parsed:
        raise MoldiffError("--guidance-scale needs --target (classifier-free guidance of a conditional model)")
    terms = tuple(parse_guide(g) for g in guides)
    if terms and predictor is None:
        raise MoldiffError("--guide needs --predictor, a property predictor file (moldiff train-predictor)")
    if scaffold is not None and scaffold_smiles is not None:
        raise MoldiffError("give either --scaffold or --scaffold-smiles, not both")
    if (scaffold is not None or scaffold_smiles is not None) and (jump < 1 or resamples < 1):
        raise MoldiffError(f"--jump and --resample must be at least 1, got {jump}, {resamples}")
    if reconstruction is not None and reconstruction < 0:
        raise MoldiffError(f"--reconstruction must be >= 0, got {reconstruction}")
    extra = {} if reconstruction is None else {"reconstruction": reconstruction}
    if valence_guard is not None:
        extra["valence_guard"] = valence_guard
    read = []  # steered properties the predictor reads
    if steer:
        from moldiff.guidance.steering import check_settings, parse_rewards

        check_settings(particles=particles, strength=steer_strength, resamplings=resamplings, window=steer_window,
                       select=steer_select, reader=steer_reader)  # fmt: skip
        rewards = parse_rewards(steer)
        read = [t.name for t in predicted_terms(rewards)]
        if read and predictor is None:
            raise MoldiffError(f"--steer {', '.join(read)} needs --predictor, a property predictor file "
                               "(RDKit scores only qed, logp, sa and mw)")  # fmt: skip
        extra.update(steer=rewards, particles=particles, steer_strength=steer_strength,
                     resamplings=resamplings, steer_window=steer_window, steer_select=steer_select,
                     steer_reader=steer_reader)  # fmt: skip
    if predictor is not None and not terms and not read:
        raise MoldiffError("--predictor is used only with --guide, or with --steer of a property it predicts")
    return GuidanceSpec(targets=parsed, guidance_scale=guidance_scale, terms=terms, predictor=predictor,
                        guide_scale=guide_scale, scaffold_sdf=None if scaffold is None else str(scaffold),
                        scaffold_smiles=scaffold_smiles, scaffold_h=scaffold_h, jump=jump,
                        resamples=resamples, **extra)  # fmt: skip
