"""Where a broker's webhook may point: public HTTPS endpoints, never the server's own network.

The server POSTs routed matches to the URL a broker gives, so a URL is a request the server
makes on the broker's behalf. Without a rule a broker could aim it at the cloud metadata
service (169.254.169.254), the database next door or the server itself. The rule:

- ``https`` only; ``http`` only to the loopback interface, and only in development (a local
  receiver while testing);
- every address the host stands for is globally reachable: no private, loopback (outside
  development), link-local, multicast, reserved, unspecified or shared (carrier NAT) address,
  whether written as an IP literal or reached through a host name;
- a host name must resolve now; it is resolved again before every delivery, so a name that
  later points inside (DNS rebinding) is refused then, and the delivery connects to an address
  this check passed (``check_webhook_url`` returns them) instead of resolving the name once
  more, so a name that points inside between the check and the connection is not followed.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from matcher.errors import InvalidInputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Kinds of address a webhook may not reach, checked in this order (127.0.0.1 is also private;
# the message names the most telling kind).
_REFUSED_KINDS = (
    ("an unspecified address", "is_unspecified"),
    ("a loopback address", "is_loopback"),
    ("a link-local address", "is_link_local"),
    ("a multicast address", "is_multicast"),
    ("a reserved address", "is_reserved"),
    ("a private address", "is_private"),
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HTTPS_ONLY = (
    "webhook URL: must use https:// (http:// is accepted only for a receiver on this machine "
    "in development)"
)


class UnresolvableHostError(InvalidInputError):
    """The webhook's host name does not resolve (now: DNS may answer again later)."""


def address_problem(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why a webhook may not reach ``address`` (``"a private address"``, …), or None.

    Args:
        address: an IPv4 or IPv6 address; an IPv6 form of an IPv4 address (``::ffff:10.0.0.1``,
            6to4) is judged as that IPv4 address.
        allow_loopback: loopback addresses pass (development only).
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return address_problem(embedded, allow_loopback=allow_loopback)
    if allow_loopback and address.is_loopback:
        return None
    for kind, test in _REFUSED_KINDS:
        if getattr(address, test):
            return kind
    if not address.is_global:
        return "not a globally reachable address"
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` stands for now: itself when it is an IP literal, else DNS's answer.

    Raises:
        UnresolvableHostError: the host name does not resolve.
    """
    literal = _ip_literal(host)
    if literal is not None:
        return [literal]
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHostError(
            f"webhook URL: the host {host!r} does not resolve ({exc}); give a host name that "
            "resolves to a public address"
        ) from exc
    addresses = {_ip_literal(str(info[4][0])) for info in answers}
    found = [a for a in addresses if a is not None]
    if not found:
        raise UnresolvableHostError(f"webhook URL: the host {host!r} resolves to no IP address")
    return sorted(found, key=str)


def check_webhook_url(url: str, *, development: bool) -> list[IPAddress]:
    """Refuse a webhook URL the server must not POST to; see the module docstring.

    Args:
        url: the absolute URL a broker gave.
        development: the service runs in development: loopback receivers are allowed, over
            http too.

    Returns:
        The addresses the host stands for now, each checked: a delivery connects to one of
        them, never to a fresh answer for the name.

    Raises:
        InvalidInputError: with a message that says what to change (``UnresolvableHostError``
            when the host name does not resolve).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise InvalidInputError(
            "webhook URL: must be an absolute https:// URL, e.g. https://example.org/hook"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError(
            "webhook URL: must not contain credentials; the secret signs every delivery"
        )
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise InvalidInputError(f"webhook URL: the port is not valid ({exc})") from exc
    if scheme == "http" and not development:
        raise InvalidInputError(_HTTPS_ONLY)
    addresses = resolve(host, port)
    for address in addresses:
        problem = address_problem(address, allow_loopback=development)
        if problem is not None:
            where = host if _ip_literal(host) is not None else f"{host} ({address})"
            raise InvalidInputError(
                f"webhook URL: {where} is {problem}; webhooks go only to public addresses"
            )
    if scheme == "http" and not all(a.is_loopback for a in addresses):
        raise InvalidInputError(_HTTPS_ONLY)
    return addresses


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
