"""The worker's default image is a setting: parsed from flags or env, validated, carried into the
pure core as data; a new default rolls the pods that follow it and only those."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workerlab.api.resource import (
    ENV_WORKER_IMAGE,
    ENV_WORKER_IMAGE_PULL_POLICY,
    ENV_WORKER_IMAGE_PULL_SECRETS,
)
from workerlab.operator.__main__ import main, parse_args, worker_image
from workerlab.operator.images import (
    FALLBACK_IMAGE,
    InvalidSetting,
    WorkerImage,
    default_worker_image,
    resolve,
)
from workerlab.operator.model import WorkerCluster
from workerlab.operator.reconcile import plan
from workerlab.operator.simulation import T0, World, make_cluster, make_pod
from workerlab.operator.status import status_patch
from workerlab.operator.templates import build_pod, template_hash

V1 = WorkerImage("registry.example:5000/workerlab/worker:1.0", "IfNotPresent", ("regcred",))
V2 = WorkerImage("registry.example:5000/workerlab/worker:1.1", "IfNotPresent", ("regcred",))
PINNED = "registry.example:5000/team/worker:7"


# -- the setting ---------------------------------------------------------------------------------


def test_nothing_configured_is_the_fallback_image():
    assert default_worker_image(None, None) == WorkerImage(FALLBACK_IMAGE, "IfNotPresent", ())
    assert default_worker_image("  ", "", ["", " "]) == WorkerImage()


def test_a_configured_default_is_kept_trimmed_with_unique_secrets():
    image = default_worker_image(
        " ghcr.io/org/worker@sha256:" + "a" * 64 + "\n",
        "Always",
        [
            "regcred",
            " other ",
            "regcred",
        ],
    )
    assert image.reference == "ghcr.io/org/worker@sha256:" + "a" * 64
    assert (image.pull_policy, image.pull_secrets) == ("Always", ("regcred", "other"))


@pytest.mark.parametrize(
    ("reference", "policy", "secrets", "setting"),
    [
        ("Worker:Latest", None, (), "reference"),
        ("worker:", None, (), "reference"),
        ("worker:dev\nx", None, (), "reference"),  # `$` alone would accept a trailing line
        ("worker:1", "always", (), "pull_policy"),
        ("worker:1", "Sometimes", (), "pull_policy"),
        ("worker:1", None, ["Reg_Cred"], "pull_secrets"),
    ],
)
def test_a_bad_setting_names_itself(reference, policy, secrets, setting):
    with pytest.raises(InvalidSetting) as caught:
        default_worker_image(reference, policy, secrets)
    assert caught.value.setting == setting and "\n" not in str(caught.value)


def test_spec_image_wins_without_the_defaults_pull_secrets():
    assert resolve(PINNED, None, V1) == WorkerImage(PINNED, "IfNotPresent", ())
    assert resolve(PINNED, "Always", V1) == WorkerImage(PINNED, "Always", ())
    assert resolve(None, None, V1) == V1
    # An explicit policy is never ignored, also with the default image.
    assert resolve(None, "Never", V1) == replace(V1, pull_policy="Never")


# -- flags and env -------------------------------------------------------------------------------


def test_env_configures_the_default_and_flags_win():
    env = {
        ENV_WORKER_IMAGE: "reg.example/w:2",
        ENV_WORKER_IMAGE_PULL_POLICY: "Always",
        ENV_WORKER_IMAGE_PULL_SECRETS: "a,b,",
    }
    image, warning = worker_image(parse_args([], env))
    assert image == WorkerImage("reg.example/w:2", "Always", ("a", "b")) and warning is None
    args = parse_args(
        [
            "--worker-image=reg.example/w:3",
            "--worker-image-pull-policy=Never",
            "--worker-image-pull-secret=c",
            "--worker-image-pull-secret=d",
        ],
        env,
    )
    assert worker_image(args)[0] == WorkerImage("reg.example/w:3", "Never", ("c", "d"))


def test_unconfigured_default_runs_the_fallback_with_a_warning():
    image, warning = worker_image(parse_args([], {}))
    assert image == WorkerImage(FALLBACK_IMAGE)
    assert warning and FALLBACK_IMAGE in warning and ENV_WORKER_IMAGE in warning


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        ([], {ENV_WORKER_IMAGE: "Not An Image"}, "--worker-image (or WORKERLAB_WORKER_IMAGE)"),
        (["--worker-image-pull-policy", "Sometimes"], {}, "--worker-image-pull-policy"),
        ([], {ENV_WORKER_IMAGE_PULL_SECRETS: "ok,NOT_OK"}, ENV_WORKER_IMAGE_PULL_SECRETS),
    ],
)
def test_main_refuses_a_bad_setting_with_one_line_before_any_cluster_call(
    argv, env, named, monkeypatch, capsys
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(
        "workerlab.operator.__main__.preflight",
        lambda args: pytest.fail("the settings are checked before the cluster"),
    )
    assert main(["--namespace", "workerlab", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("workerlab operator: bad ") and named in err
    assert err.count("\n") == 1 and "Traceback" not in err


# -- the pure core -------------------------------------------------------------------------------


def test_pods_of_the_default_image_carry_its_policy_and_pull_secrets():
    spec = build_pod(make_cluster(default_image=V1))["spec"]
    assert spec["containers"][0]["image"] == V1.reference
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    pinned = build_pod(make_cluster(default_image=V1, image=PINNED))["spec"]
    assert pinned["containers"][0]["image"] == PINNED
    assert pinned["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "imagePullSecrets" not in pinned


def test_from_body_carries_the_default_into_the_model():
    body = {"metadata": {"name": "demo", "namespace": "ns"}, "spec": {}}
    assert WorkerCluster.from_body(body, V2).image == V2
    assert WorkerCluster.from_body(body).image == WorkerImage(FALLBACK_IMAGE)


def test_a_new_operator_default_rolls_the_clusters_that_follow_it():
    before = make_cluster(replicas=2, default_image=V1)
    pods = [make_pod(before), make_pod(before)]
    settled = plan(before, pods, T0)
    assert settled.actions == [] and settled.status["image"] == V1.reference

    after = replace(before, default_image=V2, status=settled.status)
    assert template_hash(after) != template_hash(before)
    rolling = plan(after, pods, T0)
    assert rolling.creates and {a.reason for a in rolling.creates} == {"RollingUpdate"}
    assert rolling.status["image"] == V2.reference  # the new template's, mid-rollout
    assert status_patch(settled.status, rolling.status)["image"] == V2.reference

    world = World(after, pods)
    for _ in range(30):
        if not world.step().actions and world.cluster.status["phase"] == "Ready":
            break
    live = [p for p in world.pods if not p.terminating]
    assert len(live) == 2 and all(p.template_hash == template_hash(after) for p in live)


def test_a_new_operator_default_leaves_pinned_clusters_alone():
    before = make_cluster(replicas=2, image=PINNED, default_image=V1)
    pods = [make_pod(before), make_pod(before)]
    settled = plan(before, pods, T0)
    after = replace(before, default_image=V2, status=settled.status)
    assert template_hash(after) == template_hash(before)
    again = plan(after, pods, T0)
    assert again.actions == [] and again.status["image"] == PINNED
    assert status_patch(settled.status, again.status) is None  # no write


def test_status_image_is_stable_so_an_unchanged_world_writes_nothing():
    wc = make_cluster(replicas=1, default_image=V1)
    pods = [make_pod(wc)]
    first = plan(wc, pods, T0)
    second = plan(replace(wc, status=first.status), pods, T0)
    assert second.status["image"] == V1.reference
    assert status_patch(first.status, second.status) is None
