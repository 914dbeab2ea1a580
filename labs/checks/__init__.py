"""One checker per lab: `CHECKERS[n]` gathers facts from the real world and judges them."""

from __future__ import annotations

from workerlab.labs.checks import (
    lab01_one_vs_many,
    lab02_in_pod_master,
    lab03_install_master,
    lab04_self_healing,
    lab05_scaling,
    lab06_load_balancing,
    lab07_rollout,
    lab08_state_sharing,
    lab09_extend_master,
    lab10_failure_drills,
)
from workerlab.labs.checks.base import Checker

CHECKERS: dict[int, Checker] = {
    1: lab01_one_vs_many.CHECKER,
    2: lab02_in_pod_master.CHECKER,
    3: lab03_install_master.CHECKER,
    4: lab04_self_healing.CHECKER,
    5: lab05_scaling.CHECKER,
    6: lab06_load_balancing.CHECKER,
    7: lab07_rollout.CHECKER,
    8: lab08_state_sharing.CHECKER,
    9: lab09_extend_master.CHECKER,
    10: lab10_failure_drills.CHECKER,
}
