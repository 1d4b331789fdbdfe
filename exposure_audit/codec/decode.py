"""Reading a JSON report document back into a :class:`~exposure_audit.report.Report`.

Pure. :func:`report_from_dict` is the inverse of
:func:`~exposure_audit.codec.encode.to_dict`: for every report ``r``,
``to_dict(report_from_dict(to_dict(r))) == to_dict(r)``. The document may come
from a file or from the history store, so every field is checked and a bad one raises
:class:`ReportFormatError` (a ``ValueError``) naming its JSON path
(``hosts[3].findings[0].severity: 'urgent' is not a severity (...)``).

What ``to_dict`` leaves out cannot come back, and is not needed to render the report again:
closed ports, probe attempts that completed without a note, SSDP headers, a mapping's
``enabled``/``remote_host``, an IGD service's SCPD URL, the UPnP control URL when no IGD
description was read, and reachable unmapped ports that are not among the reported services.
Derived fields (``summary``, ``identified_as``, a service's ``not_reachable_from``, a name's
``notes``) are recomputed by ``to_dict`` and ignored here.

The schema only ever gains fields within a version, so unknown keys are ignored and fields
that do not identify anything default when absent (``acceptance`` absent or null: not
accepted). Fields that do identify something (a host's address, a finding's id, rule and
severity, a port, a time) are required.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any, NoReturn, TypeVar

from ..findings import Acceptance, Finding, Severity
from ..grading import Grade
from ..observations import (
    AddressFamily,
    DsmFingerprint,
    HostObservation,
    HostStatus,
    HttpObservation,
    IgdDescription,
    IgdService,
    ManagementHint,
    ManagementObservation,
    NameResolution,
    PortMapping,
    ProbeAttempt,
    ProbeStatus,
    Redirect,
    ServiceObservation,
    SsdpReply,
    TlsCertificate,
    UpnpForwarding,
    UpnpObservation,
)
from ..ports import PortSet
from ..report import HostReport, Report, SkippedAddress, UnauditedTarget
from .encode import FORWARDED_BY_UPNP, SCHEMA

__all__ = ["ReportFormatError", "host_from_dict", "report_from_dict"]

_MAX_PORT = 0xFFFF

_T = TypeVar("_T")
_E = TypeVar("_E", bound=Enum)
_MISSING: Any = object()


class ReportFormatError(ValueError):
    """A report document failed validation. ``path`` is the JSON path of the bad field
    (``hosts[3].findings[0].severity``; ``$`` for the document itself)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def report_from_dict(doc: Mapping[str, Any]) -> Report:
    """Read a ``exposure-audit/1`` document (parsed JSON, as ``to_dict`` makes it).

    Raises :class:`ReportFormatError` naming the path of the first bad field; ``schema`` when
    the document is not an ``exposure-audit/1`` report.
    """
    root = _Object(doc, "")
    schema = root.get("schema")
    if schema != SCHEMA:
        raise ReportFormatError(
            "schema",
            f"{_show(schema)} is not {SCHEMA!r} "
            "(not an exposure-audit report, or one written by a newer version)",
        )
    tool = root.object("tool")
    ports = root.object("ports")
    return Report(
        tool_version=tool.text("version"),
        started_at=root.moment("started_at"),
        finished_at=root.moment("finished_at"),
        ports=PortSet(
            tuple(ports.port_list("tcp", default=[])), tuple(ports.port_list("udp", default=[]))
        ),
        hosts=tuple(root.objects("hosts", _host)),
        names=tuple(root.objects("names", _name, default=[])),
        skipped=tuple(root.objects("skipped", _skipped, default=[])),
        errors=tuple(root.texts("errors", default=[])),
        complete=root.boolean("complete"),
        notes=tuple(root.texts("notes", default=[])),
        vantages=tuple(root.texts("vantages", default=[])),
        not_audited=tuple(root.objects("not_audited", _unaudited, default=[])),
        interrupted=root.boolean("interrupted", default=False),
    )


def host_from_dict(doc: Mapping[str, Any], path: str = "host") -> HostReport:
    """Read one host as ``to_dict`` writes it under ``hosts`` (:func:`~.encode.host_dict`).

    ``path`` prefixes the paths in error messages (``hosts[3]``). Raises
    :class:`ReportFormatError`.
    """
    return _host(_Object(doc, path))


