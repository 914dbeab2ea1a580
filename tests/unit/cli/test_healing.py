"""Who healed it? The verdicts from before/after snapshots."""

from workerlab.cli.healing import ARBITER, KUBELET, OPERATOR, PodSnapshot, pod_heal, process_heal


def snap(name="p1", uid="u1", restarts=0, ready=True, pids=(10, 11)):
    return PodSnapshot(name, uid, restarts, ready, frozenset(pids))


def test_new_pid_same_restart_count_is_the_arbiter():
    verdict = process_heal(snap(), [snap(pids=(11, 12))], killed_pid=10)
    assert verdict.layer == ARBITER and "new pid 12" in verdict.detail


def test_restart_count_up_is_the_kubelet():
    verdict = process_heal(snap(), [snap(restarts=1, pids=(1, 2))], killed_pid=10)
    assert verdict.layer == KUBELET


def test_restarted_but_not_ready_is_not_healed_yet():
    assert process_heal(snap(), [snap(restarts=1, ready=False)], killed_pid=10).layer is None


def test_new_pod_is_the_operator():
    verdict = process_heal(snap(), [snap(name="p2", uid="u2")], killed_pid=10)
    assert verdict.layer == OPERATOR


def test_still_alive_or_not_replaced_is_not_healed():
    assert process_heal(snap(), [snap()], killed_pid=10).layer is None
    assert process_heal(snap(), [snap(pids=(11,))], killed_pid=10).layer is None
    assert process_heal(snap(), [], killed_pid=10).layer is None


def test_pod_heal_needs_new_ready_pods_for_every_deleted_one():
    a, b = snap("a", "ua"), snap("b", "ub")
    before = {"ua", "ub"}
    assert pod_heal([a], before, [b], desired=2).layer is None
    assert pod_heal([a], before, [b, snap("c", "uc", ready=False)], desired=2).layer is None
    verdict = pod_heal([a], before, [b, snap("c", "uc")], desired=2)
    assert verdict.layer == OPERATOR and "c" in verdict.detail
    # a deleted pod still Ready (graceful deletion not done) means not healed yet
    assert pod_heal([a], before, [a, b, snap("c", "uc")], desired=2).layer is None
