"""The listen address: ``--web.listen-address`` as written, and as a URL shows it."""

from __future__ import annotations


def parse_listen_address(address: str) -> tuple[str, int]:
    """``:9863``, ``127.0.0.1:9863`` or ``[::1]:9863`` -> (host, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"invalid listen address {address!r}: use host:port, e.g. :9863")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def url_host(host: str) -> str:
    """The host of a listen address as a URL shows it: a wildcard as ``localhost``, an
    IPv6 address in brackets."""
    if host in ("", "0.0.0.0", "::"):
        return "localhost"
    return f"[{host}]" if ":" in host else host
