"""Name resolution with dnspython: A and AAAA for every name, CNAME chains, per-name errors.

A failing name (NXDOMAIN, a timeout, a broken server) is recorded on its
:class:`~exposure_audit.observations.NameResolution` and never stops the run.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from ..dsm import synology_ddns_domain
from ..errors import UsageError
from ..observations import NameResolution

__all__ = ["make_resolver", "parse_resolver", "resolve_names"]


def parse_resolver(spec: str) -> tuple[str, int]:
    """Parse ``--resolver``: ``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 address.

    HOST must be an IP address (resolving the resolver's own name would need DNS).
    Raises :class:`UsageError` naming the bad value.
    """
    text = spec.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"--resolver {spec!r}: expected [ADDRESS]:PORT")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"--resolver {spec!r}: {host!r} is not an IP address") from None
    if not port.isdigit() or not 1 <= int(port) <= 65_535:
        raise UsageError(f"--resolver {spec!r}: port {port!r} is not 1-65535")
    return address.compressed, int(port)


def make_resolver(spec: str | None, *, timeout: float = 5.0) -> dns.asyncresolver.Resolver:
    """A resolver that asks ``spec`` (see :func:`parse_resolver`), or the system's when None."""
    if spec is None:
        resolver = dns.asyncresolver.Resolver(configure=True)
    else:
        host, port = parse_resolver(spec)
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    return resolver


async def resolve_names(
    names: Sequence[str], resolver: dns.asyncresolver.Resolver
) -> list[NameResolution]:
    """Resolve every name (A and AAAA, concurrently); one result per name, in order."""
    return list(await asyncio.gather(*(_resolve(name, resolver) for name in names)))


async def _resolve(name: str, resolver: dns.asyncresolver.Resolver) -> NameResolution:
    (v4, chain4, err4), (v6, chain6, err6) = await asyncio.gather(
        _query(name, "A", resolver), _query(name, "AAAA", resolver)
    )
    errors = tuple(dict.fromkeys(e for e in (err4, err6) if e))
    return NameResolution(
        name=name,
        ipv4=v4,
        ipv6=v6,
        cname_chain=chain4 or chain6,
        errors=errors,
        synology_domain=synology_ddns_domain(name),
    )


async def _query(
    name: str, rdtype: str, resolver: dns.asyncresolver.Resolver
) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """Return (addresses, CNAME chain, error text); "no record" is not an error."""
    try:
        answer = await resolver.resolve(name, rdtype, search=False)
    except dns.resolver.NXDOMAIN:
        return (), (), "NXDOMAIN: the name does not exist"
    except dns.resolver.NoAnswer:
        return (), (), ""
    except dns.resolver.LifetimeTimeout:
        waited = f"within {resolver.lifetime:g} s from {_servers(resolver)}"
        return (), (), f"timeout: no answer for {rdtype} {waited}"
    except dns.resolver.NoNameservers as exc:
        return (), (), f"no server answered {rdtype} ({_short(exc)})"
    except dns.exception.DNSException as exc:
        return (), (), f"{rdtype} lookup failed: {_short(exc)}"
    chain = tuple(
        str(rrset[0].target).rstrip(".") for rrset in answer.chaining_result.cnames if len(rrset)
    )
    addresses = tuple(ipaddress.ip_address(rdata.address).compressed for rdata in answer)
    return addresses, chain, ""


def _servers(resolver: dns.asyncresolver.Resolver) -> str:
    """The servers asked, as ``127.0.0.53:53`` or ``[::1]:53`` (the system's, unless given)."""
    shown = []
    for server in resolver.nameservers:
        text = str(server)
        shown.append(f"[{text}]:{resolver.port}" if ":" in text else f"{text}:{resolver.port}")
    return ", ".join(shown) or "no DNS server"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
