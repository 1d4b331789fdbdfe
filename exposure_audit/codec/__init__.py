"""The JSON report document, both ways: :func:`to_dict` writes a
:class:`~exposure_audit.report.Report` as the ``exposure-audit/1`` document
(docs/report-schema.md) and :func:`report_from_dict` reads one back, checking every field.

Pure. For every report ``r``, ``to_dict(report_from_dict(to_dict(r))) == to_dict(r)``
(tests/test_codec.py holds the property). :mod:`.encode` writes, :mod:`.decode` reads; both
share :data:`SCHEMA`. Renderers that show the document's shapes (JSON, HTML, the diff's
``before``/``after``) and the history store use these functions, never their own copies.
"""

from __future__ import annotations

from .decode import ReportFormatError, host_from_dict, report_from_dict
from .encode import (
    SCHEMA,
    finding_dict,
    host_dict,
    identify,
    iso_time,
    mapping_dict,
    name_notes,
    reported_services,
    to_dict,
)

__all__ = [
    "SCHEMA",
    "ReportFormatError",
    "finding_dict",
    "host_dict",
    "host_from_dict",
    "identify",
    "iso_time",
    "mapping_dict",
    "name_notes",
    "report_from_dict",
    "reported_services",
    "to_dict",
]
