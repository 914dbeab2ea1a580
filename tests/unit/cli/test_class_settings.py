"""Class settings: the quantity grammar, the flags, the profile file, precedence, and every
validation error's text (the line `workerlab class add` shows)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from workerlab.cli import class_settings as cs
from workerlab.cli.class_manifests import learner_objects
from workerlab.cli.class_quantities import parse_quantity, quantity_problem, quota_key_problem
from workerlab.common.errors import WorkerlabError

NOT_A_QUANTITY = "is not a Kubernetes quantity (like 12, 500m, 2Gi)"


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(WorkerlabError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


# --- quantities -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("0", 0),
        ("500m", Fraction(1, 2)),
        ("2Gi", 2 * 1024**3),
        ("1Ki", 1024),
        ("1.5Gi", 3 * 1024**3 // 2),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("5.", 5),
        ("1k", 1000),
        ("1M", 10**6),
        ("1E", 10**18),
        ("1Ei", 2**60),
        ("100n", Fraction(1, 10**7)),
        ("3u", Fraction(3, 10**6)),
        ("1e3", 1000),
        ("1E3", 1000),
        ("25e-1", Fraction(5, 2)),
        ("+1", 1),
        ("-1", -1),
    ],
)
def test_quantities_parse_exactly(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "twelve",
        "12x",
        "1e",
        "1 Gi",
        " 1",
        "1GB",
        "1gi",
        "1K",
        ".",
        "-",
        "0x10",
        "1e1000",
        "1..2",
    ],
)
def test_non_quantities_are_refused(bad):
    with pytest.raises(ValueError):
        parse_quantity(bad)


def test_quantity_problems():
    assert quantity_problem("2Gi") is None and quantity_problem(12) is None
    assert quantity_problem("twelve") == f"'twelve' {NOT_A_QUANTITY}"
    assert quantity_problem(True) == f"'True' {NOT_A_QUANTITY}"
    assert quantity_problem(None) == "no value (a Kubernetes quantity, like 12, 500m, 2Gi)"
    assert quantity_problem("-1") == "'-1' is negative: quotas and limits are at least 0"
    assert (
        quantity_problem("1.5", counted=True) == "'1.5' is not a whole number (it counts objects)"
    )
    assert quantity_problem("2k", counted=True) is None


@pytest.mark.parametrize(
    "key",
    [
        "pods",
        "requests.cpu",
        "limits.memory",
        "count/deployments.apps",
        "count/workerclusters.workerlab.dev",
        "requests.nvidia.com/gpu",
        "hugepages-2Mi",
        "requests.ephemeral-storage",
    ],
)
def test_quota_resource_names(key):
    assert quota_key_problem(key) is None


def test_bad_quota_resource_names_say_why():
    assert quota_key_problem("pod") == (
        "'pod' is not a ResourceQuota resource, did you mean 'pods'? "
        "(like pods, requests.cpu, limits.memory, count/deployments.apps)"
    )
    for bad in ("Pods!", "-pods", "a/b/c", "count/", "requests cpu"):
        assert "is not a ResourceQuota resource" in str(quota_key_problem(bad))


# --- flags ----------------------------------------------------------------------------------
def test_quota_flag_is_comma_separated_and_repeatable_last_wins():
    layer = cs.quota_layer(["pods=12,requests.cpu=2", "pods=14", " secrets = 5 ,"])
    assert layer is not None
    assert layer.quota == {"pods": "14", "requests.cpu": "2", "secrets": "5"}
    assert layer.source == "--quota pods=12,requests.cpu=2,pods=14,secrets = 5"
    assert cs.quota_layer([]) is None


def test_quota_flag_errors():
    assert error_of(cs.quota_layer, ["pods=twelve"]) == (
        f"--quota pods=twelve: 'twelve' {NOT_A_QUANTITY}"
    )
    assert error_of(cs.quota_layer, ["pods"]) == "--quota pods: expected KEY=VALUE, like pods=12"
    assert error_of(cs.quota_layer, ["=3"]) == "--quota =3: expected KEY=VALUE, like pods=12"
    assert error_of(cs.quota_layer, ["pods=1.5"]) == (
        "--quota pods=1.5: '1.5' is not a whole number (it counts objects)"
    )
    # every problem at once
    assert error_of(cs.quota_layer, ["pods=x,requests.cpu=-1"]) == (
        f"--quota pods=x: 'x' {NOT_A_QUANTITY}; "
        "--quota requests.cpu=-1: '-1' is negative: quotas and limits are at least 0"
    )


def test_limit_range_flag():
    layer = cs.limit_range_layer(["default.cpu=500m,max.memory=2Gi", "min.ephemeral-storage=1Mi"])
    assert layer is not None
    assert layer.limit_range == {
        "default": {"cpu": "500m"},
        "max": {"memory": "2Gi"},
        "min": {"ephemeral-storage": "1Mi"},
    }
    assert cs.limit_range_layer([""]) is None


def test_limit_range_flag_errors():
    assert error_of(cs.limit_range_layer, ["maximum.cpu=2"]) == (
        "--limit-range maximum.cpu=2: unknown section 'maximum', did you mean 'max'? "
        "(one of min, defaultRequest, default, max)"
    )
    assert error_of(cs.limit_range_layer, ["max.gpus=2"]) == (
        "--limit-range max.gpus=2: unknown resource 'gpus' (one of cpu, memory, ephemeral-storage)"
    )
    assert error_of(cs.limit_range_layer, ["cpu=2"]) == (
        "--limit-range cpu=2: 'cpu' is not SECTION.RESOURCE, like default.cpu or max.memory "
        "(sections: min, defaultRequest, default, max)"
    )
    assert error_of(cs.limit_range_layer, ["max.cpu=lots"]) == (
        f"--limit-range max.cpu=lots: 'lots' {NOT_A_QUANTITY}"
    )


# --- profiles -------------------------------------------------------------------------------
PROFILE = """\
quota:
  pods: "12"
  requests.cpu: 2
