"""How many webhook deliveries per second does the receiver acknowledge, durably?  (Issue 7:
at least 500 requests/s on loopback with nothing lost; a benchmark figure, not a timed test.)

    python3 -m uv run python bench/bench_webhooks.py [--requests 6000] [--clients 8]

Starts ``recon webhooks serve`` in its own process on a free loopback port with a fresh
spool, then ``--clients`` processes each send their share of pre-signed deliveries over one
keep-alive connection: Stripe events (every tenth a redelivery of an earlier one, re-signed)
and HubSpot notice batches.  Afterwards it reads the spool and checks that every event
acknowledged as stored is there exactly once and every HubSpot object id is queued.  Prints
requests per second with the core count; exits 1 if anything was lost or the rate is below
500/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import stripe
from hubspot.utils.signature import Signature

from recon.bench.report import machine
from recon.webhooks.server import READY_PREFIX
from recon.webhooks.spool import Spool

STRIPE_SECRET = "whsec_bench_0123456789abcdef0123456789"
HUBSPOT_SECRET = "bench-hubspot-app-secret"
ROOT = Path(__file__).resolve().parent.parent
TARGET_RPS = 500


def _requests(client: int, count: int, url: str) -> list[tuple[str, bytes, dict[str, str]]]:
    """Pre-signed requests, so that the clients measure the server rather than the signing."""
    out: list[tuple[str, bytes, dict[str, str]]] = []
    for i in range(count):
        if i % 10 == 9:  # a HubSpot batch of three notices
            body = json.dumps(
                [
                    {
                        "eventId": i * 10 + k,
                        "subscriptionType": "company.propertyChange",
                        "objectId": client * 1_000_000 + i * 10 + k,
                        "occurredAt": int(time.time() * 1000),
                    }
                    for k in range(3)
                ]
            ).encode()
            ts = str(int(time.time() * 1000))
            sig = Signature.get_signature(
                HUBSPOT_SECRET,
                body.decode(),
                "v3",
                http_uri=url + "/webhooks/hubspot",
                http_method="POST",
                timestamp=ts,
            )
            headers = {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts}
            out.append(("/webhooks/hubspot", body, headers))
            continue
        # every tenth Stripe delivery redelivers the previous event, re-signed
        n = i - 1 if i % 10 == 8 else i
        event = {
            "id": f"evt_bench_{client}_{n}",
            "object": "event",
            "type": "invoice.paid",
            "created": 1_782_000_000 + n,
            "livemode": False,
            "data": {"object": {"id": f"in_{client}_{n}", "object": "invoice", "amount_paid": n}},
        }
        body = json.dumps(event).encode()
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET)
        out.append(("/webhooks/stripe", body, {"Stripe-Signature": header}))
    return out


def _client(args: tuple[int, int, str, float]) -> dict[str, object]:
    client, count, url, start_at = args
    reqs = _requests(client, count, url)
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    stored: list[str] = []
    duplicates = 0
    failures = 0
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.perf_counter()
    for path, body, headers in reqs:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        answer = resp.read()
        if resp.status != 200:
            failures += 1
            continue
        if path == "/webhooks/stripe":
            if json.loads(answer)["duplicate"]:
                duplicates += 1
            else:
                stored.append(json.loads(body)["id"])
    elapsed = time.perf_counter() - t0
    conn.close()
    hubspot_ids = [
        str(n["objectId"])
        for path, body, _ in reqs
        if path == "/webhooks/hubspot"
        for n in json.loads(body)
    ]
    return {
        "stored": stored,
        "duplicates": duplicates,
        "failures": failures,
        "hubspot_ids": hubspot_ids,
        "t0": t0,
        "elapsed": elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=6000, help="total requests (bounded)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument(
        "--out", type=Path, help="JSON results (default bench/results/<date>-webhooks.json)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="recon-bench-webhooks-") as tmp:
        spool_dir = Path(tmp) / "spool"
        env = {
            **os.environ,
            "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
            "HUBSPOT_APP_SECRET": HUBSPOT_SECRET,
        }
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "recon.cli", "webhooks", "serve"),
                *("--port", "0", "--spool", str(spool_dir)),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith(READY_PREFIX):
                print(f"the receiver did not start: {line!r}", file=sys.stderr)
                return 1
            url = line.split(" on ", 1)[1].split(" ", 1)[0]
            per_client = args.requests // args.clients
            start_at = time.time() + 1.5  # let every client sign its requests first
            with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
                results = pool.map(
                    _client, [(c, per_client, url, start_at) for c in range(args.clients)]
                )
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)

        total = per_client * args.clients
        wall = max(float(r["t0"]) + float(r["elapsed"]) for r in results) - min(  # type: ignore[arg-type]
            float(r["t0"])
            for r in results  # type: ignore[arg-type]
        )
        stored = [e for r in results for e in r["stored"]]  # type: ignore[attr-defined]
        duplicates = sum(int(r["duplicates"]) for r in results)  # type: ignore[call-overload]
        failures = sum(int(r["failures"]) for r in results)  # type: ignore[call-overload]
        sent_hubspot = {i for r in results for i in r["hubspot_ids"]}  # type: ignore[attr-defined]

        spool = Spool(spool_dir)
        spooled = [event["id"] for _, event in spool.pending_stripe_events()]
        queued = spool.pending_hubspot_object_ids().get("companies", set())
        lost = len(set(stored) - set(spooled)) + len(sent_hubspot - queued)
        doubled = len(spooled) - len(set(spooled))

    rps = total / wall
    print(
        f"webhooks: {total} requests in {wall:.2f} s = {rps:,.0f} requests/s acknowledged "
        f"durably ({args.clients} keep-alive connections, {os.cpu_count()} cores); "
        f"{len(stored)} Stripe events stored, {duplicates} redeliveries answered as duplicates, "
        f"{len(sent_hubspot)} HubSpot object ids queued; failed {failures}, lost {lost}, "
        f"stored twice {doubled}",
        flush=True,
    )
    ok = lost == 0 and doubled == 0 and failures == 0 and rps >= TARGET_RPS
    out = args.out or ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-webhooks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        "benchmark": "webhooks",
        "machine": machine(),
        "load_average": round(os.getloadavg()[0], 2),
        "requests": total,
        "clients": args.clients,
        "seconds": round(wall, 3),
        "requests_per_s": round(rps, 1),
        "target_requests_per_s": TARGET_RPS,
        "stripe_events_stored": len(stored),
        "redeliveries_answered_as_duplicates": duplicates,
        "hubspot_object_ids_queued": len(sent_hubspot),
        "failed": failures,
        "lost": lost,
        "stored_twice": doubled,
        "met": ok,
    }
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"results: {out}")
    if not ok:
        print(f"FAIL: want >= {TARGET_RPS} requests/s with nothing lost", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
