"""Reading convergence like `kubectl rollout status`."""

import pytest

from workerlab.api.objects import env_value
from workerlab.common.errors import MissingPrerequisite, WorkerlabError
from workerlab.common.wcstate import converged, wait_converged


def wc(gen=2, observed=2, replicas=2, ready=2, updated=2, total=2, ready_cond="True"):
    return {
        "metadata": {"generation": gen},
        "spec": {"replicas": replicas, "env": [{"name": "A", "value": "1"}]},
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "conditions": [{"type": "Ready", "status": ready_cond}],
        },
    }


def test_converged():
    assert converged(wc())[0]


def test_stale_observed_generation_is_not_converged_even_if_ready():
    done, why = converged(wc(gen=3))
    assert not done and "generation 3" in why


def test_rollout_in_progress_is_not_converged():
    assert not converged(wc(updated=1))[0]
    assert not converged(wc(total=3))[0]
    assert not converged(wc(ready_cond="False"))[0]
    assert not converged({"metadata": {"generation": 1}, "spec": {}, "status": {}})[0]


def test_env_value():
    assert env_value(wc(), "A") == "1" and env_value(wc(), "B") is None


def test_wait_converged_rides_out_api_errors_and_is_bounded():
    class Flaky:
        namespace = "workerlab"

        def __init__(self, answers):
            self.answers = list(answers)

        def worker_cluster(self, name):
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            if isinstance(answer, Exception):
                raise answer
            return answer

    down = MissingPrerequisite("cannot reach the API server")
    assert wait_converged(Flaky([down, wc(updated=1), wc()]), "demo", 5, poll_s=0.01) == wc()
    with pytest.raises(WorkerlabError, match="did not converge within"):
        wait_converged(Flaky([down]), "demo", 0.05, poll_s=0.01)
