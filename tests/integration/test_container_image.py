"""The image, built from the unchanged Dockerfile and run the way docs/deploy.md and the
Compose file run it.

`make image ENGINE=podman` builds it on a stand-in of the Dockerfile's base image
(tests/integration/engine.py: what a stand-in proves and what it cannot). Every container
runs hardened as the documented `docker run` and the Compose service do: read-only root with
an in-memory /tmp, all capabilities dropped, no-new-privileges, a 768 MiB memory limit, the
image's own non-root user; its port is published on 127.0.0.1 at a port podman picks, so
parallel runs never collide. The real mode's Pinpointe is the project's simulator, in a
container of the same image on a network of the test's own.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import trustme
import yaml

from exporter import __version__
from tests.conftest import labels, parse_samples, series, wait_for, write_server_cert
from tests.integration.engine import (
    ROOT,
    SIMULATOR_TOKEN,
    SOURCE,
    Engine,
    unique,
)

HARDENED = (
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--memory",
    "768m",
    "--publish",
    "127.0.0.1::9863",
)
CONFIG = "/etc/pinpointe-exporter/config.yaml"
TOKEN_PATH = "/run/secrets/pinpointe_token"
PASSWORD = "scrape-password"
TIMEOUT = 120.0  # only stops a hung test: a loaded machine may take long to start a container


@dataclass(frozen=True)
class Exporter:
    podman: Engine
    name: str
    port: int
    scheme: str = "http"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(f"{self.scheme}://127.0.0.1:{self.port}{path}", timeout=10, **kw)

    def wait(self, condition: Any, what: str) -> Any:
        def check() -> Any:
            if not self.podman.inspect(self.name)["State"]["Running"]:
                pytest.fail(f"{self.name} stopped:\n{self.podman.logs(self.name)}")
            return condition()

        return wait_for(check, timeout=TIMEOUT, what=what)


def serve(podman: Engine, image: str, *args: str, options: tuple[str, ...] = ()) -> Exporter:
    name = podman.start(unique("pinpointe-exporter"), image, *args, options=HARDENED + options)
    return Exporter(podman, name, podman.published_port(name, 9863))


def up(exporter: Exporter, account: str, **kw: Any) -> bool:
    response = exporter.get("/metrics", **kw)
    key = ("pinpointe_up", labels(account=account))
    return response.status_code == 200 and parse_samples(response.text).get(key) == 1


@pytest.fixture(scope="module")
def demo(podman: Engine, image: str) -> Exporter:
    exporter = serve(podman, image, "--demo")
    exporter.wait(lambda: up(exporter, "demo"), "the demo's first poll")
    return exporter


def readable(path: Path, text: str, mode: int = 0o444, owner: int | None = None) -> Path:
    """A file to mount: readable by the image's user (uid 10001), as docs/deploy.md says."""
    path.write_text(text)
    path.chmod(mode)
    if owner is not None:
        os.chown(path, owner, owner)
    return path


def test_demo_serves_metrics_and_the_status_page(demo: Exporter) -> None:
    samples = parse_samples(demo.get("/metrics").text)
    records = series(samples, "pinpointe_records")
    assert records[labels(account="demo", grouping="autoresponder")] == 25
    page = demo.get("/")
    assert page.status_code == 200
    assert "Demo mode: this page shows SIMULATED Pinpointe data" in page.text
    # Served from a data file of the package: the wheel and the image must carry it.
    guide = demo.get("/troubleshooting")
    assert guide.status_code == 200
    assert "pinpointe_up" in guide.text


def test_runs_as_the_images_user_with_no_capabilities(demo: Exporter) -> None:
    status = demo.podman.proc_status(demo.name)
    assert status["Uid"].split() == ["10001"] * 4
    assert status["Gid"].split() == ["10001"] * 4
    for capabilities in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[capabilities], 16) == 0, capabilities
    assert status["NoNewPrivs"] == "1"
    cmdline = demo.podman.podman("exec", demo.name, "cat", "/proc/1/cmdline").split("\0")
    assert cmdline[-2:] == ["--demo", ""], cmdline  # the exporter is PID 1, no shell between


