"""tls_server_config -> an ssl.SSLContext, with exporter-toolkit's meaning of each key.

Where Python's ssl cannot do what Go's crypto/tls does, the key is refused with a
message that says what to change (the README lists these differences):
``RequestClientCert``/``RequireAnyClientCert`` (unverified client certificates) and
``curve_preferences`` listing more than one curve. TLS 1.3 suite names in
``cipher_suites`` are accepted and, as in Go, do not restrict TLS 1.3 (whose suites
are not configurable there either).
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.config.files import (
    MAX_PEM_FILE_SIZE,
    FileProblem,
    check_regular,
    memory_file,
    memory_path,
    read_bytes,
)
from exporter.config.yamlreader import Reader

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
# Go's TLS 1.2 cipher suite names (what exporter-toolkit takes) -> OpenSSL's names.
CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
# Go accepts these names too; TLS 1.3 suites are not configurable, so they change nothing.
TLS13_CIPHER_SUITES = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
)
# Go's curve names -> OpenSSL's. Python's ssl sets one curve (set_ecdh_curve), not a list.
CURVES = {
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
    "X25519": "X25519",
}
TLS_KEYS = (
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
_ENABLING = (
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_auth_type",
)
PATH = "tls_server_config"


@dataclass(frozen=True)
class ServerTls:
    context: ssl.SSLContext
    client_auth_type: str
    allowed_sans: tuple[str, ...]
    files: tuple[str, ...]  # the files it was loaded from, to watch for changes


class _TlsReader:
    """Reads one tls_server_config section; ``files`` collects every file it names."""

    def __init__(self, reader: Reader, directory: Path, tls: dict[str, Any]) -> None:
        self.reader = reader
        self.directory = directory
        self.tls = tls
        self.files: list[str] = []

    def fail(self, key: str, problem: str) -> Exception:
        return self.reader.fail(f"{PATH}.{key}", problem)

    def file(self, key: str) -> str:
        name = self.reader.string(self.tls[key], f"{PATH}.{key}")
        resolved = Path(name) if Path(name).is_absolute() else self.directory / name
        if not resolved.exists():
            raise self.fail(key, f"file {resolved} does not exist")
        try:
            check_regular(resolved, MAX_PEM_FILE_SIZE)
        except FileProblem as exc:
            raise self.fail(key, f"file {exc}") from None
        if not os.access(resolved, os.R_OK):
            raise self.fail(key, f"file {resolved} is not readable")
        self.files.append(str(resolved))
        return str(resolved)

    def content(self, key: str) -> bytes:
        """The bytes of the file named by ``key``, read once, without blocking (see
        config/files.py): OpenSSL opening the path itself could meet a FIFO swapped in
        after the check, and hang the thread that holds the web config's lock."""
        path = self.file(key)
        try:
            return read_bytes(path, MAX_PEM_FILE_SIZE)
        except FileProblem as exc:
            raise self.fail(key, f"file {exc}") from None


def read_tls(reader: Reader, raw: Any, directory: Path) -> ServerTls | None:
    """The TLS settings of a web config, or None when it names no certificate or client CA.

    Every key is checked either way, as exporter-toolkit's strict YAML decoding does: a
    section that serves no TLS is still refused when a value has the wrong type or name.
    """
    tls = reader.section(raw, PATH, TLS_KEYS)
    section = _TlsReader(reader, directory, tls)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    enabled = any(tls.get(key) for key in _ENABLING)
    if enabled:
        _require_certificate(section)
        _load_certificate(section, context)
    maximum = _set_versions(section, context)
    auth_type = _set_client_auth(section, context)
    sans = tuple(reader.strings(tls.get("client_allowed_sans"), f"{PATH}.client_allowed_sans"))
    if sans and auth_type == "NoClientCert":
        raise section.fail(
            "client_allowed_sans",
            "has no effect without client certificates: set client_auth_type "
            "RequireAndVerifyClientCert (or VerifyClientCertIfGiven, which then refuses "
            "clients without one)",
        )
    _set_ciphers(section, context, maximum)
    _set_curve(section, context)
    prefer = tls.get("prefer_server_cipher_suites", True)
    if reader.boolean(prefer, f"{PATH}.prefer_server_cipher_suites"):
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if not enabled:
        return None
    return ServerTls(context, auth_type, sans, tuple(section.files))


def _require_certificate(section: _TlsReader) -> None:
    tls = section.tls
    for inline, file_key in (
        ("cert", "cert_file"),
        ("key", "key_file"),
        ("client_ca", "client_ca_file"),
    ):
        if tls.get(inline) and tls.get(file_key):
            raise section.fail(inline, f"give {inline} or {file_key}, not both")
    if not (tls.get("cert") or tls.get("cert_file")):
        raise section.fail("cert_file", "required to serve TLS (or cert)")
    if not (tls.get("key") or tls.get("key_file")):
        raise section.fail("key_file", "required to serve TLS (or key)")


def _set_versions(section: _TlsReader, context: ssl.SSLContext) -> ssl.TLSVersion:
    """Set min_version and max_version; return the maximum."""
    versions = {}
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        name = section.reader.choice(section.tls.get(key, default), f"{PATH}.{key}", TLS_VERSIONS)
        versions[key] = TLS_VERSIONS[name]
    if versions["min_version"] > versions["max_version"]:
        raise section.fail("min_version", "is above max_version")
    try:
        context.minimum_version = versions["min_version"]
        context.maximum_version = versions["max_version"]
    except (ValueError, ssl.SSLError) as exc:
        raise section.fail("min_version", f"not supported here: {exc}") from None
    return versions["max_version"]


