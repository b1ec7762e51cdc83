"""``recon chaos``: crash and fault the whole pipeline, then prove it converged anyway.

1. **Generate** a small world (``--customers``, ``--seed``) and copy it twice; copy the dbt
   project too (``RECON_DBT_PROJECT_DIR``), so that both runs build the same models.
2. **Clean run** on the first copy, against a fault-free sandbox: ``recon run --apply``, then
   ``recon ingest`` and ``recon build`` again (what HubSpot looks like after the sync).  Its
   final tables, the sandbox's served HubSpot companies and its write journal are the
   reference.  The stage markers ``recon run`` prints (``1/4 ingest`` ... ``4/4 sync``) time
   each stage.
3. **Chaos run** on the second copy, against a sandbox that answers with 5xx, drops
   connections, truncates bodies, stalls past the client's timeout, slows every answer and
   now and then throws a 429 storm.  ``recon run --apply`` runs as a subprocess and is
   SIGKILLed ``--kills`` times at seeded random points of ingest, build and sync (a random
   delay after the stage's marker, up to the stage's clean duration), each time rerun; after
   the last kill it is rerun until it succeeds, then ``recon ingest`` and ``recon build`` run
   again (rerun until they succeed) like the clean run's.
4. **Checks**: every warehouse table (raw, staging, intermediate, marts, ``rec_findings``,
   the sync model; dlt's columns and fetch times left out) equals the clean run's; HubSpot's
   served companies equal the clean run's; the write journal holds no (company, property)
   written with two different values, and the same set of (company, property, value) as
   the clean run's journal, none missing and none extra; no sync change is left unresolved.

Everything happens under ``--workdir`` (default ``target/chaos``), which is recreated.
The run prints every attempt (what was killed, in which stage, when) and every check; the
command exits 0 when all checks held and 1 when one did not.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from rich.console import Console

from recon.errors import ReconError
from recon.sandbox.faults import FaultConfig
from recon.sandbox.process import SandboxHandle, running_sandbox
from recon.sandbox.world import WorldConfig

#: The stages ``recon run`` announces, in order (``run_pipeline`` prints ``n/4 <stage>``).
STAGES = ("ingest", "build", "validate", "sync")
#: The stages the chaos run kills in (validate is crossed, and may be killed, on the way).
KILL_STAGES = ("ingest", "build", "sync")
_MARKER = re.compile(r"\b([1-4])/4 (ingest|build|validate|sync)\b")

#: Schemas whose tables and views are compared (``recon_audit`` is run bookkeeping).
COMPARED_SCHEMAS = (
    "raw_stripe",
    "raw_hubspot",
    "main",
    "main_intermediate",
    "main_staging",
    "main_seeds",
)
#: Relations that only restate run bookkeeping: recon's audit tables (run ids, wall-clock
#: times), and the findings' history, which records the builds themselves (a chaos run that
#: was killed and rerun builds more often, and a killed sync's write may be proved only
#: after the next build, so who resolved a finding can differ).
SKIPPED_RELATIONS = frozenset(
    {
        "main_staging.stg_recon_audit__ingest_runs",
        "main_staging.stg_recon_audit__sync_changes",
        "main.rec_findings_history",
    }
)
#: Kill delays are drawn from this share of a stage's clean duration: the sync stage's
#: duration includes the summary and the process's exit, and a kill after its writes and
#: proof would only hit a finished sync.
STAGE_SPAN_SHARE = {"sync": 0.6}
#: A kill triggered by a HubSpot write strikes within this many seconds of it: on loopback
#: the sync records the answer and reads the batch back within about 50 ms.
WRITE_KILL_WINDOW_S = 0.04
#: The HTTP client timeout (``RECON_HTTP_TIMEOUT_S``) during the chaos run; the sandbox's
#: timeout faults stall one second longer, so the client's own timeout fires.
CLIENT_TIMEOUT_S = 3.0


class ChaosError(ReconError):
    """The chaos run could not be carried out (the clean run failed, a run never finished)."""


#: Columns the models derive from fetch or build times (wall clock): ``built_at`` stamps the
#: incremental models' rows, ``changed_at`` the build that last changed a subscription's MRR
#: inputs, ``observed_unix``/``last_seen_unix`` are a subscription's or coupon's
#: ``fetched_at``, ``landed_at`` a discount sighting's source's.
_WALL_CLOCK_COLUMNS = frozenset(
    {"built_at", "changed_at", "observed_unix", "last_seen_unix", "landed_at"}
)


def _volatile(column: str) -> bool:
    """Columns that say when or by which load a row was fetched or built, not what it is."""
    return (
        column.startswith("_dlt")
        or column.endswith("fetched_at")
        or column.endswith("quarantined_at")
        or column in _WALL_CLOCK_COLUMNS
    )


@dataclass(frozen=True)
class ChaosOptions:
    customers: int = 300
    seed: int = 1
    kills: int = 24
    workdir: Path = Path("target") / "chaos"
    #: The fault mix of the chaos sandbox (a 429 storm is laid over it now and then).
    faults: FaultConfig = field(
        default_factory=lambda: FaultConfig(
            error_share=0.04,
            drop_share=0.02,
            truncate_share=0.02,
            timeout_share=0.01,
            timeout_s=CLIENT_TIMEOUT_S + 1.0,
            rate_limit_share=0.02,
            latency_ms=15.0,
        )
    )
    storm_every_s: float = 20.0
    storm_s: float = 1.5
    storm_share: float = 0.8
    #: Run the clean run beside the chaos run (faster on a machine with idle time; the kill
    #: delays then follow ``stage_estimates_s`` rather than the clean run's durations).
    concurrent_clean: bool = False
    stage_estimates_s: dict[str, float] = field(
        default_factory=lambda: {"ingest": 6.0, "build": 12.0, "sync": 3.0}
    )
    #: Give up when the pipeline does not succeed after this many attempts past the kills.
    max_final_attempts: int = 6
    #: Any one attempt that runs longer than this is a hang: killed and reported.
    attempt_timeout_s: float = 900.0


@dataclass
class Attempt:
    """One subprocess run of a command in the chaos run."""

    number: int
    command: str
    planned_stage: str | None = None
    planned_delay_s: float | None = None
    killed_stage: str | None = None
    killed_after_stage_s: float | None = None  # seconds after the stage's marker
    killed_after_start_s: float | None = None
    trigger: str = "the stage began"  # what the kill delay counted from
    killed_after_trigger_s: float | None = None
    exit_code: int | None = None
    seconds: float = 0.0
    last_line: str = ""

    @property
    def killed(self) -> bool:
        return self.killed_stage is not None

    def describe(self) -> str:
        if self.killed:
            after = (
                f"; {self.killed_after_trigger_s:.2f} s after {self.trigger}"
                if self.trigger != "the stage began"
                else ""
            )
            return (
                f"attempt {self.number:>2} {self.command}: SIGKILL in {self.killed_stage} "
                f"{self.killed_after_stage_s:.2f} s after it began{after} "
                f"({self.killed_after_start_s:.1f} s into the run)"
            )
        how = "succeeded" if self.exit_code == 0 else f"exited {self.exit_code}"
        planned = (
            f"; planned kill in {self.planned_stage} {self.planned_delay_s:.2f} s after "
            f"{self.trigger} missed: the run got there first"
            if self.planned_stage
            else ""
        )
        tail = f" ({self.last_line})" if self.exit_code not in (0, None) and self.last_line else ""
        return (
            f"attempt {self.number:>2} {self.command}: {how} in {self.seconds:.1f} s{planned}{tail}"
        )


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class ChaosReport:
    options: ChaosOptions
    stage_seconds: dict[str, float] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    storms: int = 0
    sync_runs: dict[str, int] = field(default_factory=dict)  # chaos warehouse, by status
    leftovers_resolved: int = 0
    seconds: float = 0.0

    @property
    def kills(self) -> list[Attempt]:
        return [a for a in self.attempts if a.killed]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)


# -- running recon as a subprocess ------------------------------------------------------------


#: What dbt reads of the project (dbt_project.yml's paths, and the profile).
PROJECT_FILES = ("dbt_project.yml", "profiles.yml")
PROJECT_DIRS = ("models", "macros", "seeds", "snapshots", "analyses", "tests/dbt")


def snapshot_project(dest: Path) -> Path:
    """Copy the dbt project to ``dest``: the clean and the chaos run must build the same
    models, and a working tree may change while the chaos run goes on."""
    from recon.build import project_dir

    source = project_dir()
    # absolute: the runs start in their own directories (a relative --dir broke `make chaos`)
    dest = dest.resolve()
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        shutil.copy2(source / name, dest / name)
    for name in PROJECT_DIRS:
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name)
    return dest


@dataclass
class _Run:
    """Where one side (clean or chaos) runs: its world copy, warehouse and environment."""

    root: Path
    world: Path
    warehouse: Path
    env: dict[str, str]

    @classmethod
    def prepare(cls, root: Path, template: Path, project: Path) -> _Run:
        root.mkdir(parents=True)
        world = root / "world"
        shutil.copytree(template, world)
        config = WorldConfig.load(world)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RECON_", "STRIPE_", "HUBSPOT_", "DBT_"))
        }
        env.update(
            {
                "STRIPE_API_KEY": config.stripe_api_key,
                "HUBSPOT_ACCESS_TOKEN": config.hubspot_access_token,
                "STRIPE_RATE_LIMIT_PER_S": str(config.stripe_rate_limit_per_s or 0),
                "RECON_HTTP_TIMEOUT_S": str(CLIENT_TIMEOUT_S),
                # dbt's artefacts and logs stay in this run's folder, not the project's
                "DBT_TARGET_PATH": str(root / "target"),
                "DBT_LOG_PATH": str(root / "logs"),
                # both runs build the same snapshot of the models, whatever happens to the
                # working tree meanwhile
                "RECON_DBT_PROJECT_DIR": str(project),
                "PYTHONUNBUFFERED": "1",
                "COLUMNS": "100",
            }
        )
        return cls(root=root, world=world, warehouse=root / "recon.duckdb", env=env)

    def command(self, name: str, base_url: str, max_changes: int) -> list[str]:
        """``recon <name>`` against the sandbox at ``base_url``, on this run's warehouse."""
        recon = [sys.executable, "-m", "recon.cli"]
        common = [
            "--warehouse",
            str(self.warehouse),
            "--stripe-api-base",
            base_url,
            "--hubspot-api-base",
            base_url,
        ]
        if name == "run":
            return [*recon, "run", "--apply", "--max-changes", str(max_changes), "--quiet", *common]
        if name == "ingest":
            return [*recon, "ingest", "--quiet", *common]
        if name == "build":
            # as ``recon run`` and ``recon demo`` build: unit tests check the SQL, not the data
            return [*recon, "build", "--skip-unit-tests", *common[:2]]
        raise ValueError(f"unknown command {name!r}")