def test_root_is_read_only_tmp_in_memory_and_memory_limited(demo: Exporter) -> None:
    # As root, who owns /etc: only the read-only root filesystem stops the write.
    refused = demo.podman.completed(
        "podman", "exec", "--user", "0", demo.name, "touch", "/etc/probe"
    )
    assert refused.returncode != 0
    assert "Read-only file system" in refused.stderr
    demo.podman.podman("exec", demo.name, "touch", "/tmp/probe")
    mounts = demo.podman.podman("exec", demo.name, "cat", "/proc/mounts").splitlines()
    assert any(line.split()[1:3] == ["/tmp", "tmpfs"] for line in mounts), mounts
    host_config = demo.podman.inspect(demo.name)["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["Memory"] == 768 * 1024 * 1024


def health(podman: Engine, name: str) -> dict[str, Any]:
    """Run the image's HEALTHCHECK now (no systemd timer here); its recorded outcome."""
    podman.completed("podman", "healthcheck", "run", name)
    state: dict[str, Any] = podman.inspect(name)["State"]["Health"]
    return state


def test_image_healthcheck_reports_healthy(demo: Exporter, image: str) -> None:
    config = demo.podman.inspect(image, "image")
    assert config["Healthcheck"]["Test"] == ["CMD", "pinpointe-exporter", "--healthcheck"]
    state = health(demo.podman, demo.name)
    assert state["Status"] == "healthy", state
    assert "healthy: http://127.0.0.1:9863/-/healthy: 200" in state["Log"][-1]["Output"]


def test_healthcheck_follows_tls_and_basic_auth_of_a_mounted_web_config(
    podman: Engine, image: str, tmp_path: Path
) -> None:
    web = tmp_path / "web"
    web.mkdir(mode=0o755)
    ca = trustme.CA()
    write_server_cert(ca.issue_cert("127.0.0.1", "localhost"), web, "server")
    for key_or_cert in web.iterdir():
        key_or_cert.chmod(0o444)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    web_config = {
        "tls_server_config": {
            "cert_file": "/etc/pinpointe-exporter/server.crt",
            "key_file": "/etc/pinpointe-exporter/server.key",
        },
        "basic_auth_users": {"prometheus": hashed},
    }
    readable(web / "web.yml", yaml.safe_dump(web_config))
    exporter = serve(
        podman,
        image,
        "--demo",
        "--web.config.file=/etc/pinpointe-exporter/web.yml",
        options=("--volume", f"{web}:/etc/pinpointe-exporter:ro"),
    )
    exporter = Exporter(podman, exporter.name, exporter.port, scheme="https")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    auth = {"verify": str(ca_file), "auth": ("prometheus", PASSWORD)}
    exporter.wait(lambda: up(exporter, "demo", **auth), "the demo behind TLS and basic auth")
    refused = exporter.get("/metrics", verify=str(ca_file))
    assert refused.status_code == 401
    state = health(podman, exporter.name)
    assert state["Status"] == "healthy", state
    # With only bcrypt hashes to go on, the probe takes the exporter's own refusal as life.
    assert "https://127.0.0.1:9863/-/healthy: 401" in state["Log"][-1]["Output"]


def check_config(
    podman: Engine, image: str, config: Path, token: Path
) -> subprocess.CompletedProcess[str]:
    """The documented `docker run --rm ... --config.check`."""
    return podman.completed(
        "podman",
        "run",
        "--rm",
        "--volume",
        f"{config}:{CONFIG}:ro",
        "--volume",
        f"{token}:{TOKEN_PATH}:ro",
        image,
        f"--config.file={CONFIG}",
        "--config.check",
    )


def account(api_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "acme",
        "api_url": api_url,
        "username": "demo",
        "usertoken_file": TOKEN_PATH,
        **overrides,
    }


def test_config_check_on_mounted_files(podman: Engine, image: str, tmp_path: Path) -> None:
    token = readable(tmp_path / "pinpointe.token", SIMULATOR_TOKEN, 0o400, owner=10001)
    api = "https://na03.mypinpointe.com/apijson.php"
    good = readable(tmp_path / "config.yaml", yaml.safe_dump({"accounts": [account(api)]}))
    checked = check_config(podman, image, good, token)
    assert checked.returncode == 0, checked.stderr
    assert f"account acme: POST {api} as demo (usertoken set)" in checked.stdout
    assert SIMULATOR_TOKEN not in checked.stdout + checked.stderr
    broken = {"accounts": [{k: v for k, v in account(api).items() if k != "api_url"}]}
    bad = readable(tmp_path / "broken.yaml", yaml.safe_dump(broken))
    refused = check_config(podman, image, bad, token)
    assert refused.returncode == 2
    assert f"error: {CONFIG}: accounts[0].api_url: required" in refused.stderr


def test_default_command_without_a_config_names_the_missing_file(
    podman: Engine, image: str
) -> None:
    refused = podman.completed("podman", "run", "--rm", image)
    assert refused.returncode == 2
    assert f"error: {CONFIG}: " in refused.stderr
    assert "No such file or directory" in refused.stderr


def test_real_mode_reads_config_and_token_from_mounted_files(
    podman: Engine, image: str, simulator_container: tuple[str, str], tmp_path: Path
) -> None:
    net, api_url = simulator_container
    config = readable(tmp_path / "config.yaml", yaml.safe_dump({"accounts": [account(api_url)]}))
    token = readable(tmp_path / "pinpointe.token", SIMULATOR_TOKEN, 0o400, owner=10001)
    exporter = serve(
        podman,
        image,  # the image's own command: --config.file=/etc/pinpointe-exporter/config.yaml
        options=(
            "--network",
            net,
            "--volume",
            f"{config}:{CONFIG}:ro",
            "--volume",
            f"{token}:{TOKEN_PATH}:ro",
        ),
    )
    exporter.wait(lambda: up(exporter, "acme"), "the first poll of the simulator")
    samples = parse_samples(exporter.get("/metrics").text)
    assert series(samples, "pinpointe_records") == {
        labels(account="acme", grouping="autoresponder"): 25
    }
    seen = {
        "podman inspect": json.dumps(podman.inspect(exporter.name)),
        "environment": podman.podman("exec", exporter.name, "cat", "/proc/1/environ"),
        "logs": podman.logs(exporter.name),
        **{path: exporter.get(path).text for path in ("/metrics", "/config", "/")},
    }
    assert [where for where, text in seen.items() if SIMULATOR_TOKEN in text] == []


def test_sigterm_stops_it_within_the_grace_period(podman: Engine, image: str) -> None:
    exporter = serve(podman, image, "--demo")
    exporter.wait(lambda: exporter.get("/-/healthy").status_code == 200, "the demo to serve")
    # Kubernetes' default grace period; podman sends SIGKILL (exit 137) when it runs out.
    podman.podman("stop", "--time", "30", exporter.name)
    state = podman.inspect(exporter.name)["State"]
    assert (state["ExitCode"], state["OOMKilled"]) == (0, False)
    assert 'msg="shutting down" signal=SIGTERM' in podman.logs(exporter.name)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_oci_labels_carry_the_build_arguments(podman: Engine, image: str) -> None:
    found = podman.inspect(image, "image")["Config"]["Labels"]
    expected = {
        "title": "pinpointe-exporter",
        "licenses": "Apache-2.0",
        "source": SOURCE,
        "version": __version__,
        "revision": _git("rev-parse", "HEAD"),
        "created": _git("log", "-1", "--format=%cI"),
    }
    assert {k: found.get(f"org.opencontainers.image.{k}") for k in expected} == expected


LOOK_AROUND = """
import importlib.util, json, os, shutil
print(json.dumps({
    "tools": [t for t in ("gcc", "cc", "make", "git") if shutil.which(t)],
    "modules": [m for m in ("build", "pytest", "tests", "exporter.simulator.faults")
                if importlib.util.find_spec(m)],
    "paths": [p for p in ("/src", "/dist", "/tmp/dist", "/tmp/requirements.txt")
              if os.path.exists(p)],
}))
"""


def test_image_holds_the_runtime_and_no_build_or_test_tools(podman: Engine, image: str) -> None:
    found = podman.podman("run", "--rm", "--entrypoint", "python", image, "-c", LOOK_AROUND)
    assert json.loads(found) == {"tools": [], "modules": [], "paths": []}
