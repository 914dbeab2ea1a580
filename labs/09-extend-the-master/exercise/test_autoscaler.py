"""Lab 9: the tests `desired_replicas` must pass; run by `workerlab lab check 9`, not `make test`.

The module is loaded from this directory by path, so a copy of the folder tests its own copy.
"""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "lab09_autoscaler", Path(__file__).with_name("autoscaler.py")
)
autoscaler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(autoscaler)
desired_replicas = autoscaler.desired_replicas


def test_on_target_keeps_the_count():
    assert desired_replicas(2, [0.6, 0.6]) == 2


def test_busy_pods_scale_up_proportionally():
    # mean 0.9 against a 0.6 target: 2 * 0.9 / 0.6 = 3
    assert desired_replicas(2, [0.9, 0.9]) == 3


def test_rounds_up_so_capacity_is_never_short():
    # 3 * 0.7 / 0.6 = 3.5 -> 4
    assert desired_replicas(3, [0.7, 0.7, 0.7]) == 4


def test_float_noise_does_not_add_a_pod():
    # 3 * 0.8 / 0.6 is exactly 4, but in floating point it is 4.000000000000001: ceil makes 5
    assert desired_replicas(3, [0.8, 0.8, 0.8]) == 4
    # the same on the way down: 3 * 0.4 / 0.6 is 2, in floating point 2.0000000000000004
    assert desired_replicas(3, [0.4, 0.4, 0.4]) == 2
    # the mean adds noise too: sum([0.9] * 7) / 7 is 0.9000000000000001, and 7 * that / 0.7
    # is 9.000000000000002 where the exact answer is 9
    assert desired_replicas(7, [0.9] * 7, target=0.7) == 9


def test_idle_pods_scale_down_but_not_below_the_minimum():
    assert desired_replicas(4, [0.0, 0.1, 0.0, 0.1]) == 1
    assert desired_replicas(4, [0.0] * 4, min_replicas=2) == 2


def test_never_above_the_maximum():
    assert desired_replicas(10, [1.0] * 10) == 10
    assert desired_replicas(2, [1.0, 1.0], max_replicas=3) == 3


def test_small_deviations_are_tolerated():
    # 0.65 / 0.6 = 1.083: within 10 %, no change
    assert desired_replicas(5, [0.65] * 5) == 5


def test_no_measurements_means_no_change():
    assert desired_replicas(3, []) == 3


def test_scaled_to_zero_stays_at_zero():
    assert desired_replicas(0, []) == 0


def test_rejects_a_nonsense_target():
    with pytest.raises(ValueError):
        desired_replicas(2, [0.5], target=0)
