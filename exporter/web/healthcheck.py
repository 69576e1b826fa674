"""--healthcheck: does the exporter on this host answer? For Docker's HEALTHCHECK and Compose.

It reads the same ``--web.listen-address`` and ``--web.config.file`` as the server
and asks ``GET /-/healthy`` the way the server expects to be asked:

- over HTTPS when the web config serves TLS, trusting exactly the certificate the
  server is configured with (``tls_server_config.cert_file`` or ``cert``; a CA-signed
  one is accepted as a trust anchor on its own), with no host name check, since it
  connects to the loopback address while the certificate names the service;
- with a client certificate (``--healthcheck.cert-file``, and ``--healthcheck.key-file``
  unless the key is in the same file) when the server requires one
  (``RequireAndVerifyClientCert``);
- with basic auth credentials when ``--healthcheck.basic-auth-password-file`` is given.
  The web config only holds bcrypt hashes, so without a password the probe accepts the
  server's own refusal, a 401 with ``WWW-Authenticate: Basic realm="pinpointe-exporter"``,
  as proof of life: it shows the process accepts connections, completes TLS, parses HTTP
  and runs its request handling, which is all ``/-/healthy`` itself shows. A 429 from the
  web config's ``rate_limit`` is likewise an answer.

Given neither ``--web.listen-address`` nor ``--web.config.file``, it follows the flags of
the exporter running as ``--healthcheck.pid`` (default 1, the container's entrypoint; or
a child of it, as under ``docker run --init``), so the image's HEALTHCHECK needs no
flags of its own when the server was started with other ones.

Exit status 0 when healthy and 1 otherwise, never 2 (which Docker reserves), with one
line saying what was asked and what came back; the password never appears in it.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exporter.web.address import parse_listen_address
from exporter.web.webconfig import WebConfig, WebConfigError, load_web_config

HEALTH_PATH = "/-/healthy"
TIMEOUT_SECONDS = 4.0  # below the image HEALTHCHECK's --timeout=5s
_LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}
# The exporter's basic auth challenge (tests/integration/test_healthcheck.py proves they agree).
CHALLENGE = 'Basic realm="pinpointe-exporter"'


class ProbeError(Exception):
    """Why the probe could not even be attempted (phrased for the health log)."""


@dataclass(frozen=True)
class Credentials:
    """What the probe presents: a client certificate and basic auth, each optional."""

    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password_file: str | None = None


@dataclass(frozen=True)
class Probe:
    host: str
    port: int
    tls: ssl.SSLContext | None
    authorization: str | None
    users_required: bool

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{HEALTH_PATH}"


def plan(listen_address: str, web_config_file: str | None, credentials: Credentials) -> Probe:
    """How to ask the server configured by these flags; ProbeError if it cannot be done."""
    try:
        host, port = parse_listen_address(listen_address)
    except ValueError as exc:
        raise ProbeError(str(exc)) from None
    host = _LOOPBACK.get(host, host)
    web: WebConfig | None = None
    if web_config_file:
        try:
            web = load_web_config(web_config_file)
        except WebConfigError as exc:
            raise ProbeError(str(exc)) from None
    tls = None
    if web is not None and web.tls:
        assert web_config_file is not None
        tls = _client_context(web_config_file, credentials)
    authorization = None
    if credentials.password_file:
        authorization = _authorization(web, credentials)
    users_required = web is not None and bool(web.users)
    return Probe(host, port, tls, authorization, users_required)


def check(probe: Probe, timeout: float = TIMEOUT_SECONDS) -> tuple[bool, str]:
    """Ask once: (healthy, a line for the health log)."""
    connection: http.client.HTTPConnection
    if probe.tls is not None:
        connection = http.client.HTTPSConnection(
            probe.host, probe.port, timeout=timeout, context=probe.tls
        )
    else:
        connection = http.client.HTTPConnection(probe.host, probe.port, timeout=timeout)
    headers = {"Connection": "close", "User-Agent": "pinpointe-exporter-healthcheck"}
    if probe.authorization is not None:
        headers["Authorization"] = probe.authorization
    try:
        connection.request("GET", HEALTH_PATH, headers=headers)
        response = connection.getresponse()
        response.read(1024)
        status, challenge = response.status, response.getheader("WWW-Authenticate", "")
    except ssl.SSLError as exc:
        return False, f"{probe.url}: TLS failed: {exc.reason or exc}"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{probe.url}: no answer: {exc or type(exc).__name__}"
    finally:
        connection.close()
    if status == 200:
        return True, f"{probe.url}: 200"
    ours = challenge == CHALLENGE
    if status == 401 and probe.authorization is None and probe.users_required and ours:
        return True, (
            f"{probe.url}: 401 from pinpointe-exporter's basic auth: answering "
            "(give --healthcheck.basic-auth-password-file to check /-/healthy itself)"
        )
    if status == 401 and probe.authorization is not None:
        return False, f"{probe.url}: 401: the basic auth password was refused"
    if status == 429:
        return True, f"{probe.url}: 429 from the web config's rate limit: answering"
    return False, f"{probe.url}: {status}"


def run(listen_address: str, web_config_file: str | None, credentials: Credentials) -> int:
    """The --healthcheck mode: 0 healthy, 1 not; one line on stdout or stderr."""
    try:
        probe = plan(listen_address, web_config_file, credentials)
    except ProbeError as exc:
        print(f"unhealthy: cannot check: {exc}", flush=True)
        return 1
    healthy, line = check(probe)
    print(f"{'healthy' if healthy else 'unhealthy'}: {line}", flush=True)
    return 0 if healthy else 1


# The exporter's own flags: argv -> (--web.listen-address, --web.config.file); raises
# SystemExit when they do not parse (the command line's parser, given by the caller).
WebFlags = Callable[[list[str]], tuple[str, str | None]]


def followed_flags(pid: int, web_flags: WebFlags) -> tuple[int, str, str | None] | None:
    """(the process followed, its --web.listen-address, its --web.config.file): the
    exporter running as ``pid``, or else as a child of it, under this probe's own user;
    None if there is none. A relative web config path is made absolute from that
    process's working directory."""
    for candidate in (pid, *_children(pid)):
        argv = _exporter_argv(candidate)
        if argv is None:
            continue
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                listen_address, web_config_file = web_flags(argv)
        except SystemExit:
            continue
        if web_config_file and not os.path.isabs(web_config_file):
            with contextlib.suppress(OSError):
                web_config_file = os.path.join(
                    os.readlink(f"/proc/{candidate}/cwd"), web_config_file
                )
        return candidate, listen_address, web_config_file
    return None