def _set_client_auth(section: _TlsReader, context: ssl.SSLContext) -> str:
    tls = section.tls
    auth_type = tls.get("client_auth_type") or "NoClientCert"
    if auth_type in _UNVERIFIED_CLIENT_AUTH:
        raise section.fail(
            "client_auth_type",
            f"{auth_type} accepts client certificates without verifying them and is not "
            "supported; use RequireAndVerifyClientCert with client_ca_file",
        )
    auth_type = section.reader.choice(auth_type, f"{PATH}.client_auth_type", CLIENT_AUTH_TYPES)
    has_ca = bool(tls.get("client_ca") or tls.get("client_ca_file"))
    if has_ca and auth_type == "NoClientCert":
        raise section.fail(
            "client_ca_file",
            "client CAs are configured without a client auth policy: "
            "set client_auth_type: RequireAndVerifyClientCert",
        )
    if has_ca:
        _load_client_ca(section, context)
    elif auth_type != "NoClientCert":
        # As Go does without ClientCAs: verify client certificates with the system's
        # trust store (which SSL_CERT_FILE / SSL_CERT_DIR can point elsewhere).
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    context.verify_mode = CLIENT_AUTH_TYPES[auth_type]
    return str(auth_type)


def _load_client_ca(section: _TlsReader, context: ssl.SSLContext) -> None:
    if section.tls.get("client_ca_file"):
        data = section.content("client_ca_file")
    else:
        data = section.reader.string(section.tls["client_ca"], f"{PATH}.client_ca").encode()
    try:
        # As a file, not cadata: OpenSSL skips what is not PEM (a bundle's UTF-8 comments)
        with _pem_file(section, "client_ca", data) as path:
            context.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise section.fail(
            "client_ca_file", f"cannot load the client CA certificates ({exc})"
        ) from None
    if not context.get_ca_certs():
        raise section.fail("client_ca_file", "holds no CA certificate")


def _set_ciphers(section: _TlsReader, context: ssl.SSLContext, maximum: ssl.TLSVersion) -> None:
    names = section.reader.strings(section.tls.get("cipher_suites"), f"{PATH}.cipher_suites")
    unknown = [c for c in names if c not in CIPHER_SUITES and c not in TLS13_CIPHER_SUITES]
    if unknown:
        raise section.fail(
            "cipher_suites",
            f"unknown or unsupported cipher suite {unknown[0]}; known: "
            f"{', '.join((*CIPHER_SUITES, *TLS13_CIPHER_SUITES))}",
        )
    tls12 = [CIPHER_SUITES[c] for c in names if c in CIPHER_SUITES]
    if tls12:
        context.set_ciphers(":".join(dict.fromkeys(tls12)))
    elif names:
        # Only TLS 1.3 names: in Go no TLS 1.2 suite is left, so only TLS 1.3 connects.
        if maximum < ssl.TLSVersion.TLSv1_3:
            raise section.fail(
                "cipher_suites",
                "lists only TLS 1.3 suites, which do not apply below TLS 1.3: "
                "add TLS 1.2 suites or set max_version: TLS13",
            )
        context.minimum_version = ssl.TLSVersion.TLSv1_3


def _set_curve(section: _TlsReader, context: ssl.SSLContext) -> None:
    names = section.reader.strings(
        section.tls.get("curve_preferences"), f"{PATH}.curve_preferences"
    )
    unknown = [c for c in names if c not in CURVES]
    if unknown:
        raise section.fail(
            "curve_preferences", f"unknown curve {unknown[0]}; known: {', '.join(CURVES)}"
        )
    chosen = list(dict.fromkeys(names))
    if len(chosen) > 1:
        raise section.fail(
            "curve_preferences",
            "Python's ssl can restrict the key exchange to one curve only, not a list: "
            "keep one curve, or remove curve_preferences to allow OpenSSL's defaults "
            "(X25519, CurveP256, CurveP384, CurveP521 and X448)",
        )
    if chosen:
        context.set_ecdh_curve(CURVES[chosen[0]])


def _load_certificate(section: _TlsReader, context: ssl.SSLContext) -> None:
    tls = section.tls
    with contextlib.ExitStack() as stack:
        files = {}
        for inline, file_key in (("cert", "cert_file"), ("key", "key_file")):
            if tls.get(file_key):
                data = section.content(file_key)
            else:
                data = section.reader.string(tls[inline], f"{PATH}.{inline}").encode()
            files[inline] = stack.enter_context(_pem_file(section, inline, data))
        try:
            context.load_cert_chain(files["cert"], files["key"])
        except (ssl.SSLError, OSError) as exc:
            raise section.fail(
                "cert_file",
                f"cannot load the certificate and key ({exc.strerror or exc}): "
                "they must be PEM files and the key must belong to the certificate",
            ) from None


@contextlib.contextmanager
def _pem_file(section: _TlsReader, key: str, data: bytes) -> Iterator[str]:
    """A path that reads as ``data`` while the context is open, for OpenSSL, which
    takes paths. On Linux the data lives in an anonymous memory file, so no writable
    directory is needed (a read-only root filesystem works); elsewhere it goes to a
    private temporary directory."""
    fd = memory_file(data, f"pinpointe-web-{key}")
    if fd is not None:
        try:
            yield memory_path(fd)
            return
        finally:
            os.close(fd)
    try:
        scratch = tempfile.TemporaryDirectory(prefix="pinpointe-web-")
    except OSError as exc:
        raise section.fail(
            key,
            f"an inline {key} needs a writable temporary directory here and there is none "
            f"({exc.strerror or exc}): mount one (e.g. docker run --tmpfs /tmp, or an "
            f"emptyDir at /tmp) or give {key}_file",
        ) from None
    with scratch:
        target = Path(scratch.name) / key
        target.touch(mode=0o600)
        target.write_bytes(data)
        yield str(target)
