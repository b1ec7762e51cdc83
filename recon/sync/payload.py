"""The sync payload: the rows of ``sync_hubspot__companies`` as the values recon would send.

The gate validates exactly these rows and records their fingerprint; the sync recomputes
the fingerprint before it writes and refuses to push anything the gate did not see.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from recon.config import ConfigError
from recon.sync.values import SYNC_PROPERTIES, wire_value
from recon.sync.warehouse import Conn, as_warehouse

SYNC_MODEL = "sync_hubspot__companies"


@dataclass(frozen=True)
class SyncRow:
    hubspot_company_id: str | None
    values: dict[str, str | None]  # property -> wire value (None: no correction)
    finding_ids: tuple[str, ...]

    def changes(self) -> dict[str, str]:
        return {p: v for p, v in self.values.items() if v is not None}


def parse_finding_ids(value: object) -> tuple[str, ...]:
    """``finding_ids`` as a list, a JSON array, or a comma-separated string."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if v is not None and str(v) != "")
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return tuple(str(v) for v in parsed if v is not None and str(v) != "")
    return tuple(part.strip() for part in text.split(",") if part.strip())


def read_sync_rows(con: Conn) -> list[SyncRow]:
    """Every row of the sync model, values formatted as they would be sent."""
    wh = as_warehouse(con)
    rel = wh.relation(SYNC_MODEL)
    present = set(wh.columns(rel))
    missing = [
        c for c in ("hubspot_company_id", *SYNC_PROPERTIES, "finding_ids") if c not in present
    ]
    if missing:
        raise ConfigError(f"{SYNC_MODEL} lacks the columns {', '.join(missing)}")
    cols = ", ".join(["hubspot_company_id", *SYNC_PROPERTIES, "finding_ids"])
    rows = wh.fetchall(f"select {cols} from {rel}")
    out: list[SyncRow] = []
    for row in rows:
        company = None if row[0] is None else str(row[0])
        values = {p: wire_value(p, row[1 + i]) for i, p in enumerate(SYNC_PROPERTIES)}
        out.append(SyncRow(company, values, parse_finding_ids(row[-1])))
    out.sort(key=lambda r: (r.hubspot_company_id or "", json.dumps(r.values, sort_keys=True)))
    return out


def fingerprint(rows: Iterable[SyncRow]) -> str:
    """sha256 over the (company, property, value) triples the rows would write.

    Finding ids are not part of it: they explain a value but are never written.
    """
    triples = sorted(
        (r.hubspot_company_id or "", p, v)
        for r in rows
        for p, v in r.values.items()
        if v is not None
    )
    canonical = json.dumps(triples, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