def _host(obj: _Object) -> HostReport:
    upnp_doc = obj.optional_object("upnp")
    forwarding_source = upnp_doc.optional_text("mappings_source") if upnp_doc else None
    services: list[ServiceObservation] = []
    unmapped: list[int] = []
    vantages = tuple(obj.texts("vantages", default=[]))
    for service_obj in obj.object_list("services", default=[]):
        service, forwarding = _service(service_obj)
        for key in ("reachable_from", "untested_from"):
            strangers = [v for v in getattr(service, key) if v not in vantages]
            if strangers:
                service_obj.fail(key, f"names {strangers[0]!r}, not among the host's vantages")
        if forwarding is None:
            pass
        elif forwarding == FORWARDED_BY_UPNP:
            if service.upnp_mapping is None:
                service_obj.fail("forwarding", "says 'upnp' but upnp_mapping is null")
        elif forwarding_source is None:
            # to_dict writes any other value only for a port in the host's forwarding table.
            service_obj.fail("forwarding", f"{forwarding!r} but the host has no mappings_source")
        elif service.port not in unmapped:
            unmapped.append(service.port)
        services.append(service)
    forwarding_table = None
    if upnp_doc is not None and forwarding_source is not None:
        forwarding_table = UpnpForwarding(
            source=forwarding_source,
            mapped_unreachable=tuple(
                upnp_doc.objects("mapped_but_unreachable", _mapping, default=[])
            ),
            unmapped_reachable=tuple(unmapped),
        )
    observation = HostObservation(
        address=obj.text("address"),
        family=obj.choice("family", AddressFamily),
        hostnames=tuple(obj.texts("hostnames", default=[])),
        services=tuple(services),
        status=obj.choice("status", HostStatus),
        attempts=tuple(obj.objects("attempts", _attempt, default=[])),
        errors=tuple(obj.texts("errors", default=[])),
        notes=tuple(obj.texts("notes", default=[])),
        upnp=_upnp(upnp_doc, forwarding_table) if upnp_doc else None,
        forwarding=forwarding_table,
        vantages=vantages,
    )
    return HostReport(
        observation=observation,
        findings=tuple(obj.objects("findings", _finding, default=[])),
        grade=obj.choice("grade", Grade),
    )


def _service(obj: _Object) -> tuple[ServiceObservation, str | None]:
    http = obj.optional_object("http")
    dsm = obj.optional_object("dsm")
    if dsm is not None and http is None:
        obj.fail("dsm", "a DSM fingerprint needs the http object it was read from")
    if http is None and (obj.optional_object("management") or obj.get("management_hints")):
        obj.fail("management", "a management interface needs the http object it was read from")
    service = ServiceObservation(
        port=obj.port("port"),
        protocol=obj.text("protocol"),
        state=obj.text("state"),
        service=obj.text("service", default=""),
        product=obj.text("product", default=""),
        version=obj.text("version", default=""),
        banner=obj.text("banner", default=""),
        http=_http(http, _dsm(dsm) if dsm else None, *_management(obj)) if http else None,
        tls=_tls(tls) if (tls := obj.optional_object("tls")) else None,
        upnp_mapping=_mapping(m) if (m := obj.optional_object("upnp_mapping")) else None,
        reachable_from=tuple(obj.texts("reachable_from", default=[])),
        untested_from=tuple(obj.texts("untested_from", default=[])),
        unidentified=obj.optional_text("unidentified") or "",
        cpe=tuple(obj.texts("cpe", default=[])),
    )
    return service, obj.optional_text("forwarding")


def _http(
    obj: _Object,
    dsm: DsmFingerprint | None,
    management: ManagementObservation | None = None,
    hints: tuple[ManagementHint, ...] = (),
) -> HttpObservation:
    return HttpObservation(
        scheme=obj.text("scheme"),
        status_code=obj.integer("status_code"),
        server=obj.optional_text("server"),
        title=obj.optional_text("title"),
        redirects=tuple(obj.objects("redirects", _redirect, default=[])),
        dsm=dsm,
        srm=obj.boolean("srm", default=False),
        management=management,
        management_hints=hints,
        also_plain_http=obj.boolean("also_plain_http", default=False),
        login_prompt=obj.optional_text("login_prompt"),
    )


def _management(
    service: _Object,
) -> tuple[ManagementObservation | None, tuple[ManagementHint, ...]]:
    """A service's ``management`` and ``management_hints`` (absent in older documents)."""
    found = service.optional_object("management")
    hints = tuple(service.objects("management_hints", _hint, default=[]))
    if found is None:
        return None, hints
    return (
        ManagementObservation(
            product=found.text("product"),
            name=found.text("name"),
            vendor=found.text("vendor"),
            category=found.text("category"),
            markers=tuple(found.texts("markers", default=[])),
            version=found.optional_text("version"),
            unauthenticated=found.optional_text("unauthenticated"),
        ),
        hints,
    )