limitRange:
  default: {cpu: 500m, memory: 256Mi}
  max: {cpu: "3"}
"""


def write(tmp_path: Path, text: str, name: str = "class.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_profile_file(tmp_path):
    layer = cs.file_layer(write(tmp_path, PROFILE))
    assert layer.quota == {"pods": "12", "requests.cpu": "2"}
    assert layer.limit_range == {"default": {"cpu": "500m", "memory": "256Mi"}, "max": {"cpu": "3"}}
    assert layer.source == f"--profile {tmp_path / 'class.yaml'}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "quotas: {pods: 1}\n",
            "{where}: unknown key 'quotas', did you mean 'quota'? (allowed: quota, limitRange)",
        ),
        ("quota: {pods: twelve}\n", f"{{where}}: quota.pods: 'twelve' {NOT_A_QUANTITY}"),
        (
            "quota: [pods]\n",
            '{where}: quota must be a mapping of resource: quantity, like pods: "12"',
        ),
        (
            "limitRange: {max: 2}\n",
            '{where}: limitRange.max must be a mapping of resource: quantity, like {{cpu: "2"}}',
        ),
        (
            "limitRange: 2\n",
            "{where}: limitRange must be a mapping of section: {{resource: quantity}}, "
            'like max: {{cpu: "2"}}',
        ),
        (
            "limitRange: {type: Container}\n",
            "{where}: limitRange.type: unknown section 'type' "
            "(one of min, defaultRequest, default, max)",
        ),
        (
            "limitRange: {max: {gpu: 1, cpu: x}}\n",
            "{where}: limitRange.max.gpu: unknown resource 'gpu', did you mean 'cpu'? "
            "(one of cpu, memory, ephemeral-storage); "
            f"{{where}}: limitRange.max.cpu: 'x' {NOT_A_QUANTITY}",
        ),
        ("- pods\n", "{where} is not a YAML mapping with the keys quota and limitRange"),
        ("", "{where} is not a YAML mapping with the keys quota and limitRange"),
        (
            "quota: [1, 2\n",
            "{where} is not valid YAML: expected ',' or ']', but got '<stream end>'",
        ),
    ],
    ids=lambda v: (v.splitlines() or ["empty"])[0][:30] if isinstance(v, str) else "",
)
def test_profile_errors_name_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    expected = message.format(where=f"--profile {path}")
    assert error_of(cs.file_layer, path).startswith(expected)


def test_missing_or_unreadable_profile(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert error_of(cs.file_layer, missing) == f"--profile {missing}: no such file"
    assert (
        error_of(cs.file_layer, tmp_path) == f"--profile {tmp_path}: cannot read it: Is a directory"
    )
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert error_of(cs.file_layer, binary).startswith(f"--profile {binary}: cannot read it:")


def test_local_layers_keep_order_and_report_every_option(tmp_path):
    path = write(tmp_path, PROFILE)
    layers = cs.local_layers(path, ["pods=14"], ["max.cpu=4"])
    assert [layer.source.split()[0] for layer in layers] == [
        "--profile",
        "--quota",
        "--limit-range",
    ]
    assert cs.local_layers(None) == []
    message = error_of(cs.local_layers, tmp_path / "x.yaml", ["pods=x"], ["max.cpu=y"])
    assert message == (
        f"--profile {tmp_path / 'x.yaml'}: no such file; "
        f"--quota pods=x: 'x' {NOT_A_QUANTITY}; --limit-range max.cpu=y: 'y' {NOT_A_QUANTITY}"
    )


# --- precedence and the merged result ---------------------------------------------------------
def layer(source: str, quota=None, limits=None) -> cs.Layer:
    return cs.Layer(source, quota or {}, limits or {})


def test_built_in_defaults_alone():
    settings = cs.resolve(None)
    assert settings.quota == cs.QUOTA_HARD
    assert settings.limit_range_item() == {"type": "Container", **cs.LIMIT_RANGE}
    assert settings.describe() == "quota: built-in defaults; limit range: built-in defaults"


def test_precedence_lowest_first_key_by_key():
    cluster = layer("cluster x", {"pods": "10", "secrets": "9"}, {"max": {"cpu": "3"}})
    profile = layer("--profile p", {"pods": "11"}, {"max": {"memory": "3Gi"}})
    quota = layer("--quota pods=12", {"pods": "12"})
    limits = layer("--limit-range max.cpu=4", limits={"max": {"cpu": "4"}})
    settings = cs.merge([cs.built_in_layer(), cluster, profile, quota, limits])
    assert settings.quota["pods"] == "12"  # the flag beats the profile beats the cluster
    assert settings.quota["secrets"] == "9"  # the cluster beats the built-in defaults
    assert settings.quota["configmaps"] == cs.QUOTA_HARD["configmaps"]  # untouched: built-in
    item = settings.limit_range_item()
    assert item["max"] == {"cpu": "4", "memory": "3Gi"}  # merged per section, key by key
    assert item["default"] == cs.LIMIT_RANGE["default"]
    assert settings.describe() == (
        "quota: built-in defaults + cluster x + --profile p + --quota pods=12; "
        "limit range: built-in defaults + cluster x + --profile p + --limit-range max.cpu=4"
    )


def test_a_layer_that_sets_nothing_is_not_named():
    settings = cs.merge(
        [cs.built_in_layer(), layer("cluster x"), layer("--quota a", {"pods": "3"})]
    )
    assert settings.describe() == (
        "quota: built-in defaults + --quota a; limit range: built-in defaults"
    )


def test_max_below_default_request_is_refused_naming_the_layers():
    with pytest.raises(WorkerlabError) as caught:
        cs.merge(
            [
                cs.built_in_layer(),
                layer("--limit-range max.cpu=10m", limits={"max": {"cpu": "10m"}}),
            ]
        )
    assert str(caught.value) == (
        "limit range: max.cpu 10m is below defaultRequest.cpu 50m; "
        "max.cpu 10m is below default.cpu 500m: nothing was created"
    )
    assert "built-in defaults + --limit-range max.cpu=10m" in str(caught.value.hint)


def test_every_order_the_api_server_checks():
    limits = {
        "min": {"memory": "1Gi"},
        "defaultRequest": {"memory": "64Mi", "cpu": "1"},
        "default": {"cpu": "500m"},
    }
    assert cs.order_problems(limits) == [
        "default.cpu 500m is below defaultRequest.cpu 1",
        "defaultRequest.memory 64Mi is below min.memory 1Gi",
    ]
    assert cs.order_problems(cs.LIMIT_RANGE) == []
    # equal is fine, and quantities compare by value, not by text
    assert cs.order_problems({"defaultRequest": {"cpu": "0.5"}, "max": {"cpu": "500m"}}) == []


def test_the_manifests_carry_the_settings():
    settings = cs.merge([cs.built_in_layer(), layer("q", {"pods": "12"}, {"min": {"cpu": "10m"}})])
    kinds = {o["kind"]: o for o in learner_objects("ada", settings)}
    assert kinds["ResourceQuota"]["spec"]["hard"]["pods"] == "12"
    (item,) = kinds["LimitRange"]["spec"]["limits"]
    assert item["min"] == {"cpu": "10m"} and item["type"] == "Container"
    # without settings: the built-in defaults
    default = {o["kind"]: o for o in learner_objects("ada")}
    assert default["ResourceQuota"]["spec"]["hard"] == cs.QUOTA_HARD
