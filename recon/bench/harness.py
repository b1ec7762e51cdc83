"""The benchmark harness: worlds per size, the sandbox in its own process, every stage timed.

``run_bench(BenchOptions(size="S"))`` generates (or reuses) the world of that size and seed,
serves a working copy of it with the sandbox and times, through recon's public functions:

* ``generate`` (from the world cache when it holds the world: its recorded time),
* ``ingest.stripe`` and ``ingest.hubspot`` (a first, full run into a fresh warehouse),
* ``build`` (``dbt build``), ``validate`` (the gate), ``sync.plan`` (a dry run),
* ``sync.apply`` (``--apply`` with a limit above the plan, against a sandbox enforcing
  HubSpot's 190 requests per 10 s; its requests are sampled per window),
* ``incremental.*``, right after the first build: the world advances a day with 1 % new
  events (:func:`recon.bench.world.advance_world`), the sandbox reloads, and ingest and build
  run again (then the gate and the sync run on that warehouse);
* ``after_sync.ingest.hubspot``: the HubSpot ingest after the sync, which re-reads every
  company the sync wrote (reported, not part of the incremental ratio).

Two regimes (:data:`REGIMES`):

* ``cpu`` (no latency; Stripe unlimited; HubSpot unlimited while recon reads it, recon
  unpaced: what recon itself costs) runs every stage.  The sync's writes (``sync.apply``)
  meet HubSpot's own limits (190 per 10 s, search 4/s), recon paced to them: the sandbox
  switches at runtime between the stages (:meth:`Regime.hubspot_limits`).
* ``latency`` (200 ms per request, Stripe test mode's 25 requests/s, HubSpot's limits for
  every stage) times a full ingest again in its own warehouse, then the world advances as in
  cpu and the incremental ingests run again (no build: the build does not depend on the
  regime; the report borrows cpu's build times for the latency regime's incremental ratio).
  With ``--regime latency`` alone it runs every stage.

Each stage records wall seconds, items per second, the peak RSS of this process during the
stage, and the warehouse's size after it; the HubSpot stages record the limits they met.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import os
import resource
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from recon.config import Settings
from recon.errors import ReconError, UsageError

SIZES: dict[str, int] = {"XS": 200, "S": 2_000, "M": 20_000, "L": 100_000}
SIZE_ORDER = ("XS", "S", "M", "L")
DEFAULT_SEED = 7
DEFAULT_WORK_DIR = Path(".bench")
SOURCES = ("stripe", "hubspot")
# a blast-radius limit no benchmark world reaches: every planned change is applied
MAX_CHANGES = 10_000_000
#: HubSpot latency while the sync applies (the latency regime's 200 ms, as the real API)
SYNC_LATENCY_MS = 200.0


class BenchError(ReconError):
    """A benchmark could not run (a stage failed: its error is in the results too)."""


class StageFailedSoftly(BenchError):
    """A stage did its work but a check in it failed (e.g. a dbt data test): recorded as
    failed, and the stages after it still run (their timings are still worth having)."""


@dataclass(frozen=True)
class HubspotLimits:
    """HubSpot's rate limits as the sandbox enforces them and recon paces to them: requests
    per rolling 10 s, and searches per second (counted in both).  0: no limit, and recon
    unpaced."""

    per_10s: int
    search_per_s: int

    @property
    def unlimited(self) -> bool:
        return self.per_10s <= 0 and self.search_per_s <= 0

    def describe(self) -> str:
        if self.unlimited:
            return "unlimited"
        general = f"{self.per_10s}/10 s" if self.per_10s > 0 else "unlimited"
        search = f"{self.search_per_s}/s" if self.search_per_s > 0 else "unlimited"
        return f"{general} (search {search})"


#: a private app's burst limit (Pro/Enterprise) and search's own
HUBSPOT_LIMITS = HubspotLimits(190, 4)
HUBSPOT_UNLIMITED = HubspotLimits(0, 0)
#: the stages that read HubSpot and meet a regime's ``hubspot_ingest`` limits (the ingests,
#: the sync's dry run and the ingest after the sync) ...
HUBSPOT_INGEST_STAGES = (
    "ingest.hubspot",
    "incremental.ingest.hubspot",
    "sync.plan",
    "after_sync.ingest.hubspot",
)
#: ... and the one that writes and meets its ``hubspot_sync`` limits (the issue: "sync apply
#: against a sandbox that enforces HubSpot's rate limit"; the other stages call no HubSpot)
HUBSPOT_SYNC_STAGES = ("sync.apply",)


@dataclass(frozen=True)
class Regime:
    """How the sandbox serves a run: the latency it adds to every request and the rate
    limits it enforces (recon paced to the same), per stage.

    ``hubspot_ingest`` holds while recon reads HubSpot (:data:`HUBSPOT_INGEST_STAGES`: the
    ingests, the sync's dry run, the ingest after the sync), ``hubspot_sync`` while the sync
    writes (:data:`HUBSPOT_SYNC_STAGES`): always HubSpot's own limits, so that the sync's
    window share and its 429s mean what they say.  The harness switches the sandbox between
    them at runtime (``SandboxHandle.set_limits``), outside the stages' clocks."""

    name: str
    latency_ms: float
    stripe_rate_limit_per_s: int  # 0: unlimited (and recon unpaced)
    hubspot_ingest: HubspotLimits
    hubspot_sync: HubspotLimits = HUBSPOT_LIMITS

    def hubspot_limits(self, stage: str) -> HubspotLimits:
        """The HubSpot limits a stage (``ingest.hubspot``, ``sync.apply``, ...) meets."""
        if stage in HUBSPOT_INGEST_STAGES:
            return self.hubspot_ingest
        if stage in HUBSPOT_SYNC_STAGES:
            return self.hubspot_sync
        raise ValueError(f"{stage!r} calls no HubSpot")

    @property
    def stripe_ceiling_objects_per_s(self) -> float:
        """What the rate limit allows: requests/s x 100 objects a page."""
        return self.stripe_rate_limit_per_s * 100.0

    @property
    def hubspot_ceiling_objects_per_s(self) -> float:
        """What the ingest's limit allows: requests/s x 100 objects a page (0: unlimited)."""
        return self.hubspot_ingest.per_10s / 10.0 * 100.0


REGIMES: dict[str, Regime] = {
    # what recon itself costs per object: no latency, Stripe and HubSpot unlimited and
    # recon unpaced while it reads them; the sync's writes meet HubSpot's limits, as in
    # every regime
    "cpu": Regime("cpu", 0.0, 0, hubspot_ingest=HUBSPOT_UNLIMITED),
    # like the real APIs: 200 ms a request, Stripe test mode, HubSpot's burst and search
    # limits for every stage
    "latency": Regime("latency", 200.0, 25, hubspot_ingest=HUBSPOT_LIMITS),
}

#: recon's HubSpot source is paced through dlt's config (``sources.hubspot``, as in
#: ``.dlt/config.toml``; the environment beats the file).  Its client takes no "0:
#: unpaced", so unlimited is a limit no benchmark run comes near.
HUBSPOT_PACING_ENV = (
    "SOURCES__HUBSPOT__RATE_LIMIT_PER_10S",
    "SOURCES__HUBSPOT__SEARCH_RATE_PER_S",
)
UNPACED_LIMIT = 1_000_000


def hubspot_pacing_env(limits: HubspotLimits) -> dict[str, str]:
    """The dlt config (as environment variables) that paces recon's HubSpot source to
    ``limits``: each limit, or :data:`UNPACED_LIMIT` where there is none."""
    per_10s, search = HUBSPOT_PACING_ENV
    return {
        per_10s: str(limits.per_10s if limits.per_10s > 0 else UNPACED_LIMIT),
        search: str(limits.search_per_s if limits.search_per_s > 0 else UNPACED_LIMIT),
    }


@contextlib.contextmanager
def recon_hubspot_pacing(limits: HubspotLimits) -> Iterator[None]:
    """Pace recon's HubSpot source to ``limits`` inside the block (the variables it set are
    restored after)."""
    from recon.build import environment

    with environment(hubspot_pacing_env(limits)):
        yield


def use_hubspot_limits(sandbox: Any, limits: HubspotLimits) -> dict[str, int]:
    """Make the sandbox enforce ``limits`` from now on (a changed limit starts a fresh
    window); returns the HubSpot limits it reports in force."""
    got = sandbox.set_limits(
        hubspot_rate_limit_per_10s=max(limits.per_10s, 0),
        hubspot_search_rate_limit_per_s=max(limits.search_per_s, 0),
    )
    return {
        "rate_limit_per_10s": int(got["hubspot_rate_limit_per_10s"]),
        "search_rate_limit_per_s": int(got["hubspot_search_rate_limit_per_s"]),
    }


@dataclass
class StageResult:
    name: str
    regime: str | None
    seconds: float = 0.0
    items: int = 0
    unit: str = "objects"
    peak_rss_mb: float | None = None
    warehouse_mb: float | None = None
    # ok | check_failed (the work was done and timed, a check in it failed) | failed | skipped
    status: str = "ok"
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.regime}:{self.name}" if self.regime else self.name

    @property
    def per_s(self) -> float | None:
        return self.items / self.seconds if self.seconds > 0 and self.timed else None

    @property
    def timed(self) -> bool:
        """The stage did its work: its time means what it says."""
        return self.status in ("ok", "check_failed")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["key"] = self.key
        out["per_s"] = None if self.per_s is None else round(self.per_s, 1)
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass(frozen=True)
class BenchOptions:
    size: str = "S"
    regime: str = "both"  # cpu | latency | both
    # all: every stage; ingest: only the full ingest of each source in each regime (quick
    # before/after comparisons of the ingest; the README's ratios need "all")
    stages: str = "all"
    seed: int = DEFAULT_SEED
    work_dir: Path = DEFAULT_WORK_DIR
    profile: frozenset[str] = frozenset()  # stage names (or keys) to run under pyinstrument
    profile_dir: Path | None = None
    incremental_share: float = 0.01
    # None: the world's own (generated worlds: Stripe's 30 days); 0 keeps every event since
    # the account started, the warehouse of a recon that has ingested for the account's life
    events_retention_days: int | None = None
    keep_runs: bool = True  # leave the run folders (world copy, warehouse) for inspection
    progress: Callable[[str], None] | None = None

    @property
    def customers(self) -> int:
        return SIZES[self.size]

    def regimes(self) -> list[tuple[Regime, str]]:
        """(regime, scope) in the order they run.  Scopes: ``all`` (every stage),
        ``ingest+incremental`` (the full ingests, then the world advances and the ingests
        run again: the latency regime beside the cpu one, whose builds it borrows; the build
        does not depend on the regime), ``ingest`` (the full ingests only)."""
        if self.stages not in ("all", "ingest"):
            raise UsageError(f"unknown stages {self.stages!r}: use all or ingest")
        quick = self.stages == "ingest"
        if self.regime == "both":
            return [
                (REGIMES["cpu"], "ingest" if quick else "all"),
                (REGIMES["latency"], "ingest" if quick else "ingest+incremental"),
            ]
        if self.regime in REGIMES:
            return [(REGIMES[self.regime], "ingest" if quick else "all")]
        raise UsageError(f"unknown regime {self.regime!r}: use cpu, latency or both")