class _Watcher:
    """Reads a child's stdout into its log and timestamps the stage markers."""

    def __init__(self, stream: IO[bytes], log: IO[bytes]) -> None:
        self.marks: dict[str, float] = {}
        self.last_line = ""
        self.changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream, log), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes], log: IO[bytes]) -> None:
        for raw in stream:
            log.write(raw)
            line = raw.decode(errors="replace")
            if line.strip():
                self.last_line = line.strip()[:200]
            m = _MARKER.search(line)
            if m:
                with self.changed:
                    self.marks.setdefault(m.group(2), time.monotonic())
                    self.changed.notify_all()
        log.flush()

    def join(self) -> None:
        self._thread.join(timeout=10)


def _attempt(
    run: _Run,
    name: str,
    base_url: str,
    max_changes: int,
    number: int,
    log: IO[bytes],
    *,
    kill_stage: str | None = None,
    kill_delay_s: float = 0.0,
    timeout_s: float = 900.0,
    marks: dict[str, float] | None = None,
    after_write: Path | None = None,
) -> Attempt:
    """Run ``recon <name>`` once; with ``kill_stage``, SIGKILL it ``kill_delay_s`` after that
    stage's marker (unless it ends first).  With ``after_write`` (the sandbox's write
    journal), the delay counts from the moment HubSpot applied a write after the marker:
    the sync is then killed between applying and proving its changes."""
    attempt = Attempt(
        number=number,
        command=f"recon {name}",
        planned_stage=kill_stage,
        planned_delay_s=kill_delay_s if kill_stage else None,
        trigger="a HubSpot write landed" if after_write else "the stage began",
    )
    log.write(f"\n===== attempt {number}: recon {name} =====\n".encode())
    log.flush()
    started = time.monotonic()
    proc = subprocess.Popen(
        run.command(name, base_url, max_changes),
        cwd=run.root,
        env=run.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kill takes any child with it
    )
    assert proc.stdout is not None
    watcher = _Watcher(proc.stdout, log)
    deadline = started + timeout_s
    try:
        if kill_stage is not None:
            with watcher.changed:
                while kill_stage not in watcher.marks and proc.poll() is None:
                    watcher.changed.wait(timeout=0.05)
                    if time.monotonic() > deadline:
                        break
            mark = watcher.marks.get(kill_stage)
            if mark is not None and after_write is not None:
                size = _size(after_write)
                while proc.poll() is None and _size(after_write) <= size:
                    time.sleep(0.002)
                mark = time.monotonic()
            if mark is not None:
                kill_at = mark + kill_delay_s
                while proc.poll() is None and time.monotonic() < kill_at:
                    time.sleep(min(0.01, max(kill_at - time.monotonic(), 0.0)))
                if proc.poll() is None:
                    now = time.monotonic()
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    attempt.killed_stage = _stage_at(watcher.marks, now)
                    attempt.killed_after_stage_s = now - watcher.marks[attempt.killed_stage]
                    attempt.killed_after_trigger_s = now - mark
                    attempt.killed_after_start_s = now - started
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            attempt.last_line = f"hung for {timeout_s:.0f} s and was killed"
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    watcher.join()
    attempt.exit_code = proc.returncode
    attempt.seconds = time.monotonic() - started
    attempt.last_line = attempt.last_line or watcher.last_line
    if marks is not None:
        marks.update({s: t - started for s, t in watcher.marks.items()})
        marks["end"] = attempt.seconds
    return attempt


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _stage_at(marks: dict[str, float], at: float) -> str:
    """The stage running at ``at``: the last one whose marker came before it."""
    seen = [(t, s) for s, t in marks.items() if t <= at]
    return max(seen)[1] if seen else "start"


