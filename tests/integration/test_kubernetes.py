"""deploy/kubernetes: renders with kustomize, validates, and mirrors the repository's sources.

Core objects (Deployment, StatefulSet, Service, ConfigMap) are validated offline
with kubernetes-validate against Kubernetes 1.32 in strict mode. No package in
the test extras ships the Prometheus Operator's CRD schemas, so ServiceMonitor
and PrometheusRule are checked against OPERATOR_SCHEMAS below: the required
fields and types of the CRD fields these objects use (prometheus-operator,
monitoring.coreos.com/v1), stricter than the CRD in one way: an unknown field
is an error, where the API server would silently prune it. The rules inside
each PrometheusRule also go through `promtool check rules`.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.conftest import ROOT, promtool, require_tool

K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
SHARDED = K8S / "overlays" / "sharded"
KPS = K8S / "overlays" / "kube-prometheus-stack"
GENERATOR = ROOT / "scripts" / "gen-k8s-manifests"
KUBERNETES_VERSION = "1.32"

# -- Prometheus Operator objects: required fields and types (see module docstring) --
_DURATION = {
    "type": "string",
    "pattern": (
        r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?"
        r"(([0-9]+)ms)?)$"
    ),
}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "additionalProperties": False,
}
_LABEL_SELECTOR = {
    "type": "object",
    "properties": {"matchLabels": _STRING_MAP, "matchExpressions": {"type": "array"}},
    "additionalProperties": False,
    "minProperties": 1,
}
_RELABEL = {
    "type": "object",
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "separator": {"type": "string"},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "modulus": {"type": "integer"},
        "replacement": {"type": "string"},
        "action": {
            "enum": [
                *(
                    a
                    for name in ("replace", "keep", "drop", "hashmod", "labelmap")
                    for a in (name, name.capitalize())
                ),
                *("labeldrop", "LabelDrop", "labelkeep", "LabelKeep"),
                *("lowercase", "Lowercase", "uppercase", "Uppercase"),
                *("keepequal", "KeepEqual", "dropequal", "DropEqual"),
            ]
        },
    },
    "additionalProperties": False,
}
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": {"type": "object"},
                "jobLabel": {"type": "string"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {"type": "array", "items": _RELABEL},
                            "metricRelabelings": {"type": "array", "items": _RELABEL},
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
_RULE = {
    "type": "object",
    "required": ["expr"],
    "properties": {
        "record": {"type": "string", "minLength": 1},
        "alert": {"type": "string", "minLength": 1},
        "expr": {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]},
        "for": _DURATION,
        "keep_firing_for": {**_DURATION, "minLength": 1},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "additionalProperties": False,
    # Exactly one of record and alert.
    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
}
PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _DURATION,
                            "query_offset": _DURATION,
                            "limit": {"type": "integer"},
                            "labels": _STRING_MAP,
                            "rules": {"type": "array", "items": _RULE},
                        },
                        "additionalProperties": False,
                    },
                }
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
OPERATOR_SCHEMAS = {
    "ServiceMonitor": SERVICE_MONITOR_SCHEMA,
    "PrometheusRule": PROMETHEUS_RULE_SCHEMA,
}


def _tool(name: str) -> str:
    return require_tool(
        name, "scripts/install-system-deps or the test extras", skip_outside_ci=True
    )


@cache
def _render(path: Path) -> str:
    proc = subprocess.run(
        [_tool("kubectl"), "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def render(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(_render(path)) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = by_kind(docs, kind)
    return doc


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (c,) = workload["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = c
    return result


def _flag(args: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return value


RENDERS = {"top": K8S, "base": BASE, "sharded": SHARDED, "kube-prometheus-stack": KPS}


@pytest.fixture(params=sorted(RENDERS), scope="module")
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(RENDERS[request.param])


def test_top_level_is_the_base() -> None:
    assert _render(K8S) == _render(BASE)


def test_base_has_the_expected_objects() -> None:
    docs = render(BASE)
    kinds = sorted(doc["kind"] for doc in docs)
    rule_files = len(by_kind(docs, "PrometheusRule"))
    dashboards = len(list((ROOT / "grafana" / "dashboards").glob("*.json")))
    assert rule_files >= 1
    assert kinds == sorted(
        ["ConfigMap"] * (1 + dashboards)
        + ["Deployment", "Service", "ServiceMonitor", "ServiceAccount"]
        + ["PodDisruptionBudget", "NetworkPolicy"]
        + ["PrometheusRule"] * rule_files
    )


def test_core_objects_validate(rendered: list[dict[str, Any]]) -> None:
    core = [doc for doc in rendered if doc["kind"] not in OPERATOR_SCHEMAS]
    assert core
    for doc in core:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_core_validation_rejects_a_typo() -> None:
    deployment = copy.deepcopy(one(render(BASE), "Deployment"))
    container(deployment)["readOnlyRootFileSystem"] = True  # wrong case
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_operator_objects_match_the_documented_fields(rendered: list[dict[str, Any]]) -> None:
    checked = 0
    for doc in rendered:
        if doc["kind"] in OPERATOR_SCHEMAS:
            jsonschema.validate(doc, OPERATOR_SCHEMAS[doc["kind"]])
            checked += 1
    assert checked >= 2


def test_operator_schema_rejects_a_typo() -> None:
    monitor = copy.deepcopy(one(render(BASE), "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["scrapeInterval"] = "60s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    monitor = copy.deepcopy(one(render(BASE), "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["relabelings"][0]["target_label"] = "job"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    rule = copy.deepcopy(by_kind(render(BASE), "PrometheusRule")[0])
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rule, PROMETHEUS_RULE_SCHEMA)


def test_prometheus_rules_pass_promtool(tmp_path: Path) -> None:
    for rule in by_kind(render(BASE), "PrometheusRule"):
        path = tmp_path / f"{rule['metadata']['name']}.yml"
        path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        proc = promtool("check", "rules", str(path))
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_service_monitor_scrapes_the_service(rendered: list[dict[str, Any]]) -> None:
    monitor, service = one(rendered, "ServiceMonitor"), one(rendered, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http-metrics"]
    assert "http-metrics" in port_names
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    (workload,) = [d for d in rendered if d["kind"] in {"Deployment", "StatefulSet"}]
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {p["name"]: p["containerPort"] for p in container(workload)["ports"]}
    (port,) = service["spec"]["ports"]
    assert container_ports[port["targetPort"]] == 9863 == port["port"]


def _dockerfile_uid() -> int:
    (user,) = re.findall(r"^USER (\d+):\d+$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    return int(user)


def test_workload_is_hardened_and_probed(rendered: list[dict[str, Any]]) -> None:
    (workload,) = [d for d in rendered if d["kind"] in {"Deployment", "StatefulSet"}]
    pod = workload["spec"]["template"]["spec"]
    c = container(workload)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == _dockerfile_uid()
    assert pod["automountServiceAccountToken"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert c["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    for kind in ("requests", "limits"):
        assert set(c["resources"][kind]) == {"cpu", "memory"}


def _mounts(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mountPath -> the volume behind it."""
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in container(workload)["volumeMounts"]}