def _exporter_argv(pid: int) -> list[str] | None:
    """The flags of ``pid`` if it is pinpointe-exporter (the console script, or a Python
    running it or ``-m exporter``) run by this user; None otherwise."""
    try:
        if os.stat(f"/proc/{pid}").st_uid != os.getuid():
            return None
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    argv = raw.decode("utf-8", "replace").split("\0")[:-1]
    if not argv:
        return None
    program = os.path.basename(argv[0])
    if program == "pinpointe-exporter":
        return argv[1:]
    if not program.startswith("python"):
        return None
    for index in range(1, len(argv)):
        arg = argv[index]
        if os.path.basename(arg) == "pinpointe-exporter":
            return argv[index + 1 :]
        if arg == "-m":
            return argv[index + 2 :] if argv[index + 1 : index + 2] == ["exporter"] else None
        if not arg.startswith("-"):
            return None
    return None


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc/*/stat, which every kernel has)."""
    children: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # the name may hold spaces and ")"
        if len(fields) > 1 and fields[1] == str(pid):
            children.append(int(entry))
    return sorted(children)


def _client_context(web_config_file: str, credentials: Credentials) -> ssl.SSLContext:
    try:
        certificate, client_auth_type, sans = _server_tls(web_config_file)
    except (OSError, ValueError) as exc:
        raise ProbeError(f"{web_config_file}: cannot read the server certificate: {exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The probe connects to the loopback address; the certificate names the service.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    # Trust the configured certificate itself, even when a CA signed it.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    try:
        context.load_verify_locations(cadata=certificate)
    except (ValueError, ssl.SSLError) as exc:
        raise ProbeError(f"{web_config_file}: cannot read the server certificate: {exc}") from None
    if credentials.key_file and not credentials.cert_file:
        raise ProbeError("--healthcheck.key-file needs --healthcheck.cert-file")
    if credentials.cert_file:
        try:
            context.load_cert_chain(credentials.cert_file, credentials.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ProbeError(f"cannot load the client certificate: {exc}") from None
    elif client_auth_type == "RequireAndVerifyClientCert" or (
        client_auth_type == "VerifyClientCertIfGiven" and sans
    ):
        raise ProbeError(
            f"{web_config_file} requires a client certificate: give --healthcheck.cert-file "
            "and --healthcheck.key-file (one the client_ca trusts)"
        )
    return context


def _server_tls(web_config_file: str) -> tuple[str, str, bool]:
    """From the web config (load_web_config has validated it): the PEM of
    tls_server_config.cert or of the file cert_file names (relative names are relative
    to the web config file, as for the server), client_auth_type, and whether
    client_allowed_sans is set."""
    document: Any = yaml.safe_load(Path(web_config_file).read_text(encoding="utf-8"))
    tls = document["tls_server_config"]
    client_auth_type = str(tls.get("client_auth_type") or "NoClientCert")
    sans = bool(tls.get("client_allowed_sans"))
    if tls.get("cert"):
        return str(tls["cert"]), client_auth_type, sans
    path = Path(tls["cert_file"])
    if not path.is_absolute():
        path = Path(web_config_file).parent / path
    return path.read_text(encoding="ascii"), client_auth_type, sans


def _authorization(web: WebConfig | None, credentials: Credentials) -> str:
    assert credentials.password_file is not None
    try:
        password = Path(credentials.password_file).read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise ProbeError(
            f"{credentials.password_file}: cannot read the password file: {exc.strerror}"
        ) from None
    username = credentials.username
    if username is None:
        users = sorted(web.users) if web is not None else []
        if len(users) != 1:
            raise ProbeError(
                f"give --healthcheck.basic-auth-username: the web config has {len(users)} users"
            )
        username = users[0]
    token = base64.b64encode(username.encode("utf-8") + b":" + password).decode("ascii")
    return f"Basic {token}"