# -- the fault schedule: a steady mix, with 429 storms laid over it -------------------------------


@contextlib.contextmanager
def _storms(sandbox: SandboxHandle, options: ChaosOptions, report: ChaosReport) -> Iterator[None]:
    """Now and then, ``storm_s`` seconds in which most answers are 429s."""
    stop = threading.Event()
    base = options.faults

    def storm_config(k: int) -> FaultConfig:
        data = base.to_dict()
        data.update(
            seed=base.seed + 1000 + k,
            rate_limit_share=options.storm_share,
            error_share=0.0,
            drop_share=0.0,
            truncate_share=0.0,
            timeout_share=0.0,
        )
        return FaultConfig.from_dict(data)

    def loop() -> None:
        k = 0
        while not stop.wait(options.storm_every_s):
            k += 1
            with contextlib.suppress(ReconError):
                sandbox.set_faults(storm_config(k))
                report.storms += 1
                stop.wait(options.storm_s)
                sandbox.set_faults(_with_seed(base, base.seed + k))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sandbox.set_faults(None)


def _with_seed(config: FaultConfig, seed: int) -> FaultConfig:
    data = config.to_dict()
    data["seed"] = seed
    return FaultConfig.from_dict(data)


# -- what is compared ---------------------------------------------------------------------------

