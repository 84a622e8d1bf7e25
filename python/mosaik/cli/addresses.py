"""`HOST:PORT` options of `mosaik node`: hostnames resolved, IPv6 in brackets."""

from __future__ import annotations

import ipaddress
import socket

from .errors import CliError

DEFAULT_PORT = 7770
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"


def _split(spec: str, option: str) -> tuple[str, int]:
    host, sep, port_text = spec.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise CliError(f"invalid {option} {spec!r}: expected HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def _joined(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def resolve(spec: str, option: str) -> list[str]:
    """Every ``ip:port`` that ``spec`` (``HOST:PORT``, the host a name or an
    address) stands for, in the resolver's order; a `CliError` naming the
    option if it does not resolve."""
    host, port = _split(spec, option)
    try:
        return [_joined(str(ipaddress.ip_address(host)), port)]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise CliError(f"{option} {spec!r}: cannot resolve {host!r} ({exc})") from None
    addrs: list[str] = []
    for _family, _type, _proto, _name, sockaddr in found:
        joined = _joined(str(sockaddr[0]), port)
        if joined not in addrs:
            addrs.append(joined)
    return addrs


def bind_address(spec: str, option: str) -> tuple[str, int]:
    """The ``(ip, port)`` to bind for ``option`` (its first resolved address)."""
    return _split(resolve(spec, option)[0], option)


def listen_address(spec: str) -> str:
    """The one ``ip:port`` to bind for ``--listen``."""
    return resolve(spec, "--listen")[0]


def advertised_addresses(specs: tuple[str, ...], listen: str) -> list[str]:
    """What ``--advertise`` asks to advertise (each spec resolved, in
    order); empty to advertise the bound address. A wildcard ``--listen``
    needs ``--advertise``: other hosts cannot dial 0.0.0.0, and the
    loopback address it stands for here is useless to them."""
    addrs: list[str] = []
    for spec in specs:
        host, port = _split(spec, "--advertise")
        if port == 0:
            raise CliError(f"--advertise {spec!r}: peers need a port to dial, not 0")
        for addr in resolve(spec, "--advertise"):
            if ipaddress.ip_address(_split(addr, "--advertise")[0]).is_unspecified:
                raise CliError(f"--advertise {spec!r}: peers cannot dial {host}")
            if addr not in addrs:
                addrs.append(addr)
    if not addrs and ipaddress.ip_address(_split(listen, "--listen")[0]).is_unspecified:
        raise CliError(
            f"--listen {listen} binds every interface: give --advertise HOST:PORT, "
            "the address other hosts dial"
        )
    return addrs


__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_PORT",
    "advertised_addresses",
    "bind_address",
    "listen_address",
    "resolve",
]
