import pytest
import torch

from moldiff.diffusion.schedules import SCHEDULES, make_schedule
from moldiff.solvers.grids import GRIDS, edm_times, log_snr_late_times, log_snr_times, make_times


@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_grids_run_from_one_to_zero_strictly_decreasing(grid, schedule_name):
    t = make_times(grid, 12, make_schedule(schedule_name))
    assert t.shape == (13,) and t[0] == 1 and t[-1] == 0
    assert (t[1:] < t[:-1]).all()


@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
def test_log_snr_grid_is_uniform_in_lambda(schedule_name):
    schedule = make_schedule(schedule_name)
    lam = schedule.log_snr(log_snr_times(10, schedule))
    steps = lam[1:] - lam[:-1]
    assert torch.allclose(steps, steps.mean().expand(10), rtol=1e-6)


def test_edm_grid_follows_rho_spacing():
    schedule = make_schedule("ve", sigma_min=0.002, sigma_max=80.0)  # EDM's own σ range
    sigma = torch.exp(-schedule.log_snr(edm_times(4, schedule)))
    root = sigma ** (1 / 7)
    assert torch.allclose(root[1:] - root[:-1], (root[1] - root[0]).expand(4), rtol=1e-6)
    assert torch.allclose(sigma[[0, -1]], torch.tensor([80.0, 0.002], dtype=torch.float64))


def test_bad_grid_arguments():
    with pytest.raises(ValueError, match="unknown time grid"):
        make_times("quadratic", 5, make_schedule("polynomial"))
    with pytest.raises(ValueError, match="at least one interval"):
        make_times("uniform", 0, make_schedule("polynomial"))


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_log_snr_late_grid_shrinks_its_steps_towards_the_data(power):
    schedule = make_schedule("polynomial")
    lam = schedule.log_snr(log_snr_late_times(8, schedule, power))
    lam_1, lam_0 = lam[0], lam[-1]
    assert torch.allclose((lam - lam_1) / (lam_0 - lam_1), torch.linspace(0, 1, 9, dtype=torch.float64) ** power,
                          atol=1e-6)  # fmt: skip
    steps = lam[1:] - lam[:-1]
    if power == 1.0:
        assert torch.allclose(lam, schedule.log_snr(log_snr_times(8, schedule)), atol=1e-6)
    else:
        assert (steps[1:] < steps[:-1]).all()