Rows = list[tuple[Any, ...]]


def snapshot_tables(warehouse: Path) -> dict[str, Rows]:
    """Every compared table and view, without volatile columns, rows sorted."""
    import duckdb

    out: dict[str, Rows] = {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        relations = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in (select unnest(?::varchar[])) order by 1, 2",
            [list(COMPARED_SCHEMAS)],
        ).fetchall()
        for schema, table in relations:
            name = f"{schema}.{table}"
            if table.startswith("_dlt") or name in SKIPPED_RELATIONS:
                continue
            cols = [
                str(c)
                for (c,) in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by column_name",
                    [schema, table],
                ).fetchall()
                if not _volatile(str(c))
            ]
            if not cols:
                continue
            quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
            rows = con.execute(f'select {quoted} from "{schema}"."{table}"').fetchall()
            out[name] = sorted(rows, key=repr)
    finally:
        con.close()
    return out


def compare_tables(clean: dict[str, Rows], chaos: dict[str, Rows]) -> list[str]:
    """One line per table that differs (missing, extra, or rows not equal)."""
    problems: list[str] = []
    for name in sorted(set(clean) | set(chaos)):
        if name not in chaos:
            problems.append(f"{name}: missing after the chaos run")
            continue
        if name not in clean:
            problems.append(f"{name}: not in the clean run")
            continue
        a, b = Counter(map(repr, clean[name])), Counter(map(repr, chaos[name]))
        if a == b:
            continue
        lost, extra = a - b, b - a
        sample = next(iter(lost or extra))
        problems.append(
            f"{name}: {sum(lost.values())} clean rows missing, {sum(extra.values())} extra "
            f"(e.g. {'missing' if lost else 'extra'} {sample[:160]})"
        )
    return problems


