"""Which URLs a webhook endpoint may have, and which addresses a live delivery may reach.

Any endpoint's URL is an absolute http(s) URL without credentials or a fragment. A
live-mode endpoint must also be somewhere on the internet: a merchant's key must not
make Soxara's workers POST into Soxara's own network (loopback, private ranges,
link-local, the clouds' metadata services). The URL's host is checked when the endpoint
is saved (addresses written in it, names that only ever mean the inside), and every
address its name resolves to is checked again at each delivery (`refusal`, used by the
HTTP sender), since a name can be pointed anywhere after it was saved. Test-mode
endpoints may point anywhere, localhost included: that is how an integration is tested.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from core.errors import InvalidInput

MAX_URL = 2048

# Addresses that are not "the internet" although Python's `is_global` cannot say so for
# every one (the clouds' metadata services are link-local or private already; named for
# the message).
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
             ipaddress.ip_address("100.100.100.200")}
# Names that mean the inside of a network wherever they are resolved.
_INSIDE_NAMES = ("localhost", "metadata", "metadata.google.internal")
_INSIDE_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
# Hosts made only of digits, dots and hex: an address in a form the resolver accepts but
# the dotted quad does not show (2130706433, 0x7f.1, 127.1 are all 127.0.0.1).
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+", re.I)
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def refusal(address: str) -> str | None:
    """Why a live delivery must not go to `address` (an IP address as text), or None
    when it is on the internet."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


def check_url(url: object, *, livemode: bool) -> str:
    """The endpoint URL as stored, or InvalidInput (field `url`) saying what is wrong."""
    if not isinstance(url, str) or not url:
        raise InvalidInput("url must be an http or https URL", field="url")
    if len(url) > MAX_URL:
        raise InvalidInput(f"url is at most {MAX_URL} characters", field="url")
    if _CONTROL.search(url):
        raise InvalidInput("url must not contain spaces or control characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("url is not a valid URL", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("url must start with http:// or https://", field="url")
    host = parts.hostname
    if not host:
        raise InvalidInput("url has no host", field="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url must not carry credentials: verify the Soxara-Signature header instead",
                           field="url")
    if parts.fragment:
        raise InvalidInput("url must not have a #fragment", field="url")
    if port == 0:
        raise InvalidInput("url has port 0", field="url")
    if livemode:
        why = _inside(host)
        if why is not None:
            raise InvalidInput(f"a live endpoint must be reachable on the internet: {host} is {why}",
                               field="url")
    return url


def _inside(host: str) -> str | None:
    host = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return refusal(host)
    if host in _INSIDE_NAMES or host.endswith(_INSIDE_SUFFIXES):
        return "a name for the inside of a network"
    if "." not in host:
        return "not a fully qualified name"
    if _NUMERIC_HOST.fullmatch(host):
        return "an address in an unusual form (write it as a dotted quad)"
    return None
