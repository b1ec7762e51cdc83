"""Writes planned changes with ``batch/update`` and reads them back.

Batches hold at most 100 companies (each with all of its changed properties).  Per batch:

* the changes are journalled ``sent`` before the request leaves;
* 200/207: each id in ``results`` succeeded; each id named by an error failed, with
  HubSpot's category and message; an input in neither was not applied and is sent again
  (a bounded number of times); errors that name no id (a validation error in a 207) are
  isolated by splitting what is left;
* 400 (or another 4xx) for the whole batch: split in halves until the bad inputs stand
  alone; a lone company that still fails is split by property, so that only the bad
  (company, property) changes fail;
* the outcomes are journalled as soon as the batch and its splits are done.

A batch HubSpot never answered (retries ran out) stays ``sent``: the read-back, or the next
run, finds out whether it landed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from recon.killpoints import kill_point
from recon.sync.audit import FAILED, MISMATCH, SENT, SUCCEEDED, VERIFIED, Change, SyncJournal
from recon.sync.hubspot_client import (
    BATCH_LIMIT,
    HubSpotClient,
    HubSpotResponse,
    HubSpotUnavailable,
)
from recon.sync.values import SYNC_PROPERTIES, same_value

log = logging.getLogger(__name__)

UNACKED_ATTEMPTS = 3
#: batches in flight at once: enough to fill HubSpot's window (19 requests/s) at 200-400 ms a
#: request, with the journal work between them on one thread
DEFAULT_CONCURRENCY = 8


@dataclass
class _Input:
    """One company's input of a batch: its changes (one per property)."""

    object_id: str
    changes: list[Change]

    def body(self) -> dict[str, object]:
        return {"id": self.object_id, "properties": {c.property: c.new_value for c in self.changes}}


@dataclass
class WriteOutcome:
    batches: int = 0
    requests: int = 0
    unavailable: str | None = None  # HubSpot kept failing: the rest was not sent


def _error_text(category: str, message: str) -> str:
    text = f"{category or 'ERROR'}: {message}".strip()
    return text if len(text) <= 2000 else text[:1997] + "..."


def _error_ids(error: dict[str, object]) -> list[str]:
    context = error.get("context")
    if not isinstance(context, dict):
        return []
    ids: list[str] = []
    for key in ("ids", "id"):
        value = context.get(key)
        if isinstance(value, list):
            ids.extend(str(v) for v in value)
        elif value is not None:
            ids.append(str(value))
    return ids