def hubspot_companies(sandbox: SandboxHandle) -> dict[str, dict[str, Any]]:
    """Every company the sandbox serves (live and archived), with every property."""
    headers = {"Authorization": f"Bearer {sandbox.hubspot_access_token}"}
    out: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=60) as client:

        def get(path: str, params: list[tuple[str, str | int | float | bool | None]]) -> Any:
            for _ in range(60):
                resp = client.get(path, params=params)
                if resp.status_code == 429:
                    time.sleep(float(resp.headers.get("Retry-After", "1")))
                    continue
                resp.raise_for_status()
                return resp.json()
            raise ChaosError(f"the sandbox kept answering 429 to {path}")

        names = sorted(p["name"] for p in get("/crm/v3/properties/companies", [])["results"])
        for archived in ("false", "true"):
            after = ""
            while True:
                params: list[tuple[str, str | int | float | bool | None]] = [
                    ("limit", "100"),
                    ("archived", archived),
                ]
                params += [("properties", n) for n in names]
                if after:
                    params.append(("after", after))
                page = get("/crm/v3/objects/companies", params)
                for obj in page["results"]:
                    out[str(obj["id"])] = obj
                after = str(((page.get("paging") or {}).get("next") or {}).get("after") or "")
                if not after:
                    break
    return out


def read_writes(world: Path) -> list[dict[str, Any]]:
    path = world / "hubspot" / "writes.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def journal_values(writes: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[str]]:
    """(object type, id, property) -> every value written to it, in order."""
    out: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for w in writes:
        for prop, value in (w.get("properties") or {}).items():
            out[(str(w.get("object_type")), str(w["id"]), str(prop))].append(
                "" if value is None else str(value)
            )
    return out


@dataclass(frozen=True)
class JournalComparison:
    """The chaos run's write journal against the clean run's."""

    conflicting: dict[tuple[str, str, str], list[str]]  # written with different values
    missing: list[tuple[str, ...]]  # (type, id, property, value) the clean run wrote, not chaos
    extra: list[tuple[str, ...]]  # written by the chaos run only
    expected: int  # (type, id, property, value) in the clean journal
    writes: int  # property writes in the chaos journal
    pairs: int  # distinct (type, id, property) in the chaos journal
    repeated: int  # of which written more than once (with the same value)


def compare_journals(clean: list[dict[str, Any]], chaos: list[dict[str, Any]]) -> JournalComparison:
    want_by_key = journal_values(clean)
    got_by_key = journal_values(chaos)
    want = {(*k, v[-1]) for k, v in want_by_key.items()}
    got = {(*k, value) for k, vs in got_by_key.items() for value in set(vs)}
    return JournalComparison(
        conflicting={k: v for k, v in got_by_key.items() if len(set(v)) > 1},
        missing=sorted(want - got),
        extra=sorted(got - want),
        expected=len(want),
        writes=sum(len(v) for v in got_by_key.values()),
        pairs=len(got_by_key),
        repeated=sum(1 for v in got_by_key.values() if len(v) > 1),
    )


def sync_run_statuses(warehouse: Path) -> tuple[dict[str, int], int]:
    """Sync runs by status, and the changes later runs resolved for dead ones."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select status, count(*), coalesce(sum(leftovers_resolved), 0) "
            "from recon_audit.sync_runs group by status order by status"
        ).fetchall()
    finally:
        con.close()
    return {str(s): int(n) for s, n, _ in rows}, sum(int(r) for _, _, r in rows)


def unresolved_sync_changes(warehouse: Path) -> list[tuple[Any, ...]]:
    """Sync changes still ``planned``, ``sent``, ``succeeded`` or ``mismatch`` (unproven)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "select run_id, object_id, property, status from recon_audit.sync_changes "
            "where status in ('planned', 'sent', 'succeeded', 'mismatch')"
        ).fetchall()
    finally:
        con.close()