@dataclass
class BenchRun:
    """Everything one size measured (``report.py`` turns it into JSON and markdown)."""

    size: str
    customers: int
    seed: int
    regimes: list[Regime]
    started_at: datetime
    finished_at: datetime | None = None
    world: dict[str, Any] = field(default_factory=dict)
    stages: list[StageResult] = field(default_factory=list)
    peak_rss_mb: float | None = None
    sandbox_rss_mb: dict[str, float | None] = field(default_factory=dict)
    # the machine's load (1-minute average) when the run started and ended: other work on
    # the machine slows every stage
    load_average: dict[str, float] = field(default_factory=dict)
    # Stripe's events retention the sandbox served, and whether --events-retention-days set it
    events_retention_days: int | None = None
    events_retention_overridden: bool = False

    def stage(self, name: str, regime: str | None = "cpu") -> StageResult | None:
        for s in self.stages:
            if s.name == name and s.regime == regime:
                return s
        return None

    @property
    def ok(self) -> bool:
        """Every stage did its work (a failed check inside one, e.g. a dbt data test, is
        reported but does not make the benchmark fail)."""
        return all(s.timed for s in self.stages)

    @property
    def checks_passed(self) -> bool:
        return all(s.status == "ok" for s in self.stages)


# --------------------------------------------------------------------------- measurements


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux: ``clear_refs`` 5); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """The peak RSS since the last reset (VmHWM), else since the process started."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def process_peak_rss_mb() -> float:
    """The process's peak RSS as getrusage reports it (after a ``reset_peak_rss``, only
    since then: Linux keeps one high-water mark)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def warehouse_mb(warehouse: Path) -> float | None:
    files = [warehouse, warehouse.with_name(warehouse.name + ".wal")]
    sizes = [f.stat().st_size for f in files if f.exists()]
    return sum(sizes) / 2**20 if sizes else None