@dataclass
class Writer:
    """Sends the batches, ``concurrency`` of them in flight at once.

    HubSpot answers a batch in a few hundred milliseconds, so one request at a time uses a
    fraction of its 190-per-10-s window; several in flight fill it, and the client's shared
    window keeps them under the limit.  Only this thread touches the journal: a batch is
    journalled ``sent`` before it is handed to a worker, its outcomes once it is done.
    """

    client: HubSpotClient
    journal: SyncJournal
    object_type: str = "companies"
    batch_size: int = BATCH_LIMIT
    on_batch: Callable[[int, int], None] | None = None  # (batches done, batches)
    concurrency: int = DEFAULT_CONCURRENCY
    outcome: WriteOutcome = field(default_factory=WriteOutcome)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, changes: Sequence[Change]) -> WriteOutcome:
        outside = sorted({c.property for c in changes} - set(SYNC_PROPERTIES))
        if outside:
            raise ValueError(f"recon never writes the properties {', '.join(outside)}")
        by_object: dict[str, list[Change]] = {}
        for c in changes:
            by_object.setdefault(c.object_id, []).append(c)
        inputs = [_Input(oid, cs) for oid, cs in by_object.items()]
        batches = [inputs[i : i + self.batch_size] for i in range(0, len(inputs), self.batch_size)]
        if not batches:
            return self.outcome
        pending = iter(batches)
        in_flight: dict[Future[None], list[Change]] = {}
        unavailable: HubSpotUnavailable | None = None
        done = 0
        with self.journal.held(), ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:

            def submit() -> bool:
                batch = next(pending, None)
                if batch is None:
                    return False
                batch_changes = [c for inp in batch for c in inp.changes]
                self.journal.mark_sent(batch_changes)
                # crash tests: killed once a batch is journalled ``sent``, before it leaves
                kill_point("RECON_SYNC_KILL_AT", "sent")
                in_flight[pool.submit(self._send_batch, batch)] = batch_changes
                return True

            while len(in_flight) < max(1, self.concurrency) and submit():
                pass
            while in_flight:
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    batch_changes = in_flight.pop(future)
                    try:
                        future.result()
                    except HubSpotUnavailable as exc:
                        unavailable = unavailable or exc
                        for c in batch_changes:
                            if c.status == SENT:
                                c.error = f"no answer from HubSpot: {exc}"
                        self.journal.record_outcomes(batch_changes)
                        self.journal.record_errors(c for c in batch_changes if c.status == SENT)
                        continue
                    self.journal.record_outcomes(batch_changes)
                    self.outcome.batches += 1
                    done += 1
                    if self.on_batch:
                        self.on_batch(done, len(batches))
                    if unavailable is None:
                        submit()
        if unavailable is not None:
            self.outcome.unavailable = str(unavailable)
            rest = [c for batch in pending for inp in batch for c in inp.changes]
            for c in rest:
                c.status = FAILED
                c.error = f"not sent: HubSpot was unavailable ({unavailable})"
            self.journal.record_outcomes(rest)
        return self.outcome

    # ---------------------------------------------------------------- one request

    def _send_batch(self, batch: list[_Input]) -> None:
        # the first request of each change was counted by ``mark_sent``
        self._send(batch, attempt=1, counted={id(c) for inp in batch for c in inp.changes})

    def _post(self, batch: Sequence[_Input], counted: set[int]) -> HubSpotResponse:
        with self._lock:
            self.outcome.requests += 1
        for inp in batch:
            for c in inp.changes:
                if id(c) in counted:
                    counted.discard(id(c))
                else:
                    c.attempts += 1
        return self.client.batch_update(self.object_type, [inp.body() for inp in batch])

    def _send(self, batch: list[_Input], attempt: int, counted: set[int]) -> None:
        response = self._post(batch, counted)
        if 400 <= response.status < 500:
            self._isolate(batch, _error_text(response.category, response.message), attempt, counted)
            return
        if not 200 <= response.status < 300:
            # 1xx/3xx: HubSpot never answers batch writes so; nothing is known to be applied
            self._fail(batch, _error_text("UNEXPECTED_STATUS", f"HTTP {response.status}"))
            return
        results = {
            str(r.get("id")) for r in response.body.get("results") or [] if isinstance(r, dict)
        }
        attributed: dict[str, str] = {}
        unattributed: list[str] = []
        for err in response.body.get("errors") or []:
            if not isinstance(err, dict):
                continue
            text = _error_text(str(err.get("category") or ""), str(err.get("message") or ""))
            ids = _error_ids(err)
            if ids:
                for i in ids:
                    attributed.setdefault(i, text)
            else:
                unattributed.append(text)
        rest: list[_Input] = []
        for inp in batch:
            if inp.object_id in results:
                for c in inp.changes:
                    c.status, c.error = SUCCEEDED, None
            elif inp.object_id in attributed:
                for c in inp.changes:
                    c.status, c.error = FAILED, attributed[inp.object_id]
            else:
                rest.append(inp)
        if not rest:
            return
        if unattributed:
            # a 207 whose errors name no input: isolate them as for a 400
            self._isolate(rest, "; ".join(unattributed), attempt, counted)
        elif attempt < UNACKED_ATTEMPTS:
            log.info("%d inputs neither applied nor failed; sending them again", len(rest))
            self._send(rest, attempt + 1, counted)
        else:
            self._fail(
                rest,
                _error_text(
                    "NOT_ACKNOWLEDGED",
                    f"HubSpot named these inputs neither in results nor in errors "
                    f"{UNACKED_ATTEMPTS} times",
                ),
            )

    def _isolate(self, batch: list[_Input], text: str, attempt: int, counted: set[int]) -> None:
        """The whole batch was refused: split it until the bad inputs stand alone."""
        if len(batch) > 1:
            middle = len(batch) // 2
            self._send(batch[:middle], attempt, counted)
            self._send(batch[middle:], attempt, counted)
            return
        (inp,) = batch
        if len(inp.changes) > 1:
            for c in inp.changes:
                self._send([_Input(inp.object_id, [c])], attempt, counted)
            return
        self._fail(batch, text)

    @staticmethod
    def _fail(batch: Sequence[_Input], text: str) -> None:
        for inp in batch:
            for c in inp.changes:
                c.status, c.error = FAILED, text


def read_back(
    client: HubSpotClient,
    changes: Sequence[Change],
    prop_types: dict[str, str],
    object_type: str = "companies",
) -> list[tuple[Change, str | None]]:
    """The outcome proof: read the written objects and judge each change.

    ``succeeded`` becomes ``verified`` or ``mismatch``; ``sent`` (no answer was seen, or the
    run that sent it died) becomes ``verified`` when HubSpot holds the value, else ``failed``.
    """
    todo = [c for c in changes if c.status in (SUCCEEDED, SENT)]
    if not todo:
        return []
    props = sorted({c.property for c in todo})
    current = client.batch_read(object_type, [c.object_id for c in todo], props)
    verdicts: list[tuple[Change, str | None]] = []
    for c in todo:
        found = current.found.get(c.object_id)
        seen = None if found is None else found.get(c.property)
        seen_text = None if seen is None else str(seen)
        holds = found is not None and same_value(
            prop_types.get(c.property, "string"), seen, c.new_value
        )
        if holds:
            c.status, c.error = VERIFIED, None
        elif c.status == SUCCEEDED:
            c.status = MISMATCH
            c.error = (
                "HubSpot no longer has this object"
                if found is None
                else f"read back {seen_text!r}, expected {c.new_value!r}"
            )
        else:
            c.status = FAILED
            c.error = (c.error + "; " if c.error else "") + (
                "not applied: HubSpot does not hold the value"
                + ("" if found is None else f" (read back {seen_text!r})")
            )
        verdicts.append((c, seen_text))
    return verdicts
