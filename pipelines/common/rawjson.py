"""Records read from a JSON page without parsing what recon does not read.

A list page holds objects whose JSON text is stored as it came (``payload``) and a few
fields that become typed columns.  Parsing the whole page into dicts and serialising each
object back (orjson) was the largest CPU item of an ingest.  Instead the page is split into
the objects' own bytes (``msgspec.Raw``: a slice of the body, not re-serialised) and only
the fields named by a head struct are decoded.

A :class:`RawRecord` is a ``dict`` of those decoded fields (so the strict readers in
:mod:`pipelines.common.records` and the code that reads ``obj.get("id")`` work unchanged)
that also carries the object's text in :attr:`RawRecord.raw`; :func:`payload_text` is what
goes into ``payload`` and the quarantine.  A ``RawRecord`` is never the object itself: its
items are only the head's fields.

The fast path only changes how a well-formed page is read.  A page that is not JSON is
rejected as before (``msgspec.DecodeError`` and invalid UTF-8 become ``ValueError``, which
the HTTP client reports as a malformed body and retries); a page or an object whose shape
is not the expected one (e.g. ``data`` not a list, an object that is not a JSON object) is
parsed in full with orjson, so the usual checks see it and quarantine it with their reason.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

import msgspec
import orjson

UNSET = msgspec.UNSET


class RawRecord(dict[str, Any]):
    """The decoded head fields of a JSON object, and ``raw``: the object's JSON text."""

    __slots__ = ("raw",)

    raw: str


class ListBody(msgspec.Struct):
    """A list page: its objects as raw JSON, and whether there are more."""

    data: list[msgspec.Raw]
    has_more: Any = None


def record(raw: msgspec.Raw | bytes, head: type[msgspec.Struct]) -> Any:
    """The :class:`RawRecord` of one object (``head`` names the fields decoded); or, when the
    object does not have the head's shape, the object parsed in full (a plain value).

    Raises ``ValueError`` when the text is not valid UTF-8 JSON."""
    try:
        text = str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not valid UTF-8 ({exc})") from None
    try:
        decoded = msgspec.json.decode(raw, type=head)
    except msgspec.ValidationError:
        return orjson.loads(text)  # not the expected shape: read in full, checked as usual
    except msgspec.DecodeError as exc:
        raise ValueError(f"body is not valid JSON ({exc})") from None
    rec = RawRecord()
    for name in head.__struct_fields__:
        value = getattr(decoded, name)
        if value is not UNSET:
            rec[name] = value
    rec.raw = compact(text) if "\n" in text else text
    return rec


def compact(text: str) -> str:
    """``text`` without the whitespace between tokens (an API that pretty-prints)."""
    return msgspec.json.format(text, indent=-1)


def list_decoder(
    head: type[msgspec.Struct],
    finish: Callable[[RawRecord], Any] | None = None,
) -> Callable[[bytes], Any]:
    """A decoder of list pages for the HTTP client: ``{"data": [records], "has_more": …}``
    (see :func:`record`; ``finish`` completes each record, e.g. reads the object inside an
    event, and returns it or the object parsed in full), or the page parsed in full when
    it is not a list page."""

    def decode(body: bytes) -> Any:
        try:
            page = msgspec.json.decode(body, type=ListBody)
        except msgspec.ValidationError:
            return orjson.loads(body)  # not a list page: the caller says why
        except msgspec.DecodeError as exc:
            raise ValueError(f"body is not valid JSON ({exc})") from None
        data = [record(raw, head) for raw in page.data]
        if finish is not None:
            data = [finish(rec) if isinstance(rec, RawRecord) else rec for rec in data]
        return {"data": data, "has_more": page.has_more}

    return decode


def payload_text(obj: Any) -> str:
    """The JSON text of ``obj``: a record's own text, else ``obj`` serialised."""
    if isinstance(obj, RawRecord):
        return obj.raw
    return orjson.dumps(obj, default=_fragment, option=orjson.OPT_PASSTHROUGH_SUBCLASS).decode()


def _fragment(obj: Any) -> Any:
    """orjson's ``default``: a record inside a value is written as its own text."""
    if isinstance(obj, RawRecord):
        return orjson.Fragment(obj.raw)
    if isinstance(obj, Enum):
        return obj.value
    for base in (dict, list, str, int, float):
        if isinstance(obj, base):
            return base(obj)
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")