def _hint(obj: _Object) -> ManagementHint:
    return ManagementHint(obj.text("product"), obj.text("name"), obj.text("marker"))


def _redirect(obj: _Object) -> Redirect:
    return Redirect(
        from_url=obj.text("from"),
        location=obj.text("location"),
        status_code=obj.integer("status_code"),
    )


def _tls(obj: _Object) -> TlsCertificate:
    return TlsCertificate(
        subject=obj.text("subject"),
        issuer=obj.text("issuer"),
        not_before=obj.moment("not_before"),
        not_after=obj.moment("not_after"),
        self_signed=obj.boolean("self_signed", default=False),
        synology_default=obj.boolean("synology_default", default=False),
        subject_alt_names=tuple(obj.texts("subject_alt_names", default=[])),
        sha256=obj.text("sha256", default=""),
    )


def _dsm(obj: _Object) -> DsmFingerprint:
    return DsmFingerprint(
        markers=tuple(obj.texts("markers", default=[])),
        version=obj.optional_text("version"),
        build=obj.optional_integer("build"),
        update=obj.optional_integer("update"),
        model=obj.optional_text("model"),
        version_source=obj.optional_text("version_source"),
    )


def _mapping(obj: _Object) -> PortMapping:
    return PortMapping(
        external_port=obj.port("external_port"),
        protocol=obj.text("protocol"),
        internal_client=obj.text("internal_client"),
        internal_port=obj.port("internal_port"),
        description=obj.text("description", default=""),
        lease_duration=obj.integer("lease_duration", default=0),
        enabled=obj.boolean("enabled", default=True),
        remote_host=obj.text("remote_host", default=""),
    )


def _upnp(obj: _Object, forwarding: UpnpForwarding | None) -> UpnpObservation | None:
    ssdp = tuple(obj.objects("ssdp", _ssdp, default=[]))
    igd_obj = obj.optional_object("igd")
    mappings = tuple(obj.objects("mappings", _mapping, default=[]))
    if forwarding is not None and not ssdp and igd_obj is None and not mappings:
        # to_dict writes this object for a forwarding table alone; UPnP itself said nothing.
        return None
    if igd_obj is None:
        return UpnpObservation(ssdp=ssdp, mappings=mappings)
    return UpnpObservation(
        ssdp=ssdp,
        igd=IgdDescription(
            url=igd_obj.text("url"),
            device_type=igd_obj.text("device_type", default=""),
            friendly_name=igd_obj.text("friendly_name", default=""),
            manufacturer=igd_obj.text("manufacturer", default=""),
            model_name=igd_obj.text("model_name", default=""),
            model_number=igd_obj.text("model_number", default=""),
            services=tuple(igd_obj.objects("services", _igd_service, default=[])),
        ),
        control_url=igd_obj.optional_text("control_url"),
        mappings_readable=igd_obj.boolean("mappings_readable", default=False),
        mappings=mappings,
        external_address=igd_obj.optional_text("external_address"),
    )


def _ssdp(obj: _Object) -> SsdpReply:
    return SsdpReply(
        responder=obj.text("responder"),
        server=obj.text("server", default=""),
        location=obj.text("location", default=""),
        st=obj.text("st", default=""),
        usn=obj.text("usn", default=""),
    )


def _igd_service(obj: _Object) -> IgdService:
    return IgdService(service_type=obj.text("service_type"), control_url=obj.text("control_url"))


def _attempt(obj: _Object) -> ProbeAttempt:
    return ProbeAttempt(
        probe=obj.text("probe"),
        status=obj.choice("status", ProbeStatus),
        reason=obj.text("reason", default=""),
        port=obj.optional_port("port"),
    )


_SEVERITIES = {s.label: s for s in Severity}


def _finding(obj: _Object) -> Finding:
    label = obj.text("severity")
    severity = _SEVERITIES.get(label)
    if severity is None:
        obj.fail("severity", f"{label!r} is not a severity (one of {', '.join(_SEVERITIES)})")
    acceptance = obj.optional_object("acceptance")
    return Finding(
        id=obj.text("id"),
        rule=obj.text("rule"),
        severity=severity,
        address=obj.text("address"),
        port=obj.port("port"),
        protocol=obj.text("protocol"),
        title=obj.text("title", default=""),
        evidence=obj.text("evidence", default=""),
        remediation=obj.text("remediation", default=""),
        severity_reason=obj.text("severity_reason", default=""),
        acceptance=_acceptance(acceptance) if acceptance else None,
    )