def _checks(
    clean: _Run,
    chaos: _Run,
    clean_tables: dict[str, Rows],
    clean_companies: dict[str, dict[str, Any]],
    chaos_companies: dict[str, dict[str, Any]],
    report: ChaosReport,
    options: ChaosOptions,
) -> list[Check]:
    checks: list[Check] = []
    kills = report.kills
    by_stage = Counter(a.killed_stage for a in kills)
    missing_stages = [s for s in KILL_STAGES if not by_stage.get(s)]
    checks.append(
        Check(
            f"at least {options.kills} SIGKILLs, in each of {', '.join(KILL_STAGES)}",
            len(kills) >= options.kills and not missing_stages,
            f"{len(kills)} kills: "
            + ", ".join(f"{s} {n}" for s, n in sorted(by_stage.items()))
            + (f"; none in {', '.join(missing_stages)}" if missing_stages else ""),
        )
    )
    faults = {k: v for k, v in report.faults.items() if v}
    checks.append(
        Check(
            "the sandbox injected faults and 429 storms",
            bool(faults) and report.storms > 0,
            ", ".join(f"{k} {v}" for k, v in sorted(faults.items())) + f"; {report.storms} storms",
        )
    )

    problems = compare_tables(clean_tables, snapshot_tables(chaos.warehouse))
    checks.append(
        Check(
            f"warehouse tables equal the clean run's ({len(clean_tables)} tables and views)",
            not problems,
            "; ".join(problems[:8])
            + (f"; ... {len(problems) - 8} more" if len(problems) > 8 else ""),
        )
    )

    differ = sorted(
        i
        for i in set(clean_companies) | set(chaos_companies)
        if clean_companies.get(i) != chaos_companies.get(i)
    )
    detail = f"{len(chaos_companies)} companies"
    if differ:
        first = differ[0]
        a = (clean_companies.get(first) or {}).get("properties") or {}
        b = (chaos_companies.get(first) or {}).get("properties") or {}
        props = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        detail = f"{len(differ)} companies differ, e.g. {first}: " + ", ".join(
            f"{p} clean {a.get(p)!r} chaos {b.get(p)!r}" for p in props[:4]
        )
    checks.append(Check("HubSpot companies equal the clean run's", not differ, detail))

    j = compare_journals(read_writes(clean.world), read_writes(chaos.world))
    checks.append(
        Check(
            "no (company, property) written twice with different values",
            not j.conflicting,
            (
                f"{len(j.conflicting)} conflicting, e.g. "
                + ", ".join(f"{k[1]} {k[2]}: {v}" for k, v in list(j.conflicting.items())[:3])
                if j.conflicting
                else f"{j.writes} property writes on {j.pairs} (company, property) pairs; "
                f"{j.repeated} repeated with the same value"
            ),
        )
    )
    checks.append(
        Check(
            "every change the clean run wrote was written, and nothing else",
            not j.missing and not j.extra and j.expected > 0,
            f"{j.expected} changes in the clean journal"
            + (f"; missing {len(j.missing)}, e.g. {j.missing[:3]}" if j.missing else "")
            + (f"; extra {len(j.extra)}, e.g. {j.extra[:3]}" if j.extra else ""),
        )
    )
    open_changes = unresolved_sync_changes(chaos.warehouse)
    checks.append(
        Check(
            "no sync change left unresolved in recon_audit.sync_changes",
            not open_changes,
            f"{len(open_changes)} unresolved, e.g. {open_changes[:3]}" if open_changes else "",
        )
    )
    return checks


# -- the run -------------------------------------------------------------------------------------


def plan_kills(options: ChaosOptions) -> list[str]:
    """The stage of each kill: as even a share of ingest, build and sync as the count allows,
    in a seeded random order."""
    rng = random.Random(options.seed)
    stages = [KILL_STAGES[i % len(KILL_STAGES)] for i in range(options.kills)]
    rng.shuffle(stages)
    return stages


def _run_until_success(
    run: _Run,
    name: str,
    base_url: str,
    max_changes: int,
    report: ChaosReport,
    log: IO[bytes],
    options: ChaosOptions,
    out: Console,
) -> None:
    for _ in range(options.max_final_attempts):
        attempt = _attempt(
            run,
            name,
            base_url,
            max_changes,
            len(report.attempts) + 1,
            log,
            timeout_s=options.attempt_timeout_s,
        )
        report.attempts.append(attempt)
        out.print(attempt.describe(), highlight=False)
        if attempt.exit_code == 0:
            return
    raise ChaosError(
        f"recon {name} did not succeed in {options.max_final_attempts} attempts after the "
        f"kills (log: {log.name})"
    )


@dataclass
class _CleanResult:
    tables: dict[str, Rows] = field(default_factory=dict)
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    error: BaseException | None = None


