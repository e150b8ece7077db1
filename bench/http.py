"""The HTTP figures, against ``segmentation serve`` run as a subprocess (one uvicorn worker):
cached summary vs /health under wrk, filtered views, and commands vs the same commands
in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench import appcalls
from bench.common import (
    CONFIG,
    VENV_BIN,
    Context,
    Figure,
    drop_prefix,
    finish_py_spy,
    percentile,
    py_spy_record,
    ratio_figure,
)
from service.app import build_application
from service.generate import generate
from service.settings import Settings

KEY = "benchkey"
AUTH = {"Authorization": f"Bearer {KEY}"}
POSTGRES = {
    "POSTGRES_DBNAME": "test",
    "POSTGRES_HOST": "127.0.0.1",
    "POSTGRES_PORT": "5432",
    "POSTGRES_USER": "postgres",
    "POSTGRES_PASSWORD": "",
}
WRK_SECONDS = 10
COMMAND_SECONDS = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``segmentation serve`` in a process of its own, on a free loopback port."""

    def __init__(self, ctx: Context, name: str, extra_env: dict[str, str]) -> None:
        self.name = name
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        data_dir = ctx.workdir / f"server-{name}"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SEGMENTATION_", "POSTGRES_"))},
            "SEGMENTATION_DATA_DIR": str(data_dir),
            "REDIS_URL": ctx.redis_url,
            "SEGMENTATION_REDIS_PREFIX": ctx.prefix(f"http-{name}"),
            "SEGMENTATION_API_KEYS": f"{KEY}:bench:admin",
            **extra_env,
        }
        self.log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "segmentation"), "serve", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        ctx.on_exit(lambda: drop_prefix(ctx.redis_url, env["SEGMENTATION_REDIS_PREFIX"]))
        ctx.on_exit(self.stop)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.flush()
                tail = (data_dir / "server.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"server {name} did not start:\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def setup_database(client: httpx.Client, database: str, csv: Path) -> int:
    """Import a CSV and configure it through HTTP; returns once the read model has it."""
    started = time.perf_counter()
    response = client.post(
        f"/databases/{database}/imports",
        content=_chunks(csv),
        headers={"Content-Type": "text/csv"},
        timeout=600,
    )
    response.raise_for_status()
    response = client.put(f"/databases/{database}/configuration", json=CONFIG, timeout=60)
    response.raise_for_status()
    position = int(response.json()["position"])
    while True:
        response = client.get(
            f"/databases/{database}/segmentation", params={"min_position": position}, timeout=60
        )
        if response.status_code == 200:
            break
        if response.status_code != 503 or time.perf_counter() - started > 600:
            raise RuntimeError(f"segmentation of {database}: {response.status_code} {response.text[:300]}")
    return position


def wrk(url: str, seconds: int = WRK_SECONDS, connections: int = 16) -> dict[str, Any]:
    """wrk with one thread (the machine has two cores; the server uses the other)."""
    script = Path(__file__).with_name("wrk_report.lua")
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def cached_summary(ctx: Context, server: Server) -> None:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    summary_url = f"{server.base}/databases/bench/segmentation"
    health = wrk(f"{server.base}/health")
    spy = py_spy_record(ctx, server.proc.pid, "http_summary_server", WRK_SECONDS - 2)
    summary = wrk(summary_url)
    finish_py_spy(ctx, spy, "http_summary_server")
    for name, result in (("health", health), ("summary", summary)):
        if result["errors"] or result["non2xx"]:
            raise RuntimeError(f"wrk on {name}: {result}")
    ctx.add(
        ratio_figure(
            "http: cached summary, 16 connections, req/s",
            summary["rps"], health["rps"], "req/s", "GET /health, same server", 0.5, at_most=False,
            summary=summary, health=health,
        )
    )  # fmt: skip
    p99 = summary["p99_us"] / 1000
    ctx.add(
        Figure(
            "http: cached summary, 16 connections, p99",
            p99, "ms", health["p99_us"] / 1000, "GET /health p99", p99 / (health["p99_us"] / 1000),
            "<= 10 ms", p99 <= 10, {"p50_ms": summary["p50_us"] / 1000, "p90_ms": summary["p90_us"] / 1000},
        )
    )  # fmt: skip


FIRST_FILTERS = [
    "Region:North",
    "Region:South",
    "Region:East",
    "Region:West",
    "Region:Central",
    "Customer Type:Retail",
    "Customer Type:Online",
]


def filtered_views(ctx: Context, client: httpx.Client) -> None:
    firsts = []
    spy = py_spy_record(ctx, ctx_server_pid(client), "http_filtered_first_server", 12)
    for item in FIRST_FILTERS:
        started = time.perf_counter()
        response = client.get(f"/databases/bench/segmentation?filter={quote(item)}", timeout=120)
        firsts.append(time.perf_counter() - started)
        response.raise_for_status()
    finish_py_spy(ctx, spy, "http_filtered_first_server")
    repeated = []
    url = f"/databases/bench/segmentation?filter={quote(FIRST_FILTERS[0])}"
    for _ in range(100):
        started = time.perf_counter()
        client.get(url).raise_for_status()
        repeated.append(time.perf_counter() - started)
    first_p50 = statistics.median(firsts)
    ctx.add(
        Figure("http: filtered view, first request, p50", first_p50, "s", target="<= 0.5 s",
               met=first_p50 <= 0.5, notes={"samples": firsts, "filters": FIRST_FILTERS})
    )  # fmt: skip
    repeated_p50 = statistics.median(repeated) * 1000
    ctx.add(
        Figure("http: filtered view, repeated, p50", repeated_p50, "ms", target="<= 2 ms",
               met=repeated_p50 <= 2, notes={"p99_ms": percentile(repeated, 0.99) * 1000, "requests": 100})
    )  # fmt: skip


_server_pids: dict[str, int] = {}


def ctx_server_pid(client: httpx.Client) -> int:
    return _server_pids[str(client.base_url)]


# ------------------------------------------------------------------ commands


def http_command_pairs(client: httpx.Client, database: str) -> tuple[float, int]:
    """Events per second of RemoveCustomers + RestoreCustomers pairs sent one at a time."""

    def pair() -> None:
        response = client.post(
            f"/databases/{database}/removals", json={"dimension": "Region", "values": ["West"]}
        )
        response.raise_for_status()
        client.delete(f"/databases/{database}/removals/{response.json()['rule_id']}").raise_for_status()

    for _ in range(5):
        pair()
    return _pairs_for(pair)


def _pairs_for(pair: Any) -> tuple[float, int]:
    pairs = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < COMMAND_SECONDS:
        pair()
        pairs += 1
    return 2 * pairs / elapsed, 2 * pairs


def inprocess_command_pairs(ctx: Context, settings: Settings, csv: Path) -> tuple[float, int]:
    app = build_application(settings)
    try:
        appcalls.import_csv(app, "cmd", csv)
        appcalls.configure(app, "cmd", dict(CONFIG))

        def pair() -> None:
            rule_id = appcalls.remove_customers(app, "cmd", "Region", ["West"])
            appcalls.restore_customers(app, "cmd", rule_id)

        for _ in range(5):
            pair()
        return _pairs_for(pair)
    finally:
        app.close()


def _postgres_schema(ctx: Context, purpose: str) -> str:
    import psycopg

    schema = f"bench_{ctx.run_id}_{purpose}"
    dsn = f"postgresql://{POSTGRES['POSTGRES_USER']}@{POSTGRES['POSTGRES_HOST']}:{POSTGRES['POSTGRES_PORT']}/test"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    ctx.on_exit(drop)
    return schema


def commands(ctx: Context, store: str, client: httpx.Client, small: Path) -> None:
    if store == "sqlite":
        settings = Settings(data_dir=ctx.workdir / "inprocess-sqlite", event_store="sqlite")
    else:
        env = {**POSTGRES, "POSTGRES_SCHEMA": _postgres_schema(ctx, "inprocess")}
        settings = Settings(
            data_dir=ctx.workdir / "inprocess-pg", event_store="postgres", eventsourcing_env=env
        )
    base_eps, base_events = inprocess_command_pairs(ctx, settings, small)
    spy = py_spy_record(ctx, ctx_server_pid(client), f"http_commands_{store}_server", int(COMMAND_SECONDS))
    http_eps, http_events = http_command_pairs(client, "cmd")
    finish_py_spy(ctx, spy, f"http_commands_{store}_server")
    ctx.add(
        ratio_figure(
            f"http: commands, one client, {store}, events/s",
            http_eps, base_eps, "events/s", "same commands in-process", 0.5, at_most=False,
            http_events=http_events, inprocess_events=base_events,
        )
    )  # fmt: skip


def run(ctx: Context, stores: tuple[str, ...] = ("sqlite", "postgres")) -> None:
    small = ctx.workdir / "small.csv"
    generate(2_000, 200, small, seed=ctx.seed)
    print("http: starting the SQLite server", flush=True)
    server = Server(ctx, "sqlite", {"SEGMENTATION_EVENT_STORE": "sqlite"})
    with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as client:
        _server_pids[str(client.base_url)] = server.proc.pid
        started = time.perf_counter()
        setup_database(client, "bench", ctx.files["csv"])
        print(f"  imported and projected {ctx.rows} rows over HTTP in {time.perf_counter() - started:.1f} s")
        cached_summary(ctx, server)
        filtered_views(ctx, client)
        if "sqlite" in stores:
            setup_database(client, "cmd", small)
            commands(ctx, "sqlite", client, small)
    server.stop()
    if "postgres" in stores:
        print("http: starting the PostgreSQL server", flush=True)
        env = {
            **POSTGRES,
            "POSTGRES_SCHEMA": _postgres_schema(ctx, "http"),
            "SEGMENTATION_EVENT_STORE": "postgres",
        }
        server = Server(ctx, "postgres", env)
        with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as client:
            _server_pids[str(client.base_url)] = server.proc.pid
            setup_database(client, "cmd", small)
            commands(ctx, "postgres", client, small)
        server.stop()
