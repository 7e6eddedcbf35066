"""The default sampler of ``moldiff sample`` and of campaign files, chosen by measurement on the
built-in model (``python bench/bench_solvers.py``, table on the solvers benchmark page of the
docs): the cheapest solver and NFE budget that match the 1000-step ancestral sampler's quality.
Kept free of heavy imports so the CLI starts fast."""

SOLVER = "dpmpp-2m-sde"
STEPS = 100  # network evaluations per molecule
FLOWMAP_STEPS = 4  # jumps (network evaluations) of a flow-map model such as qm9-fast

# Reconstruction-guidance weight of scaffold inpainting (``moldiff.guidance.inpaint``; --reconstruction).
# Off by default: its step −(w α/2)∇ is unbounded and diverges on a poorly trained network. On the
# built-in model w = 10 raised validity around a cyclohexane scaffold from 47.5 % to 87.5 % and
# around furan from 6.5 % to 15 % (40 molecules each); w = 30 was worse (python bench/bench_scaffold.py
# --reconstruction W gives the full table).
RECONSTRUCTION = 0.0

# The valence guard of scaffold inpainting (``moldiff.guidance.valence``; --valence-guard/--no-valence-guard):
# new atoms bond to a scaffold atom only where it has an open valence. Off by default: on the
# known-atoms QM9 model it lifts EDM validity around aromatic rings (pyridine 17 → 86 %) only by
# stranding the atoms it pushes away, so molecules in one piece fall (benzene 74.5 → 23 % valid and
# in one piece; python bench/bench_scaffold.py --model train_state/qm9_known/last.pt --valence-guard).
VALENCE_GUARD = False

# Reward steering (``moldiff.guidance.steering``; --steer): the best final particle of 4, no
# resampling on the way. On QM9, resampling on mid-sampling predictions x̂₀ did worse than best-of-P
# (QED +0.02 against +0.03 on 40 molecules; pyridine scaffold validity 20 % against 40 % on 60).
STEER_PARTICLES = 4
STEER_STRENGTH = 100.0  # λ: a QED gain of 0.01 weighs e¹ when resampling or drawing the final particle
STEER_RESAMPLINGS = 0
STEER_SELECT = "best"