def _clean_run(
    clean: _Run,
    max_changes: int,
    options: ChaosOptions,
    result: _CleanResult,
    out: Console | None = None,
) -> None:
    """``recon run --apply``, ``recon ingest``, ``recon build`` with no faults and no kills;
    the reference tables, companies and stage durations go into ``result``."""

    def say(line: str) -> None:
        result.lines.append(line)
        if out is not None:
            out.print(line, highlight=False)

    try:
        marks: dict[str, float] = {}
        with (clean.root / "recon.log").open("wb") as log, running_sandbox(clean.world) as sb:
            for name in ("run", "ingest", "build"):
                attempt = _attempt(
                    clean,
                    name,
                    sb.base_url,
                    max_changes,
                    0,
                    log,
                    timeout_s=options.attempt_timeout_s,
                    marks=marks if name == "run" else None,
                )
                say(attempt.describe())
                if attempt.exit_code != 0:
                    raise ChaosError(
                        f"the clean run failed: recon {name} exited {attempt.exit_code} "
                        f"({attempt.last_line}); see {log.name}"
                    )
            result.companies = hubspot_companies(sb)
        result.tables = snapshot_tables(clean.warehouse)
        order = [s for s in STAGES if s in marks]
        for i, stage in enumerate(order):
            nxt = order[i + 1] if i + 1 < len(order) else "end"
            result.stage_seconds[stage] = marks[nxt] - marks[stage]
        say(
            "stage durations: "
            + ", ".join(f"{s} {d:.1f} s" for s, d in result.stage_seconds.items())
        )
    except BaseException as exc:  # reported by the caller, in its own thread
        result.error = exc


def _raise_for_clean(result: _CleanResult) -> None:
    if isinstance(result.error, ChaosError):
        raise result.error
    if result.error is not None:
        raise ChaosError(f"the clean run failed: {result.error!r}") from result.error


def run_chaos(options: ChaosOptions, console: Console | None = None) -> ChaosReport:
    """Generate, run clean, run under faults and kills, compare; see the module docstring."""
    from recon.run import correctable_in_answers
    from recon.sandbox.generator import generate_world

    out = console or Console(highlight=False)
    report = ChaosReport(options=options)
    t0 = time.monotonic()
    workdir = options.workdir.resolve()  # the runs start in their own directories
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    template = workdir / "world"
    out.rule("[bold]recon chaos")
    summary = generate_world(template, customers=options.customers, seed=options.seed)
    out.print(
        f"world {template}: {summary.customers} customers, {summary.subscriptions} "
        f"subscriptions, {summary.events} events; {summary.companies} companies; "
        f"{summary.findings} findings (seed {options.seed})",
        highlight=False,
    )
    max_changes = max(2 * correctable_in_answers(template), 100)

    # -- the clean run (beside the chaos run with ``concurrent_clean``)
    project = snapshot_project(workdir / "project")
    clean = _Run.prepare(workdir / "clean", template, project)
    chaos = _Run.prepare(workdir / "chaos", template, project)
    clean_result = _CleanResult()
    clean_thread: threading.Thread | None = None
    if options.concurrent_clean:
        out.print(
            "the clean run goes on beside the chaos run; kill delays follow the estimated "
            "stage durations: "
            + ", ".join(f"{s} {d:.0f} s" for s, d in options.stage_estimates_s.items()),
            highlight=False,
        )
        clean_thread = threading.Thread(
            target=_clean_run, args=(clean, max_changes, options, clean_result), daemon=True
        )
        clean_thread.start()
    else:
        out.rule("[bold]clean run (no faults, no kills)")
        _clean_run(clean, max_changes, options, clean_result, out)
        _raise_for_clean(clean_result)
        report.stage_seconds = dict(clean_result.stage_seconds)

    # -- the chaos run
    out.rule(f"[bold]chaos run ({options.kills} kills, faults and 429 storms)")
    f = options.faults
    out.print(
        f"faults per request: 5xx {f.error_share:.0%}, dropped {f.drop_share:.0%}, truncated "
        f"{f.truncate_share:.0%}, stalled past the {CLIENT_TIMEOUT_S:.0f} s client timeout "
        f"{f.timeout_share:.0%}, 429 {f.rate_limit_share:.0%}; +{f.latency_ms:.0f} ms on "
        f"every answer; a {options.storm_s:.1f} s storm of {options.storm_share:.0%} 429s "
        f"every {options.storm_every_s:.0f} s",
        highlight=False,
    )
    rng = random.Random(options.seed * 7919 + 1)
    pending = plan_kills(options)
    with (
        (chaos.root / "recon.log").open("wb") as log,
        running_sandbox(chaos.world, faults=_with_seed(options.faults, options.seed)) as sb,
    ):
        with _storms(sb, options, report):
            misses = 0
            sync_kills = 0
            # while the sync has changes left to apply, every other sync kill waits for a
            # HubSpot write to land, then strikes before the sync has proven it
            writes_pending = True
            while pending:
                stage = pending[0]
                on_write = stage == "sync" and writes_pending and sync_kills % 2 == 0
                if on_write:
                    delay = rng.uniform(0.0, WRITE_KILL_WINDOW_S)
                else:
                    span = report.stage_seconds.get(stage) or options.stage_estimates_s.get(stage)
                    span = max((span or 5.0) * STAGE_SPAN_SHARE.get(stage, 1.0), 0.5)
                    delay = rng.uniform(0.0, span) * (0.5**misses)
                attempt = _attempt(
                    chaos,
                    "run",
                    sb.base_url,
                    max_changes,
                    len(report.attempts) + 1,
                    log,
                    kill_stage=stage,
                    kill_delay_s=delay,
                    timeout_s=options.attempt_timeout_s,
                    after_write=chaos.world / "hubspot" / "writes.jsonl" if on_write else None,
                )
                report.attempts.append(attempt)
                out.print(attempt.describe(), highlight=False)
                if attempt.exit_code == 0 or (on_write and not attempt.killed):
                    writes_pending = False  # the sync has applied everything
                if attempt.killed:
                    pending.pop(0)
                    misses = 0
                    sync_kills += stage == "sync"
                else:
                    misses += 1
                    if misses > 8:
                        raise ChaosError(
                            f"could not kill recon run in {stage} (it never reached the stage, "
                            f"last line: {attempt.last_line}); see {log.name}"
                        )
            out.rule("[bold]after the kills: rerun until it succeeds, then ingest and build")
            for name in ("run", "ingest", "build"):
                _run_until_success(chaos, name, sb.base_url, max_changes, report, log, options, out)
        report.faults = {str(k): int(v) for k, v in (sb.stats().get("faults") or {}).items()}
        chaos_companies = hubspot_companies(sb)

    if clean_thread is not None:
        clean_thread.join()
        out.rule("[bold]clean run (no faults, no kills), ran beside the chaos run")
        for line in clean_result.lines:
            out.print(line, highlight=False)
        _raise_for_clean(clean_result)
        report.stage_seconds = dict(clean_result.stage_seconds)
    report.sync_runs, report.leftovers_resolved = sync_run_statuses(chaos.warehouse)
    report.checks = _checks(
        clean,
        chaos,
        clean_result.tables,
        clean_result.companies,
        chaos_companies,
        report,
        options,
    )
    report.seconds = time.monotonic() - t0
    print_report(out, report)
    return report