def raw_rows(warehouse: Path) -> dict[str, int]:
    """Rows in the raw tables (what ``dbt build`` reads)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw_stripe', 'raw_hubspot') and table_type = 'BASE TABLE' "
            "and table_name not like '\\_dlt%' escape '\\'"
        ).fetchall()
        out: dict[str, int] = {}
        for schema, table in tables:
            row = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()
            out[f"{schema}.{table}"] = int(row[0]) if row else 0
        return out
    finally:
        con.close()


class _Stages:
    """Runs stages in order: times them, records failures, skips what depends on them."""

    def __init__(self, run: BenchRun, options: BenchOptions, warehouse: Path | None) -> None:
        self.run = run
        self.options = options
        self.warehouse = warehouse
        self.failed: set[str] = set()

    def _say(self, text: str) -> None:
        if self.options.progress is not None:
            self.options.progress(text)

    def stage(
        self,
        name: str,
        regime: str | None,
        unit: str,
        fn: Callable[[StageResult], None],
        *,
        needs: tuple[str, ...] = (),
        recorded: tuple[float, float | None] | None = None,
    ) -> StageResult:
        """Run ``fn(record)`` as the stage ``name``; ``recorded`` (seconds, peak RSS) stands
        for a stage done before (a cached world)."""
        rec = StageResult(name=name, regime=regime, unit=unit)
        self.run.stages.append(rec)
        missing = [n for n in needs if n in self.failed]
        if missing:
            rec.status = "skipped"
            rec.error = f"skipped: {', '.join(missing)} did not succeed"
            self.failed.add(name)
            self._say(f"{rec.key}: skipped")
            return rec
        self._say(f"{rec.key} ...")
        profiled = name in self.options.profile or rec.key in self.options.profile
        reset_peak_rss()
        t0 = time.perf_counter()
        try:
            with _profiled(rec, self.options) if profiled else contextlib.nullcontext():
                fn(rec)
        except Exception as exc:  # a benchmark reports a failed stage and goes on
            soft = isinstance(exc, StageFailedSoftly)
            rec.status = "check_failed" if soft else "failed"
            rec.error = " ".join(str(exc).split())[:500] if soft else None
            if not soft:
                rec.error = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
                self.failed.add(name)
        finally:
            rec.seconds = time.perf_counter() - t0
            rec.peak_rss_mb = round(peak_rss_mb(), 1)
            if self.warehouse is not None:
                size = warehouse_mb(self.warehouse)
                rec.warehouse_mb = None if size is None else round(size, 2)
            if recorded is not None:
                rec.seconds, rec.peak_rss_mb = recorded
        per_s = f", {rec.per_s:,.0f} {rec.unit}/s" if rec.per_s else ""
        self._say(f"{rec.key}: {rec.status} in {rec.seconds:.2f} s{per_s}")
        return rec


@contextlib.contextmanager
def _profiled(rec: StageResult, options: BenchOptions) -> Iterator[None]:
    try:
        from pyinstrument import Profiler
    except ImportError:  # pragma: no cover - a dev dependency
        raise UsageError("--profile needs pyinstrument (uv sync installs the dev group)") from None
    profiler = Profiler(interval=0.005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        folder = options.profile_dir or options.work_dir / "profiles"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{datetime.now(UTC):%Y-%m-%d}-{options.size}-{rec.key.replace(':', '-')}"
        text = folder / f"{stem}.txt"
        text.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        (folder / f"{stem}.html").write_text(profiler.output_html())
        rec.detail["profile"] = str(text)


# --------------------------------------------------------------------------- worlds


def generator_fingerprint() -> str:
    """A digest of the generator's source: a changed generator makes new cached worlds."""
    from recon.sandbox import generator

    folder = Path(generator.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


WORLD_META = "bench-world.json"


def world_objects(summary: dict[str, Any]) -> int:
    keys = ("customers", "subscriptions", "events", "invoices", "companies", "contacts", "deals")
    return sum(int(summary.get(k) or 0) for k in (*keys, "owners"))


def cached_world(options: BenchOptions, stages: _Stages) -> Path:
    """The world of this size and seed: generated once into the work dir's cache."""
    key = f"{options.size}-{options.customers}-seed{options.seed}-{generator_fingerprint()}"
    cache = options.work_dir / "worlds"
    root = cache / key
    meta_path = root / WORLD_META
    if meta_path.exists():
        meta = orjson.loads(meta_path.read_bytes())

        def cached(rec: StageResult) -> None:
            rec.items = world_objects(meta["summary"])
            rec.detail = {"cached": True, "world": str(root)}

        # the time and memory it took when it was generated
        recorded = (float(meta["seconds"]), meta.get("peak_rss_mb"))
        stages.stage("generate", None, "objects", cached, recorded=recorded)
        stages.run.world = {**meta["summary"], "path": str(root), "cached": True}
        return root

    cache.mkdir(parents=True, exist_ok=True)
    prefix = f"{options.size}-{options.customers}-seed{options.seed}-"
    for stale in cache.glob(prefix + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    partial = cache / (key + ".partial")

    def generate(rec: StageResult) -> None:
        from recon.sandbox.generator import generate_world

        shutil.rmtree(partial, ignore_errors=True)
        summary = generate_world(partial, customers=options.customers, seed=options.seed)
        data = {k: v for k, v in asdict(summary).items() if k != "world_dir"}
        rec.items = world_objects(data)
        rec.detail = {"cached": False, "world": str(root)}
        stages.run.world = {**data, "path": str(root), "cached": False}

    rec = stages.stage("generate", None, "objects", generate)
    if rec.status != "ok":
        raise BenchError(f"generating the {options.size} world failed: {rec.error}")
    meta = {
        "seconds": rec.seconds,
        "peak_rss_mb": rec.peak_rss_mb,
        "summary": {k: v for k, v in stages.run.world.items() if k not in ("path", "cached")},
        "generated_at": datetime.now(UTC).isoformat(),
    }
    (partial / WORLD_META).write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    os.replace(partial, root)
    return root


def working_copy(src: Path, dst: Path) -> None:
    """A copy of a cached world to run against: the large JSONL files hard-linked (nothing
    writes them in place: the sandbox journals into a new file, :mod:`recon.bench.world`
    replaces files), everything else copied."""
    shutil.rmtree(dst, ignore_errors=True)
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        target = dst / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        if rel.name == WORLD_META:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".jsonl":
            try:
                os.link(path, target)
                continue
            except OSError:
                pass
        shutil.copy2(path, target)


def configure_world(
    world_dir: Path, regime: Regime, *, events_retention_days: int | None = None
) -> None:
    """Write the regime's rate limits into ``world.json`` (a new file: never in place):
    Stripe's, and HubSpot's own (``hubspot_sync``); the harness lifts HubSpot's at runtime
    for the stages that meet other limits (:meth:`Regime.hubspot_limits`). With
    ``events_retention_days``, Stripe's events retention too (0: every event is listed)."""
    path = world_dir / "world.json"
    config = orjson.loads(path.read_bytes())
    config.setdefault("stripe", {})["rate_limit_per_s"] = regime.stripe_rate_limit_per_s
    if events_retention_days is not None:
        config["stripe"]["events_retention_days"] = events_retention_days
    hubspot = config.setdefault("hubspot", {})
    hubspot["rate_limit_per_10s"] = regime.hubspot_sync.per_10s
    hubspot["search_rate_limit_per_s"] = regime.hubspot_sync.search_per_s
    tmp = path.with_name("world.json.tmp")
    tmp.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(tmp, path)


def world_events_retention_days(world_dir: Path) -> int | None:
    """The Stripe events retention ``world.json`` sets (the sandbox's default when absent)."""
    config = orjson.loads((world_dir / "world.json").read_bytes())
    value = (config.get("stripe") or {}).get("events_retention_days")
    return None if value is None else int(value)


# --------------------------------------------------------------------------- HubSpot windows


class WindowSampler:
    """Samples the sandbox's HubSpot counters while the sync writes, to see how much of each
    10-second window it used while it still had work."""

    def __init__(self, sandbox: Any, interval_s: float = 0.1) -> None:
        self.sandbox = sandbox
        self.interval_s = interval_s
        self.samples: list[tuple[float, int, int]] = []
        self.limit = 0
        self.window_s = 10.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-window-sampler", daemon=True)

    def _sample(self) -> None:
        stats = self.sandbox.stats()
        hs = stats["hubspot_rate_limit"]
        self.limit = int(hs.get("limit") or 0)
        self.window_s = int(hs.get("window_ms") or 10_000) / 1000.0
        self.samples.append((time.monotonic(), int(hs["accepted"]), int(hs["refused"])))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            with contextlib.suppress(Exception):
                self._sample()

    def __enter__(self) -> WindowSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def usage(self) -> dict[str, Any]:
        return window_usage(self.samples, self.limit, self.window_s)


def hubspot_window_in_use(sandbox: Any) -> int:
    """Requests the sandbox's HubSpot rolling window holds now (from any earlier stage)."""
    hs = sandbox.stats().get("hubspot_rate_limit") or {}
    return int(hs.get("used_now") or 0)


def wait_for_quiet_window(
    sandbox: Any,
    *,
    timeout_s: float = 30.0,
    poll_s: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until HubSpot's rolling window holds no request; returns the seconds waited.

    The dry run (``sync.plan``) reads every company the sync will write, a request per 100,
    just before ``sync.apply``.  Those requests stay in HubSpot's 10-s window, and the sync
    rightly paces around them (the ``X-HubSpot-RateLimit-Remaining`` header): started at
    once, it gets only what the dry run left of its first window (at M: 131 of 190), and
    its share would measure the stage before it.  Called between the stages, outside their
    clocks.  Gives up after ``timeout_s`` (the share then shows what was left).
    """
    start = clock()
    while hubspot_window_in_use(sandbox) > 0 and clock() - start < timeout_s:
        sleep(poll_s)
    return round(clock() - start, 3)


def window_usage(
    samples: list[tuple[float, int, int]], limit: int, window_s: float
) -> dict[str, Any]:
    """Requests per window from cumulative (time, accepted, refused) samples.

    Windows start at the first request; a window counts as "with work remaining" when
    requests followed it (the sync was not done).  ``share_while_work_remains`` is the
    requests in those windows over ``limit`` times their number; None when the work fit in
    one window (the limit never bound).  ``rate_share`` is the request rate from the first
    request to the last over the rate the limit allows (capped at 1): the measure that is
    left when the limit never bound.
    """
    if not samples:
        return {"requests": 0, "share_while_work_remains": None}
    _, base_acc, base_ref = samples[0]
    _, last_acc, last_ref = samples[-1]
    total = last_acc - base_acc
    out: dict[str, Any] = {
        "requests": total,
        "rate_limited": last_ref - base_ref,
        "limit": limit,
        "window_s": window_s,
    }
    if total <= 0:
        out.update(windows=[], full_windows=0, share_while_work_remains=None, seconds=0.0)
        return out
    # a request counted at sample i happened after sample i-1: take the midpoint
    first_t = next(
        (t0 + t1) / 2 for (t0, a0, _), (t1, a1, _) in itertools.pairwise(samples) if a1 > a0
    )
    end_t = next(t for t, a, _ in samples if a == last_acc)

    def accepted_at(t: float) -> int:
        value = base_acc
        for ts, acc, _ in samples:
            if ts > t:
                break
            value = acc
        return value

    windows: list[int] = []
    full = 0
    k = 0
    while (start := first_t + k * window_s) < end_t:
        stop = start + window_s
        windows.append(accepted_at(stop) - (base_acc if k == 0 else accepted_at(start)))
        if stop < end_t:
            full += 1
        k += 1
    seconds = max(end_t - first_t, 1e-9)
    out.update(
        seconds=round(seconds, 2),
        windows=windows,
        full_windows=full,
        max_in_window=max(windows) if windows else 0,
        rate_per_s=round(total / seconds, 2),
        share_while_work_remains=(
            round(sum(windows[:full]) / (limit * full), 3) if full and limit > 0 else None
        ),
        # when the work fits in one window the limit never binds; what is left to judge is
        # whether the sync sent as fast as the limit would let it: its rate over the limit's
        rate_share=(
            round(min(1.0, (total / seconds) / (limit / window_s)), 3) if limit > 0 else None
        ),
    )
    return out


# --------------------------------------------------------------------------- one regime


def _sandbox_counts(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    def delta(name: str, api: str) -> int:
        return int((after.get(name) or {}).get(api, 0)) - int((before.get(name) or {}).get(api, 0))

    return {
        "stripe_requests": delta("requests", "stripe"),
        "hubspot_requests": delta("requests", "hubspot"),
        "stripe_429": delta("rate_limited", "stripe"),
        "hubspot_429": delta("rate_limited", "hubspot"),
    }


def _run_regime(
    options: BenchOptions, run: BenchRun, world_src: Path, regime: Regime, *, scope: str
) -> None:
    """Run a regime's stages (``scope``: see :meth:`BenchOptions.regimes`) against its own
    sandbox and warehouse."""
    from recon.bench.world import advance_world
    from recon.build import build
    from recon.ingest import ingest
    from recon.sandbox.process import running_sandbox
    from recon.sync import SyncOptions, run_sync
    from recon.validate import run_validation

    run_dir = options.work_dir / "runs" / f"{options.size}-{regime.name}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    world = run_dir / "world"
    working_copy(world_src, world)
    configure_world(world, regime, events_retention_days=options.events_retention_days)
    run.events_retention_days = world_events_retention_days(world)
    warehouse = (run_dir / "recon.duckdb").resolve()
    stages = _Stages(run, options, warehouse)
    r = regime.name

    with running_sandbox(world, latency_ms=regime.latency_ms) as sb:
        settings = Settings.load(warehouse=warehouse, environ={}).with_sandbox(
            sb.base_url,
            sb.stripe_api_key,
            sb.hubspot_access_token,
            stripe_rate_limit_per_s=float(regime.stripe_rate_limit_per_s),
        )

        # the HubSpot limits the sandbox enforces now (set between stages: use_hubspot_limits)
        in_force: dict[str, Any] = {}

        def switch_hubspot(limits: HubspotLimits) -> None:
            in_force.update(limits=limits, sandbox=use_hubspot_limits(sb, limits))

        def hubspot_limits_detail() -> dict[str, Any]:
            """What the stage met: the sandbox's limits, and recon's pacing (0: none)."""
            limits: HubspotLimits = in_force["limits"]
            return {
                "sandbox": dict(in_force["sandbox"]),
                "recon_paced": {
                    "rate_limit_per_10s": max(limits.per_10s, 0),
                    "search_rate_limit_per_s": max(limits.search_per_s, 0),
                },
            }

        def ingest_stage(source: str) -> Callable[[StageResult], None]:
            def fn(rec: StageResult) -> None:
                before = sb.stats()
                with recon_hubspot_pacing(in_force["limits"]):
                    [result] = ingest(settings, sources=(source,))
                after = sb.stats()
                rec.items = result.objects
                rec.detail = {
                    "requests": result.requests,
                    "retries": result.retries,
                    "rows_loaded": sum(result.rows_loaded.values()),
                    "objects_fetched": dict(result.objects_fetched),
                    "phases": {k: round(v, 3) for k, v in result.phases.items()},
                    **_sandbox_counts(before, after),
                }
                if source == "hubspot":
                    rec.detail["hubspot_limits"] = hubspot_limits_detail()
                if result.status != "succeeded":
                    raise BenchError(f"ingest {source}: {result.error}")

            return fn

        def build_stage(rec: StageResult) -> None:
            rows = raw_rows(warehouse)
            rec.items = sum(rows.values())
            result = build(
                settings,
                # as `recon run` builds: unit tests check the SQL, not the data (CI runs them)
                unit_tests=False,
                target_path=run_dir / "dbt_target",
                log_path=run_dir / "dbt_logs",
            )
            slowest = sorted(result.outcomes, key=lambda o: o.seconds, reverse=True)[:8]
            by_type: dict[str, float] = {}
            for o in result.outcomes:
                by_type[o.resource_type] = by_type.get(o.resource_type, 0.0) + o.seconds
            rec.detail = {
                "nodes": len(result.outcomes),
                "nodes_left_out": len(result.unchanged),
                "dbt_seconds": round(result.seconds, 3),
                # parse, state, dbt (the build) and nodes (the part of it the nodes ran in)
                "phases": dict(result.phases),
                # node time summed per resource type (nodes run on dbt's threads)
                "node_seconds_by_type": {k: round(v, 2) for k, v in sorted(by_type.items())},
                "raw_rows": rows,
                "slowest_nodes": {
                    f"{o.resource_type}:{o.name}": round(o.seconds, 3) for o in slowest
                },
            }
            if not result.success:
                failed = [o for o in result.outcomes if o.failed]
                names = ", ".join(f"{o.resource_type}:{o.name}" for o in failed[:5])
                rec.detail["failed_nodes"] = [f"{o.resource_type}:{o.name}" for o in failed]
                if result.error is None and all(
                    o.resource_type in ("test", "unit_test") for o in failed
                ):
                    raise StageFailedSoftly(f"dbt build: {len(failed)} tests failed: {names}")
                raise BenchError(f"dbt build failed: {result.error or names}")

        # the ingests meet the regime's ingest limits (HubSpot unlimited in cpu)
        switch_hubspot(regime.hubspot_limits("ingest.hubspot"))
        for source in SOURCES:
            stages.stage(f"ingest.{source}", r, "objects", ingest_stage(source))
        every_stage = scope == "all"
        ingested = tuple(f"ingest.{s}" for s in SOURCES)
        if every_stage:
            stages.stage("build", r, "raw rows", build_stage, needs=ingested)

        # the rerun after 1 % new events comes straight after the full run: what it costs
        # is what those events cost (the sync's writes are timed apart, below).  The same
        # share and seed in every regime: the same new events
        def advance_stage(rec: StageResult) -> None:
            adv = advance_world(world, share=options.incremental_share, seed=options.seed)
            sb.reload()  # the limits set at runtime hold
            rec.items = adv.new_events
            rec.detail = asdict(adv)

        if scope in ("all", "ingest+incremental"):
            stages.stage("incremental.advance", r, "events", advance_stage, needs=ingested)
            for source in SOURCES:
                stages.stage(
                    f"incremental.ingest.{source}",
                    r,
                    "objects",
                    ingest_stage(source),
                    needs=("incremental.advance",),
                )
        if every_stage:
            stages.stage(
                "incremental.build",
                r,
                "raw rows",
                build_stage,
                needs=tuple(f"incremental.ingest.{s}" for s in SOURCES),
            )

            def validate_stage(rec: StageResult) -> None:
                report = run_validation(settings, docs_dir=run_dir / "gx_docs")
                rec.items = report.sync_rows
                rec.detail = {
                    "expectations": report.expectations,
                    "sync_values": report.sync_values,
                    "success": report.success,
                    "failures": [f.line for f in report.failures[:10]],
                }
                if not report.success:
                    raise BenchError(
                        f"the gate failed: {len(report.failures)} of {report.expectations}"
                    )

            stages.stage("validate", r, "sync rows", validate_stage, needs=("build",))

            def plan_stage(rec: StageResult) -> None:
                from recon.sync.hubspot_client import Pacing

                before = sb.stats()
                limits: HubspotLimits = in_force["limits"]
                pacing = Pacing(limit=limits.per_10s if limits.per_10s > 0 else UNPACED_LIMIT)
                report = run_sync(settings, SyncOptions(apply=False, pacing=pacing))
                rec.items = report.planned
                rec.detail = {
                    "live_companies": report.live_companies,
                    "status": report.status,
                    "hubspot_limits": hubspot_limits_detail(),
                    **_sandbox_counts(before, sb.stats()),
                }

            # the dry run reads under the regime's read limits (the ingests'), recon paced
            # to them; only the writes meet HubSpot's own limits in every regime
            switch_hubspot(regime.hubspot_limits("sync.plan"))
            stages.stage("sync.plan", r, "changes", plan_stage, needs=("build",))

            def apply_stage(rec: StageResult) -> None:
                from recon.sandbox.faults import FaultConfig

                before = sb.stats()
                in_use_at_start = hubspot_window_in_use(sb)
                # HubSpot answers in a few hundred ms: the share of its window a sync can use
                # depends on that, so the writes meet the latency of the latency regime
                sb.set_faults(FaultConfig(latency_ms=SYNC_LATENCY_MS, paths=("/crm/",)))
                try:
                    with WindowSampler(sb) as sampler:
                        report = run_sync(
                            settings, SyncOptions(apply=True, max_changes=MAX_CHANGES)
                        )
                finally:
                    sb.set_faults(None)
                c = report.counts
                rec.items = c.succeeded
                rec.detail = {
                    "planned": report.planned,
                    "verified": c.verified,
                    "failed": c.failed,
                    "mismatch": c.mismatch,
                    "status": report.status,
                    "window": sampler.usage(),
                    "hubspot_latency_ms": SYNC_LATENCY_MS,
                    "hubspot_limits": hubspot_limits_detail(),
                    # requests of earlier stages still in HubSpot's window (0 after the wait)
                    "hubspot_window_in_use_at_start": in_use_at_start,
                    "waited_for_window_s": waited_for_window,
                    **_sandbox_counts(before, sb.stats()),
                }
                if not report.ok:
                    raise BenchError(f"the sync did not verify every change: {report.problems[:3]}")

            # HubSpot's own limits for the writes (a changed limit starts a fresh window);
            # the dry run's requests age out of HubSpot's window first when the limits were
            # already in force (not timed): the window share is the sync's own (see
            # wait_for_quiet_window)
            switch_hubspot(regime.hubspot_limits("sync.apply"))
            waited_for_window = wait_for_quiet_window(sb)
            stages.stage("sync.apply", r, "changes", apply_stage, needs=("validate",))
            switch_hubspot(regime.hubspot_limits("after_sync.ingest.hubspot"))
            # informational, not in the incremental ratio: the next HubSpot ingest re-reads
            # every company the sync wrote (their last-modified time moved), through search
            stages.stage(
                "after_sync.ingest.hubspot",
                r,
                "objects",
                ingest_stage("hubspot"),
                needs=("sync.apply",),
            )

        rss = sb.stats().get("rss_mb")
        run.sandbox_rss_mb[r] = None if rss is None else round(float(rss), 1)
    if not options.keep_runs:
        shutil.rmtree(run_dir, ignore_errors=True)


def check_events_retention_days(days: int | None) -> None:
    """Refuse a negative ``--events-retention-days`` (None: the world's own retention)."""
    if days is not None and days < 0:
        raise UsageError(f"--events-retention-days must be 0 (every event) or more, not {days}")


def run_bench(options: BenchOptions) -> BenchRun:
    """Run every stage of one size (see the module docstring); never raises for a failed
    stage (it is recorded), only when the world cannot be made."""
    if options.size not in SIZES:
        raise UsageError(f"unknown size {options.size!r}: use {', '.join(SIZE_ORDER)}")
    check_events_retention_days(options.events_retention_days)
    plan = options.regimes()
    run = BenchRun(
        size=options.size,
        customers=options.customers,
        seed=options.seed,
        regimes=[regime for regime, _ in plan],
        started_at=datetime.now(UTC),
        events_retention_overridden=options.events_retention_days is not None,
    )
    run.load_average["start"] = round(os.getloadavg()[0], 2)
    _warm_imports()
    stages = _Stages(run, options, None)
    world_src = cached_world(options, stages)
    for regime, scope in plan:
        _run_regime(options, run, world_src, regime, scope=scope)
    run.finished_at = datetime.now(UTC)
    run.load_average["end"] = round(os.getloadavg()[0], 2)
    # resetting VmHWM per stage also resets what getrusage reports: the run's peak is the
    # largest stage peak
    peaks = [s.peak_rss_mb for s in run.stages if s.peak_rss_mb is not None]
    run.peak_rss_mb = round(max([*peaks, process_peak_rss_mb()]), 1)
    return run


# What recon's modules import lazily on a first run: httpx's transport, pyarrow's parquet
# writer and pandas bridge, dlt's plugins and requests helpers, pendulum's locale.
LAZY_IMPORTS = (
    "dlt.common.configuration.plugins",
    "dlt.common.libs.pyarrow",
    "dlt.sources.helpers.requests",
    "h11",
    "httpcore",
    "pendulum.locales.en.locale",
    "pluggy",
    "pyarrow.fs",
    "pyarrow.pandas_compat",
    "pyarrow.parquet",
)


def _warm_imports() -> None:
    """Import the heavy libraries before any clock starts: a stage's time is its work, not
    the first import of dlt, dbt, pandas or Great Expectations (seconds each)."""
    import dlt  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401
    from dbt.cli.main import dbtRunner  # noqa: F401

    # the sources recon ingest imports when it first runs one, dlt's DuckDB destination and
    # SQLAlchemy (dlt imports it when it first parses DuckDB credentials: >1 s)
    from dlt.common.libs import sql_alchemy_compat  # noqa: F401

    import pipelines.common.destination
    import pipelines.hubspot
    import pipelines.stripe  # noqa: F401
    import recon.build
    import recon.ingest
    import recon.sync
    import recon.validate  # noqa: F401

    # and what those import lazily on a first run (~0.3 s of the first ingest otherwise)
    for name in LAZY_IMPORTS:
        importlib.import_module(name)