def _exporter_config(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    (workload,) = [d for d in docs if d["kind"] in {"Deployment", "StatefulSet"}]
    config_file = _flag(container(workload)["args"], "config.file")
    volume = _mounts(workload)[str(Path(config_file).parent)]
    configmaps = {c["metadata"]["name"]: c for c in by_kind(docs, "ConfigMap")}
    text = configmaps[volume["configMap"]["name"]]["data"][Path(config_file).name]
    return yaml.safe_load(text), text


def test_config_from_configmap_token_from_secret(rendered: list[dict[str, Any]]) -> None:
    config, _ = _exporter_config(rendered)
    (workload,) = [d for d in rendered if d["kind"] in {"Deployment", "StatefulSet"}]
    secret_mounts = {
        path: volume["secret"]["secretName"]
        for path, volume in _mounts(workload).items()
        if "secret" in volume
    }
    assert list(secret_mounts.values()) == ["pinpointe-exporter-token"]
    (secret_dir,) = secret_mounts
    assert config["accounts"]
    for account in config["accounts"]:
        assert "usertoken" not in account, "tokens belong in the Secret"
        assert Path(account["usertoken_file"]).parent == Path(secret_dir)
    # A fixed ConfigMap name: a config change is applied in place and reloaded by the
    # exporter itself, no rollout (a broken change is refused, never a crash loop).
    (volume,) = [v for v in _mounts(workload).values() if "configMap" in v]
    assert volume["configMap"]["name"] == "pinpointe-exporter-config"
    args = container(workload)["args"]
    assert any(re.fullmatch(r"--config\.auto-reload-interval=\d+[smh]", a) for a in args)


def test_shipped_config_passes_the_exporters_config_check(tmp_path: Path) -> None:
    pytest.importorskip("exporter.cli", reason="core exporter not there yet")
    config, text = _exporter_config(render(BASE))
    secret_dir = Path(config["accounts"][0]["usertoken_file"]).parent
    local = tmp_path / "secrets"
    local.mkdir()
    for account in config["accounts"]:
        (local / Path(account["usertoken_file"]).name).write_text("k8s-test-token-0123\n")
    path = tmp_path / "config.yaml"
    path.write_text(text.replace(str(secret_dir), str(local)))

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "exporter", "--config.check", f"--config.file={path}"],
            capture_output=True,
            text=True,
            timeout=60,
        )

    # As shipped, the user name is a placeholder that --config.check refuses ...
    unedited = check()
    assert unedited.returncode == 2
    assert "accounts[0].username: looks like a placeholder" in unedited.stderr
    # ... and once the user has put theirs in, the configuration passes.
    path.write_text(path.read_text().replace("replace-with-your-username", "DRBrel2"))
    proc = check()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "k8s-test-token-0123" not in proc.stdout + proc.stderr
    for account in config["accounts"]:
        assert account["name"] in proc.stdout


