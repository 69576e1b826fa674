"""deploy/kubernetes under `podman kube play`: the base's Deployment, and the sharded overlay's
StatefulSet with 2 replicas, each pod polling the project's simulator.

The manifests are rendered with kustomize from an overlay the test writes on top of the
repository's (the image built here, a config.yaml pointing at the simulator, the token
Secret's stand-in, a name suffix of the run's own). Where podman 4.3 does not do what
Kubernetes does, the test does it, and says so:

* Secret volumes crash podman 4.3: the overlay mounts the token keys from a ConfigMap, at the
  same path under the same key names.
* podman publishes every containerPort on the host's same port (Kubernetes publishes none):
  the played copy leaves `ports` out, and the probes resolve their named port from the
  rendered manifest.
* podman has no StatefulSet: the test makes the controller's pods (<name>-<ordinal>, labelled
  apps.kubernetes.io/pod-index) and, since podman does not expand $(VAR) in args, the kubelet's
  expansion of them too (POD_INDEX itself reaches the pod through the downward API, as written).
* podman turns httpGet probes into `curl` commands inside the container, which the image does
  not have: the test probes as the kubelet does, from the node to the pod's IP, the named port
  resolved, any status from 200 to 399 a success.

Everything else (image, args, securityContext, volumes, downward API) runs as rendered.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import requests
import yaml

from exporter.collector.sharding import shard_of
from tests.conftest import labels, parse_samples, require_tool, series, wait_for
from tests.integration.engine import (
    ROOT,
    SIMULATOR_TOKEN,
    Engine,
    unique,
)

K8S = ROOT / "deploy" / "kubernetes"
SHARDS = 2
ACCOUNTS = ("main", "acme", "globex", "initech", "umbrella", "hooli")
TIMEOUT = 120.0  # only stops a hung test


def render(directory: Path, kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    kubectl = require_tool("kubectl", "kubectl 1.32", skip_outside_ci=True)
    rendered = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def overlay_for(
    directory: Path, source: Path, kind: str, image: str, api_url: str, accounts: tuple[str, ...]
) -> dict[str, Any]:
    """The test's overlay on ``source``: image, config, the token Secret as a ConfigMap."""
    directory.mkdir()
    config = yaml.safe_load((K8S / "base" / "config.yaml").read_text())
    (shipped,) = config["accounts"]
    config["accounts"] = [
        {
            **shipped,
            "name": name,
            "api_url": api_url,
            "username": "demo",
            "usertoken_file": f"/run/secrets/pinpointe/{name}",
        }
        for name in accounts
    ]
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    for name in accounts:
        (directory / name).write_text(SIMULATOR_TOKEN)
    repository, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    token_volume = {"name": "token", "secret": None, "configMap": {"name": "token-stand-in"}}
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(source, directory)],
        "nameSuffix": "-" + unique("t").split("-")[1],
        "images": [
            {
                "name": "registry.example.invalid/pinpointe-exporter",
                "newName": repository,
                "newTag": tag or "latest",
            }
        ],
        "configMapGenerator": [
            {"name": "pinpointe-exporter-config", "behavior": "replace", "files": ["config.yaml"]},
            {"name": "token-stand-in", "files": list(accounts)},
        ],
        "patches": [
            {
                "target": {"kind": kind, "name": "pinpointe-exporter"},
                "patch": yaml.safe_dump(
                    {
                        "apiVersion": "apps/v1",
                        "kind": kind,
                        "metadata": {"name": "pinpointe-exporter"},
                        "spec": {"template": {"spec": {"volumes": [token_volume]}}},
                    }
                ),
            }
        ],
    }


def generated_config_maps(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The config and the token's stand-in (not the dashboards: podman plays no Grafana)."""
    return [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and "grafana_dashboard" not in d["metadata"].get("labels", {})
    ]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def exporter_container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in pod_spec["containers"] if c["name"] == "exporter"]
    found: dict[str, Any] = container
    return found


def without_ports(doc: dict[str, Any]) -> dict[str, Any]:
    played = copy.deepcopy(doc)
    spec = played["spec"] if played["kind"] == "Pod" else played["spec"]["template"]["spec"]
    for container in spec["containers"]:
        container.pop("ports", None)
    return played


def statefulset_pod(statefulset: dict[str, Any], ordinal: int) -> dict[str, Any]:
    """Pod <ordinal> as the StatefulSet controller makes it, args expanded as the kubelet does."""
    template = copy.deepcopy(statefulset["spec"]["template"])
    pod_labels = {**template["metadata"]["labels"], "apps.kubernetes.io/pod-index": str(ordinal)}
    container = exporter_container(template["spec"])
    env = {}
    for variable in container.get("env", []):
        field = variable.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
        label = re.fullmatch(r"metadata\.labels\['(.+)'\]", field)
        env[variable["name"]] = pod_labels[label[1]] if label else variable["value"]
    container["args"] = [
        re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), arg) for arg in container["args"]
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{statefulset['metadata']['name']}-{ordinal}", "labels": pod_labels},
        "spec": template["spec"],
    }


def play(podman: Engine, net: str, docs: list[dict[str, Any]], path: Path) -> str:
    """podman kube play; the pod's name (the pod and the ConfigMaps' volumes removed at
    cleanup)."""
    path.write_text(yaml.safe_dump_all(docs))
    for config_map in docs[:-1]:
        podman.made("volume", config_map["metadata"]["name"])
    workload = docs[-1]
    name = workload["metadata"]["name"]
    pod = name if workload["kind"] == "Pod" else f"{name}-pod-0"
    podman.made("pod", pod)
    podman.podman("kube", "play", "--network", net, path)
    return pod


