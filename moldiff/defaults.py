"""The default sampler of ``moldiff sample`` and of campaign files, chosen by measurement on the
built-in model (``python bench/bench_solvers.py``, table in the README): the cheapest solver and
NFE budget that match the 1000-step ancestral sampler's quality. Kept free of heavy imports so the
CLI starts fast."""

SOLVER = "dpmpp-2m-sde"
STEPS = 100  # network evaluations per molecule