def test_image_is_explicit_and_tagged_with_the_package_version(
    rendered: list[dict[str, Any]],
) -> None:
    version = re.search(
        r'^__version__ = "([^"]+)"', (ROOT / "exporter" / "__init__.py").read_text(), re.M
    )
    assert version
    (workload,) = [d for d in rendered if d["kind"] in {"Deployment", "StatefulSet"}]
    # A registry host, never a bare name that a runtime would look up on Docker Hub;
    # the placeholder is a reserved name (RFC 2606) that can never resolve.
    assert container(workload)["image"] == (
        f"registry.example.invalid/pinpointe-exporter:{version.group(1)}"
    )


# -- generated objects mirror the sources ------------------------------------------


def _generator(*args: str, root: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_generated_objects_are_up_to_date() -> None:
    proc = _generator("--check")
    assert proc.returncode == 0, proc.stderr


def _rule_sources() -> list[Path]:
    sources = []
    for path in sorted((ROOT / "prometheus").glob("*.yml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "groups" in data:
            sources.append(path)
    return sources


def test_prometheus_rules_equal_the_rule_files() -> None:
    sources = _rule_sources()
    assert {p.name for p in sources} >= {"rules.yml", "alerts.yml"}
    rules = by_kind(render(BASE), "PrometheusRule")
    generated = {r["metadata"]["annotations"]["pinpointe-exporter/source"]: r for r in rules}
    assert sorted(generated) == [p.relative_to(ROOT).as_posix() for p in sources]
    for path in sources:
        rule = generated[path.relative_to(ROOT).as_posix()]
        assert rule["spec"]["groups"] == yaml.safe_load(path.read_text())["groups"]


def test_dashboard_configmaps_equal_the_dashboards() -> None:
    sources = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
    assert sources, "grafana/dashboards/ has no dashboards"
    maps = [
        c
        for c in by_kind(render(BASE), "ConfigMap")
        if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    assert len(maps) == len(sources)
    by_file = {name: (cm, text) for cm in maps for name, text in cm["data"].items()}
    assert sorted(by_file) == [p.name for p in sources]
    for path in sources:
        cm, text = by_file[path.name]
        assert text == path.read_text(), f"{path.name} differs from its ConfigMap"
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        # `kubectl apply` (client side) stores the object in an annotation, and
        # annotations are limited to 256 KiB in all.
        size = len(json.dumps(cm).encode())
        assert size < 250_000, f"{path.name}: {size} bytes, too big for kubectl apply"


def test_check_fails_when_a_source_changes(tmp_path: Path) -> None:
    for rel in ("prometheus", "grafana/dashboards"):
        shutil.copytree(ROOT / rel, tmp_path / rel)
    assert _generator("--check", root=tmp_path).returncode == 1, "nothing generated yet"
    assert _generator(root=tmp_path).returncode == 0
    assert _generator("--check", root=tmp_path).returncode == 0
    rules = _rule_sources()[0]
    copy_of_rules = tmp_path / rules.relative_to(ROOT)
    data = yaml.safe_load(copy_of_rules.read_text())
    data["groups"][0]["name"] += "-renamed"
    copy_of_rules.write_text(yaml.safe_dump(data))
    proc = _generator("--check", root=tmp_path)
    assert proc.returncode == 1
    assert "prometheusrules.yaml" in proc.stderr
    # Regenerating brings it back in line.
    assert _generator(root=tmp_path).returncode == 0
    assert _generator("--check", root=tmp_path).returncode == 0


# -- the sharded overlay -----------------------------------------------------------


def test_sharded_overlay_replaces_the_deployment() -> None:
    docs = render(SHARDED)
    assert by_kind(docs, "Deployment") == []
    statefulset, service = one(docs, "StatefulSet"), one(docs, "Service")
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    # Everything else of the base is there unchanged.
    base = render(BASE)
    others = [d for d in base if d["kind"] not in {"Deployment", "Service", "ServiceMonitor"}]
    assert all(d in docs for d in others)
    # The ServiceMonitor differs only in where `instance` comes from.
    monitor, base_monitor = one(docs, "ServiceMonitor"), copy.deepcopy(one(base, "ServiceMonitor"))
    base_monitor["spec"]["endpoints"][0]["relabelings"][1] = {
        "action": "replace",
        "sourceLabels": ["__meta_kubernetes_pod_name"],
        "targetLabel": "instance",
    }
    assert monitor == base_monitor


def test_shard_count_comes_from_replicas_and_index_from_the_pod() -> None:
    statefulset = one(render(SHARDED), "StatefulSet")
    c = container(statefulset)
    replicas = statefulset["spec"]["replicas"]
    assert replicas >= 2
    assert _flag(c["args"], "shard") == "$(POD_INDEX)/$(SHARD_COUNT)"
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']"
    )
    # A string, as the API wants for env values, equal to the replicas.
    assert env["SHARD_COUNT"]["value"] == str(replicas)
    # statefulset.yaml itself does not repeat the count: kustomize copies it.
    source = yaml.safe_load((SHARDED / "statefulset.yaml").read_text())
    source_env = {e["name"]: e for e in container(source)["env"]}
    assert source_env["SHARD_COUNT"]["value"] == "0"
    assert _flag(container(source)["args"], "shard") == "$(POD_INDEX)/$(SHARD_COUNT)"


def _expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in container args (unknown names stay as written)."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), arg)


def pod_shards(statefulset: dict[str, Any]) -> list[str]:
    """The --shard each pod runs with, $(VAR)s expanded as the kubelet does."""
    c = container(statefulset)
    plain = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    return [
        _flag([_expand(a, {**plain, "POD_INDEX": str(i)}) for a in c["args"]], "shard")
        for i in range(statefulset["spec"]["replicas"])
    ]


def test_each_pod_gets_its_own_shard() -> None:
    statefulset = one(render(SHARDED), "StatefulSet")
    replicas = statefulset["spec"]["replicas"]
    assert pod_shards(statefulset) == [f"{i}/{replicas}" for i in range(replicas)]


def readme_shard_overlay() -> dict[str, Any]:
    """The deploy chapter's example overlay that changes the shard count."""
    readme = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    match = re.search(r"```yaml\n# my-shards/kustomization.yaml\n(.*?)```", readme, re.S)
    assert match, "docs/deploy.md: the my-shards/kustomization.yaml example is missing"
    data: dict[str, Any] = yaml.safe_load(match.group(1))
    return data


@pytest.mark.parametrize("replicas", [1, 2, 5, 12])
def test_any_replica_count_gives_consistent_shards(replicas: int, tmp_path: Path) -> None:
    # The one place: statefulset.yaml's replicas, in a copy of the overlay ...
    overlay = tmp_path / "sharded"
    shutil.copytree(SHARDED, overlay)
    (tmp_path / "base").symlink_to(BASE)
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    kustomization["resources"] = [
        "../base" if r == "../../base" else r for r in kustomization["resources"]
    ]
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    sts = overlay / "statefulset.yaml"
    sts.write_text(sts.read_text().replace("replicas: 3\n", f"replicas: {replicas}\n", 1))
    rendered = one(render(overlay), "StatefulSet")
    assert rendered["spec"]["replicas"] == replicas
    assert pod_shards(rendered) == [f"{i}/{replicas}" for i in range(replicas)]
    # ... and an overlay of one's own, as the deploy chapter shows it.
    mine = tmp_path / "my-shards"
    mine.mkdir()
    example = readme_shard_overlay()
    example["resources"] = [os.path.relpath(SHARDED, mine)]
    (example_replicas,) = example["replicas"]
    example_replicas["count"] = replicas
    (mine / "kustomization.yaml").write_text(yaml.safe_dump(example))
    rendered = one(render(mine), "StatefulSet")
    assert rendered["spec"]["replicas"] == replicas
    assert pod_shards(rendered) == [f"{i}/{replicas}" for i in range(replicas)]


def test_statefulset_pod_matches_the_deployment_pod() -> None:
    # statefulset.yaml repeats the Deployment's pod; only env and --shard may differ.
    deployment = one(render(BASE), "Deployment")
    statefulset = one(render(SHARDED), "StatefulSet")
    dep_pod = copy.deepcopy(deployment["spec"]["template"])
    sts_pod = copy.deepcopy(statefulset["spec"]["template"])
    sts_container = container({"spec": {"template": sts_pod}})
    sts_container.pop("env")
    sts_pod["spec"].pop("topologySpreadConstraints")
    sts_container["args"] = [a for a in sts_container["args"] if not a.startswith("--shard=")]
    assert sts_pod == dep_pod
    assert statefulset["spec"]["selector"] == deployment["spec"]["selector"]


def test_scrape_job_is_the_one_the_alerts_expect() -> None:
    docs = render(BASE)
    expected: set[str] = set()
    for rule in by_kind(docs, "PrometheusRule"):
        for group in rule["spec"]["groups"]:
            for r in group["rules"]:
                expected.update(re.findall(r'job\s*=~?\s*"([^"]+)"', str(r["expr"])))
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    jobs = [
        r["replacement"]
        for r in endpoint.get("relabelings", [])
        if r.get("targetLabel") == "job" and r.get("action", "replace") == "replace"
    ]
    # Without a relabeling, the Prometheus Operator names the job after the Service.
    job = jobs[-1] if jobs else one(docs, "Service")["metadata"]["name"]
    assert expected <= {job}


@pytest.mark.parametrize("target", [K8S, SHARDED], ids=["base", "sharded"])
def test_a_user_overlay_sets_namespace_image_and_config(target: Path, tmp_path: Path) -> None:
    # The customisation the README shows: namespace, image, own config.yaml.
    (tmp_path / "config.yaml").write_text(
        (BASE / "config.yaml").read_text().replace("name: main", "name: acme")
    )
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "monitoring",
        "resources": [os.path.relpath(target, tmp_path)],
        "images": [
            {
                "name": "registry.example.invalid/pinpointe-exporter",
                "newName": "registry.example.com/pinpointe-exporter",
                "newTag": "9.9.9",
            }
        ],
        "configMapGenerator": [
            {"name": "pinpointe-exporter-config", "behavior": "replace", "files": ["config.yaml"]}
        ],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    docs = render(tmp_path)
    assert {d["metadata"].get("namespace") for d in docs} == {"monitoring"}
    (workload,) = [d for d in docs if d["kind"] in {"Deployment", "StatefulSet"}]
    assert container(workload)["image"] == "registry.example.com/pinpointe-exporter:9.9.9"
    config, _ = _exporter_config(docs)
    assert [a["name"] for a in config["accounts"]] == ["acme"]


# -- series identity across pod replacements -----------------------------------------

_GROUP_REF = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _group(groups: tuple[str | None, ...], ref: re.Match[str]) -> str:
    """A ``$1`` or ``${1}`` of a relabelling replacement: that group, or nothing."""
    return groups[int(ref[1] or ref[2])] or ""


def relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str]:
    """Prometheus' relabelling (the actions the manifests use), then its defaults:
    `instance` from `__address__` when unset, `__` labels dropped."""
    labels = dict(labels)
    for rule in rules:
        action = rule.get("action", "replace").lower()
        regex = re.compile(f"^(?:{rule.get('regex', '(.*)')})$")
        if action == "replace":
            value = rule.get("separator", ";").join(
                labels.get(name, "") for name in rule.get("sourceLabels", [])
            )
            match = regex.match(value)
            if match:
                replacement = rule.get("replacement", "$1")
                groups = (match.group(0), *match.groups())
                labels[rule["targetLabel"]] = _GROUP_REF.sub(
                    functools.partial(_group, groups), replacement
                )
        elif action == "labeldrop":
            labels = {k: v for k, v in labels.items() if not regex.match(k)}
        else:
            raise AssertionError(f"relabel action {action} not modelled here")
    labels.setdefault("instance", labels["__address__"])
    return {k: v for k, v in labels.items() if not k.startswith("__") and v != ""}


def operator_target(pod: str, ip: str) -> dict[str, str]:
    """A target's labels as the Prometheus Operator hands them to the user's relabelings."""
    return {
        "__address__": f"{ip}:9863",
        "__meta_kubernetes_pod_name": pod,
        "namespace": "monitoring",
        "service": "pinpointe-exporter",
        "pod": pod,
        "container": "exporter",
        "endpoint": "http-metrics",
        "job": "pinpointe-exporter",
    }


def _series_labels(docs: list[dict[str, Any]], pod: str, ip: str) -> dict[str, str]:
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    return relabel(operator_target(pod, ip), endpoint["relabelings"])


def test_relabel_model_keeps_the_defaults_without_rules() -> None:
    # Without the manifests' rules every new pod is a new series: what they prevent.
    first = relabel(operator_target("pinpointe-exporter-5d8f9-abcde", "10.1.0.7"), [])
    second = relabel(operator_target("pinpointe-exporter-7c4b2-vwxyz", "10.1.3.9"), [])
    assert first["instance"] == "10.1.0.7:9863" and first["pod"] != second["pod"]
    assert first != second


def test_deployment_series_survive_a_new_pod() -> None:
    docs = render(BASE)
    before = _series_labels(docs, "pinpointe-exporter-5d8f9-abcde", "10.1.0.7")
    after = _series_labels(docs, "pinpointe-exporter-7c4b2-vwxyz", "10.1.3.9")
    assert before == after
    assert before == {
        "job": "pinpointe",
        "instance": "pinpointe-exporter",
        "namespace": "monitoring",
        "service": "pinpointe-exporter",
        "container": "exporter",
        "endpoint": "http-metrics",
    }
    # Never two pods at once: the old one stops before the new one starts.
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert one(docs, "Deployment")["spec"]["replicas"] == 1


def test_statefulset_series_follow_the_shard_not_the_pod() -> None:
    docs = render(SHARDED)
    shard0 = _series_labels(docs, "pinpointe-exporter-0", "10.1.0.7")
    replaced = _series_labels(docs, "pinpointe-exporter-0", "10.1.4.2")  # same pod, new IP
    shard1 = _series_labels(docs, "pinpointe-exporter-1", "10.1.0.8")
    assert shard0 == replaced
    assert shard0["instance"] == "pinpointe-exporter-0"
    assert shard1["instance"] == "pinpointe-exporter-1"
    assert "pod" not in shard0
    assert {k: v for k, v in shard0.items() if k != "instance"} == {
        k: v for k, v in shard1.items() if k != "instance"
    }


# -- pod placement, disruption, network, identity --------------------------------------


def test_workload_runs_as_its_own_tokenless_service_account(
    rendered: list[dict[str, Any]],
) -> None:
    account = one(rendered, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    (workload,) = [d for d in rendered if d["kind"] in {"Deployment", "StatefulSet"}]
    pod = workload["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is False


def _selects(selector: dict[str, Any], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return bool(selector["matchLabels"]) and selector["matchLabels"].items() <= labels.items()


def test_disruption_budget_lets_drains_evict_one_pod_at_a_time(
    rendered: list[dict[str, Any]],
) -> None:
    budget = one(rendered, "PodDisruptionBudget")["spec"]
    (workload,) = [d for d in rendered if d["kind"] in {"Deployment", "StatefulSet"}]
    assert _selects(budget["selector"], workload)
    # No spare replicas: minAvailable would block every node drain.
    assert "minAvailable" not in budget
    assert budget["maxUnavailable"] == 1
    assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_network_policy_admits_only_prometheus_and_lets_out_dns_and_https(
    rendered: list[dict[str, Any]],
) -> None:
    policy = one(rendered, "NetworkPolicy")["spec"]
    (workload,) = [d for d in rendered if d["kind"] in {"Deployment", "StatefulSet"}]
    assert _selects(policy["podSelector"], workload)
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "http-metrics", "protocol": "TCP"}]
    (peer,) = ingress["from"]  # one peer: namespace AND pod selector
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    egress_ports = sorted(
        (port["port"], port["protocol"]) for rule in policy["egress"] for port in rule["ports"]
    )
    assert egress_ports == [(53, "TCP"), (53, "UDP"), (443, "TCP")]
    (dns,) = [r for r in policy["egress"] if r["ports"][0]["port"] == 53]
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


def test_shards_spread_over_nodes_without_blocking_scheduling() -> None:
    statefulset = one(render(SHARDED), "StatefulSet")
    constraints = statefulset["spec"]["template"]["spec"]["topologySpreadConstraints"]
    keys = {c["topologyKey"] for c in constraints}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in constraints:
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
        assert constraint["maxSkew"] == 1
        assert _selects(constraint["labelSelector"], statefulset)


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    match = re.fullmatch(r"(\d+)([KMG]i?|k)?", quantity)
    assert match, quantity
    return int(match[1]) * units.get(match[2] or "", 1)


# The hardening of response parsing keeps the exporter's resident memory below this
# with default settings, whatever Pinpointe answers (README: "Memory").
EXPORTER_RSS_BOUND = 512 * 10**6


def test_memory_limit_leaves_room_above_the_exporters_own_bound(
    rendered: list[dict[str, Any]],
) -> None:
    (workload,) = [d for d in rendered if d["kind"] in {"Deployment", "StatefulSet"}]
    resources = container(workload)["resources"]
    limit = _bytes(resources["limits"]["memory"])
    request = _bytes(resources["requests"]["memory"])
    # At least 25% headroom over the bound, so the kernel never OOM-kills an exporter
    # that is doing what its bounds allow; the request is the steady state.
    assert limit >= EXPORTER_RSS_BOUND * 1.25
    assert 64 * 2**20 <= request <= limit / 4


def test_kube_prometheus_stack_overlay_labels_what_the_chart_selects() -> None:
    docs = render(KPS)
    labelled = {
        (d["kind"], d["metadata"]["name"])
        for d in docs
        if d["metadata"].get("labels", {}).get("release") == "kube-prometheus-stack"
    }
    operator_objects = {
        (d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in OPERATOR_SCHEMAS
    }
    assert labelled == operator_objects
    assert {kind for kind, _ in labelled} == {"ServiceMonitor", "PrometheusRule"}
    assert {d["metadata"].get("namespace") for d in docs} == {"monitoring"}
    # Everything else is the base, unchanged but for the namespace.
    base = {(d["kind"], d["metadata"]["name"]) for d in render(BASE)}
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == base