def print_report(out: Console, report: ChaosReport) -> None:
    out.rule("[bold]what was tried")
    kills = report.kills
    by_stage = Counter(a.killed_stage for a in kills)
    out.print(
        f"{len(report.attempts)} attempts, {len(kills)} SIGKILLs ("
        + ", ".join(f"{s} {n}" for s, n in sorted(by_stage.items()))
        + f"), {report.storms} 429 storms; faults injected: "
        + (", ".join(f"{k} {v}" for k, v in sorted(report.faults.items()) if v) or "none"),
        highlight=False,
    )
    out.print(
        "sync runs in the chaos warehouse: "
        + ", ".join(f"{s} {n}" for s, n in report.sync_runs.items())
        + f"; {report.leftovers_resolved} changes left by killed syncs resolved by later ones",
        highlight=False,
    )
    for i, a in enumerate(kills, 1):
        after = (
            f" ({a.killed_after_trigger_s:.2f} s after {a.trigger})"
            if a.trigger != "the stage began"
            else ""
        )
        out.print(
            f"kill {i:>2}: {a.killed_stage:<8} {a.killed_after_stage_s:6.2f} s into the stage, "
            f"{a.killed_after_start_s:6.1f} s into attempt {a.number}{after}",
            highlight=False,
        )
    out.rule("[bold]what held")
    for c in report.checks:
        mark = "[green]PASS[/]" if c.passed else "[red]FAIL[/]"
        out.print(f"{mark} {c.name}" + (f": {c.detail}" if c.detail else ""), highlight=False)
    verdict = "[green]all checks held[/]" if report.ok else "[red]a check failed[/]"
    out.print(f"{verdict} ({report.seconds:.0f} s)", highlight=False)