class Pod:
    def __init__(self, podman: Engine, name: str, spec: dict[str, Any]) -> None:
        self.podman = podman
        self.name = name
        self.container = f"{name}-exporter"
        self.spec = exporter_container(spec)
        infra = podman.inspect(name, "pod")["InfraContainerID"]
        self.ip = podman.ip(infra)

    def port(self, port: int | str) -> int:
        if isinstance(port, int):
            return port
        (number,) = [p["containerPort"] for p in self.spec["ports"] if p["name"] == port]
        return int(number)

    def probe(self, kind: str) -> bool:
        """The container's ``kind`` probe (httpGet), as the kubelet runs it."""
        get = self.spec[kind]["httpGet"]
        scheme = get.get("scheme", "HTTP").lower()
        url = f"{scheme}://{self.ip}:{self.port(get['port'])}{get['path']}"
        response = requests.get(url, timeout=self.spec[kind]["timeoutSeconds"], verify=False)
        return 200 <= response.status_code < 400

    def probes_pass(self) -> None:
        for kind in ("readinessProbe", "livenessProbe"):
            wait_for(partial(self.probe, kind), timeout=TIMEOUT, what=f"{self.name}'s {kind}")

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = requests.get(f"http://{self.ip}:{self.port('http-metrics')}/metrics", timeout=10)
        return parse_samples(response.text)

    def accounts_up(self) -> dict[str, float]:
        return {dict(k)["account"]: v for k, v in series(self.samples(), "pinpointe_up").items()}

    def wait_polling(self, accounts: set[str]) -> None:
        """Until the pod exports these accounts, each up, and no other."""
        wait_for(
            lambda: self.accounts_up() == dict.fromkeys(accounts, 1.0),
            timeout=TIMEOUT,
            what=f"{self.name} polling {sorted(accounts)}",
        )


def test_base_deployment_passes_its_probes_as_declared_user_with_read_only_root(
    podman: Engine, image: str, simulator_container: tuple[str, str], tmp_path: Path
) -> None:
    net, api_url = simulator_container
    overlay = overlay_for(tmp_path / "base", K8S, "Deployment", image, api_url, ("main",))
    docs = render(tmp_path / "base", overlay)
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    played = [*generated_config_maps(docs), without_ports(deployment)]
    pod = Pod(podman, play(podman, net, played, tmp_path / "play.yaml"), spec)
    pod.probes_pass()
    pod.wait_polling({"main"})
    status = podman.proc_status(pod.container)
    assert status["Uid"].split() == [str(spec["securityContext"]["runAsUser"])] * 4
    assert status["Gid"].split() == [str(spec["securityContext"]["runAsGroup"])] * 4
    assert int(status["CapEff"], 16) == 0  # capabilities: drop ALL
    assert status["NoNewPrivs"] == "1"  # allowPrivilegeEscalation: false
    assert status["Seccomp"] == "2"  # seccompProfile RuntimeDefault: a filter
    refused = podman.completed(
        "podman", "exec", "--user", "0", pod.container, "touch", "/etc/probe"
    )
    assert "Read-only file system" in refused.stderr
    podman.podman("exec", pod.container, "touch", "/tmp/probe")  # the emptyDir
    assert podman.inspect(pod.container)["RestartCount"] == 0


SHARD_COUNT_FROM_REPLICAS = {
    "source": {"kind": "StatefulSet", "name": "pinpointe-exporter", "fieldPath": "spec.replicas"},
    "targets": [
        {
            "select": {"kind": "StatefulSet", "name": "pinpointe-exporter"},
            "fieldPaths": [
                "spec.template.spec.containers.[name=exporter].env.[name=SHARD_COUNT].value"
            ],
        }
    ],
}


def test_sharded_overlay_pods_each_serve_only_their_accounts(
    podman: Engine, image: str, simulator_container: tuple[str, str], tmp_path: Path
) -> None:
    net, api_url = simulator_container
    source = K8S / "overlays" / "sharded"
    overlay = overlay_for(tmp_path / "sharded", source, "StatefulSet", image, api_url, ACCOUNTS)
    # The documented way to change the shard count in an overlay of one's own.
    overlay["replicas"] = [{"name": "pinpointe-exporter", "count": SHARDS}]
    overlay["replacements"] = [SHARD_COUNT_FROM_REPLICAS]
    docs = render(tmp_path / "sharded", overlay)
    statefulset = one(docs, "StatefulSet")
    assert statefulset["spec"]["replicas"] == SHARDS
    expected = {i: {a for a in ACCOUNTS if shard_of(a, SHARDS) == i} for i in range(SHARDS)}
    assert all(expected.values()), expected  # every shard has accounts to poll
    pods = []
    for ordinal in range(SHARDS):
        manifest = statefulset_pod(statefulset, ordinal)
        played = [*generated_config_maps(docs), without_ports(manifest)]
        name = play(podman, net, played, tmp_path / f"pod-{ordinal}.yaml")
        pods.append(Pod(podman, name, manifest["spec"]))
    for ordinal, pod in enumerate(pods):
        pod.probes_pass()
        pod.wait_polling(expected[ordinal])
        samples = pod.samples()
        assert samples[("pinpointe_exporter_shard_index", labels())] == ordinal
        assert samples[("pinpointe_exporter_shard_count", labels())] == SHARDS
