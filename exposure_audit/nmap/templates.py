"""nmap's version templates: ``$1``, ``$P(n)``, ``$SUBST(n,"from","to")``, ``$I(n,">")``.

Filled the way nmap's ``dotmplsubst`` and ``substvar`` fill them (see
docs/reference/nmap-service-probes.md): a template that names a capture the pattern does not
have, an unknown helper, malformed arguments or a result too long for nmap's field leaves the
field empty (nmap warns and leaves it empty too); trailing blanks and commas are cut. Works on
bytes, as nmap does; pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["expand", "transform_cpe"]

Captures = Sequence[bytes | None]  # index 0 is the whole match; None: the group did not take part

_MAX_GROUP = 9
_MAX_INT_BYTES = 8
# C's isspace() in the "C" locale, and the comma nmap also trims.
_TRAILING = b" \t\n\v\f\r,"
_CPE_RESERVED = frozenset(b":/?#[]@!$&'()*+,;=%<>\"")
_C_ESCAPES = {
    ord("n"): 0x0A,
    ord("r"): 0x0D,
    ord("t"): 0x09,
    ord("a"): 0x07,
    ord("b"): 0x08,
    ord("f"): 0x0C,
    ord("v"): 0x0B,
    ord("0"): 0x00,
    ord("\\"): 0x5C,
    ord('"'): 0x22,
    ord("'"): 0x27,
}


class _Unfillable(ValueError):
    """The template cannot be filled from this match: the field stays empty."""


def expand(
    template: bytes,
    captures: Captures,
    limit: int,
    transform: Callable[[bytes], bytes] | None = None,
) -> bytes | None:
    """``template`` with its variables replaced from ``captures``, trailing blanks and commas
    cut; None when nmap would leave the field empty (see the module docstring). The result is
    at most ``limit - 2`` bytes, nmap's field buffer less its terminator and margin.
    ``transform`` is applied to each substituted value (CPE escaping)."""
    out = bytearray()
    position = 0
    try:
        while position < len(template):
            dollar = template.find(b"$", position)
            if dollar < 0:
                out += template[position:]
                break
            out += template[position:dollar]
            value, position = _variable(template, dollar, captures)
            out += transform(value) if transform else value
    except _Unfillable:
        return None
    result = bytes(out).rstrip(_TRAILING)
    if len(result) > limit - 2:
        return None
    return result or None


def _variable(template: bytes, dollar: int, captures: Captures) -> tuple[bytes, int]:
    """The value of the variable starting at ``template[dollar]`` and the index after it."""
    name_start = dollar + 1
    if name_start < len(template) and template[name_start : name_start + 1].isdigit():
        return _capture(captures, template[name_start] - ord("0")), name_start + 1
    paren = template.find(b"(", name_start)
    if paren < 0 or not 0 < paren - name_start < 16:
        raise _Unfillable("no helper name")
    helper = template[name_start:paren]
    arguments, after = _arguments(template, paren + 1)
    if helper == b"P" and _shape(arguments, (int,)):
        value = _capture(captures, _as_int(arguments[0]))
        return bytes(byte for byte in value if 0x20 <= byte <= 0x7E), after
    if helper == b"SUBST" and _shape(arguments, (int, bytes, bytes)):
        value = _capture(captures, _as_int(arguments[0]))
        old, new = _as_bytes(arguments[1]), _as_bytes(arguments[2])
        if not old:
            raise _Unfillable("empty search string")
        return value.replace(old, new), after
    if helper == b"I" and _shape(arguments, (int, bytes)):
        value = _capture(captures, _as_int(arguments[0]))
        order = _as_bytes(arguments[1])
        if order not in (b">", b"<") or not 0 < len(value) <= _MAX_INT_BYTES:
            raise _Unfillable("bad $I")
        number = int.from_bytes(value, "big" if order == b">" else "little")
        return str(number).encode("ascii"), after
    raise _Unfillable("unknown helper or arguments")


def _capture(captures: Captures, number: int) -> bytes:
    if not 0 < number <= _MAX_GROUP or number >= len(captures):
        raise _Unfillable(f"no capture ${number}")
    return captures[number] or b""


def _shape(arguments: list[int | bytes], kinds: tuple[type, ...]) -> bool:
    return len(arguments) == len(kinds) and all(
        isinstance(argument, kind) for argument, kind in zip(arguments, kinds, strict=True)
    )


def _as_int(argument: int | bytes) -> int:
    assert isinstance(argument, int)
    return argument


def _as_bytes(argument: int | bytes) -> bytes:
    assert isinstance(argument, bytes)
    return argument


def _arguments(template: bytes, position: int) -> tuple[list[int | bytes], int]:
    """nmap's ``getsubstcommandargs``: integers and double-quoted C strings separated by commas,
    up to ``)``. Returns the arguments and the index after ``)``."""
    arguments: list[int | bytes] = []
    while True:
        while position < len(template) and template[position : position + 1].isspace():
            position += 1
        if position >= len(template):
            raise _Unfillable("unterminated arguments")
        char = template[position : position + 1]
        if char == b")":
            return arguments, position + 1
        if char == b'"':
            text, position = _c_string(template, position + 1)
            arguments.append(text)
        else:
            start = position
            while position < len(template) and template[position : position + 1].isdigit():
                position += 1
            if position == start:
                raise _Unfillable("bad argument")
            arguments.append(int(template[start:position]))
        while position < len(template) and template[position : position + 1].isspace():
            position += 1
        if template[position : position + 1] == b",":
            position += 1
        elif template[position : position + 1] != b")":
            raise _Unfillable("expected , or )")


def _c_string(template: bytes, position: int) -> tuple[bytes, int]:
    """A double-quoted string's body with C escapes undone; the index after its closing quote."""
    out = bytearray()
    while position < len(template):
        byte = template[position]
        if byte == ord('"'):
            return bytes(out), position + 1
        if byte == ord("\\") and position + 1 < len(template):
            escaped = template[position + 1]
            if escaped == ord("x"):
                digits = template[position + 2 : position + 4]
                try:
                    out.append(int(digits, 16))
                except ValueError as exc:
                    raise _Unfillable("bad \\x escape") from exc
                position += 4
                continue
            if escaped not in _C_ESCAPES:
                raise _Unfillable("bad escape")
            out.append(_C_ESCAPES[escaped])
            position += 2
            continue
        out.append(byte)
        position += 1
    raise _Unfillable("unterminated string")


def transform_cpe(value: bytes) -> bytes:
    """A substituted value made safe inside a CPE URI, as nmap's ``transform_cpe`` does:
    reserved characters percent-encoded, spaces to ``_``, everything else lower-cased."""
    out = bytearray()
    for byte in value:
        if byte in _CPE_RESERVED:
            out += b"%%%02X" % byte
        elif byte == ord(" "):
            out += b"_"
        else:
            out += bytes([byte]).lower()
    return bytes(out)