def _acceptance(obj: _Object) -> Acceptance:
    return Acceptance(
        reason=obj.text("reason"),
        owner=obj.text("owner"),
        expires=obj.day("expires"),
        expired=obj.boolean("expired", default=False),
    )


def _name(obj: _Object) -> NameResolution:
    return NameResolution(
        name=obj.text("name"),
        ipv4=tuple(obj.texts("ipv4", default=[])),
        ipv6=tuple(obj.texts("ipv6", default=[])),
        cname_chain=tuple(obj.texts("cname_chain", default=[])),
        errors=tuple(obj.texts("errors", default=[])),
        synology_domain=obj.optional_text("synology_domain"),
    )


def _unaudited(obj: _Object) -> UnauditedTarget:
    return UnauditedTarget(target=obj.text("target"), reason=obj.text("reason"))


def _skipped(obj: _Object) -> SkippedAddress:
    return SkippedAddress(
        address=obj.text("address"),
        name=obj.text("name", default=""),
        reason=obj.text("reason", default=""),
    )


class _Object:
    """A JSON object at a path, with typed getters that raise :class:`ReportFormatError`."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, Mapping):
            raise ReportFormatError(path or "$", f"must be an object, not {_kind(value)}")
        self._value: Mapping[str, Any] = value
        self._path = path

    def where(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def fail(self, key: str, reason: str) -> NoReturn:
        raise ReportFormatError(self.where(key), reason)

    def get(self, key: str) -> Any:
        return self._value.get(key)

    def _raw(self, key: str, default: Any) -> Any:
        if key in self._value:
            return self._value[key]
        if default is _MISSING:
            self.fail(key, "is missing")
        return default

    def text(self, key: str, default: Any = _MISSING) -> str:
        value = self._raw(key, default)
        if not isinstance(value, str):
            self.fail(key, f"must be a string, not {_kind(value)}")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self._value.get(key) is None else self.text(key)

    def integer(self, key: str, default: Any = _MISSING) -> int:
        value = self._raw(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(key, f"must be an integer, not {_kind(value)}")
        return value

    def optional_integer(self, key: str) -> int | None:
        return None if self._value.get(key) is None else self.integer(key)

    def port(self, key: str) -> int:
        value = self.integer(key)
        if not 0 <= value <= _MAX_PORT:
            self.fail(key, f"{value} is not a port (0-{_MAX_PORT})")
        return value

    def optional_port(self, key: str) -> int | None:
        return None if self._value.get(key) is None else self.port(key)

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        value = self._raw(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, not {_kind(value)}")
        return value

    def choice(self, key: str, kind: type[_E]) -> _E:
        value = self.text(key)
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in kind)
            self.fail(key, f"{value!r} is not one of {choices}")

    def moment(self, key: str) -> datetime:
        value = self.text(key)
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            self.fail(key, f"{_show(value)} is not an ISO 8601 time")

    def day(self, key: str) -> date:
        value = self.text(key)
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(key, f"{_show(value)} is not a YYYY-MM-DD date")

    def object(self, key: str) -> _Object:
        return _Object(self._raw(key, _MISSING), self.where(key))

    def optional_object(self, key: str) -> _Object | None:
        value = self._value.get(key)
        return None if value is None else _Object(value, self.where(key))

    def _list(self, key: str, default: Any) -> list[tuple[str, Any]]:
        value = self._raw(key, default)
        if not isinstance(value, list | tuple):
            self.fail(key, f"must be a list, not {_kind(value)}")
        return [(f"{self.where(key)}[{i}]", item) for i, item in enumerate(value)]

    def object_list(self, key: str, default: Any = _MISSING) -> list[_Object]:
        return [_Object(item, path) for path, item in self._list(key, default)]

    def objects(self, key: str, read: Callable[[_Object], _T], default: Any = _MISSING) -> list[_T]:
        return [read(item) for item in self.object_list(key, default)]

    def texts(self, key: str, default: Any = _MISSING) -> list[str]:
        return [_typed(path, item, str, "a string") for path, item in self._list(key, default)]

    def port_list(self, key: str, default: Any = _MISSING) -> list[int]:
        ports = []
        for path, item in self._list(key, default):
            if not isinstance(item, int) or isinstance(item, bool):
                raise ReportFormatError(path, f"must be an integer, not {_kind(item)}")
            if not 0 <= item <= _MAX_PORT:
                raise ReportFormatError(path, f"{item} is not a port (0-{_MAX_PORT})")
            ports.append(item)
        return ports


def _typed(path: str, value: object, kind: type[_T], what: str) -> _T:
    if not isinstance(value, kind):
        raise ReportFormatError(path, f"must be {what}, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"a string ({_show(value)})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
