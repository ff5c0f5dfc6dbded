"""Durable ingest through the real server: reports/s acked only after their commit.

    .venv/bin/python bench/ingest.py [--messages 20000] [--clients 1 8] [--postgres URL]

Each run starts `probelink-server serve` as its own process on a fresh data dir (and,
for PostgreSQL, a fresh schema that is dropped afterwards), so runs never accumulate:

1. a seeding agent uploads SEED corpus reports and the admin token (from the data dir)
   asks the server to train its dictionary, as a fleet's server has one in steady state;
2. each client process enrolls with the data dir's enroll secret and a device key of its
   own, gets the credential and the dictionary, opens Connect, says hello and streams
   reports with 64 in flight (bench/streams.py), each a corpus report with a fresh id and
   signed with its key, so every one is verified and stored;
3. the server is stopped with SIGTERM, and the stored count must equal seed + acked.

A refusal of any report voids the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import grpc
from streams import CONNECT, ClientPlan, ClientSetup, StreamRate, run_clients

from probelink.server.store.open import open_store
from probelink.signing import DeviceKey
from probelink.v1 import admin_pb2, admin_pb2_grpc, gateway_pb2, gateway_pb2_grpc, report_pb2

SEED = 1000
SERVER = Path(sys.executable).parent / "probelink-server"


@dataclass(frozen=True)
class IngestRun:
    backend: str
    rate: StreamRate
    stored: int
    expected: int
    dictionary_id: int


@dataclass(frozen=True)
class _Server:
    target: str
    data_dir: Path
    db: str


@contextlib.contextmanager
def real_server(db: str | None, tmp: Path) -> Iterator[_Server]:
    """`probelink-server serve` on a free loopback port with a fresh data dir in `tmp`."""
    data_dir = tmp / "data"
    port_file = tmp / "port"
    log = tmp / "server.log"
    argv = [str(SERVER), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)]
    # Trained once, on purpose, after seeding: not again in the middle of the run.
    argv += ["--port-file", str(port_file), "--dict-train-after", "0"]
    if db:
        argv += ["--db", db]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        target = f"127.0.0.1:{port_file.read_text().strip()}"
        yield _Server(target, data_dir, db or str(data_dir / "probelink.db"))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError("the server did not stop within 60 s of SIGTERM") from None


def agent_setup(target: str, client_no: int, data_dir: str) -> ClientSetup:
    """Enroll as an agent would, registering a fresh device key."""
    secret = (Path(data_dir) / "enroll.secret").read_text().strip()
    identity = report_pb2.DeviceIdentity(
        manufacturer="Probelink bench", model="streaming client", serial_number=f"B{client_no:05}"
    )
    key = DeviceKey.generate()
    with grpc.insecure_channel(target) as channel:
        enrolled = gateway_pb2_grpc.AgentGatewayServiceStub(channel).Enroll(
            gateway_pb2.EnrollRequest(
                enroll_secret=secret,
                identity=identity,
                agent_version="bench",
                device_public_key=key.public_key,
            ),
            timeout=30,
        )
    dictionary = None
    if enrolled.dictionary.dictionary_id:
        dictionary = (enrolled.dictionary.dictionary_id, enrolled.dictionary.content)
    hello = gateway_pb2.ConnectHello(
        dictionary_id=dictionary[0] if dictionary else 0, agent_version="bench"
    )
    metadata = [("authorization", f"Bearer {enrolled.credential}")]
    preamble = [gateway_pb2.ConnectRequest(hello=hello).SerializeToString()]
    return ClientSetup(metadata, preamble, dictionary, key)


def _train(server: _Server) -> int:
    """Ask the server to train its dictionary on what is stored; its id."""
    token = (server.data_dir / "admin.token").read_text().strip()
    with grpc.insecure_channel(server.target) as channel:
        reply = admin_pb2_grpc.AdminServiceStub(channel).TrainDictionary(
            admin_pb2.TrainDictionaryRequest(),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=120,
        )
    return int(reply.dictionary.dictionary_id)


def measure(clients: int, messages: int, db: str | None = None) -> IngestRun:
    """One run on a fresh server: durable reports/s with `clients` streaming agents."""
    with tempfile.TemporaryDirectory(prefix="probelink-bench-") as tmp:
        with real_server(db, Path(tmp)) as server:
            arg = str(server.data_dir)
            run_clients([ClientPlan(server.target, CONNECT, 10_000, SEED, 64, 0, agent_setup, arg)])
            dictionary_id = _train(server)
            per_client = messages // clients
            plans = [
                ClientPlan(server.target, CONNECT, n, per_client, setup=agent_setup, setup_arg=arg)
                for n in range(clients)
            ]
            rate = run_clients(plans)
            warmups = sum(p.warmup for p in plans)
        # The server has stopped: what it acked must all be there, once.
        store = open_store(server.db)
        try:
            stored = store.count_reports()
        finally:
            store.close()
    expected = SEED + warmups + rate.messages
    backend = "postgresql" if db and db.startswith("postgres") else "sqlite"
    return IngestRun(backend, rate, stored, expected, dictionary_id)


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A new, empty PostgreSQL schema for one run; yields a URL that uses it. Dropped after."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    joiner = "&" if "?" in url else "?"
    try:
        yield f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def postgres_url(given: str | None) -> str | None:
    """--postgres, else PROBELINK_BENCH_POSTGRES, else PROBELINK_TEST_POSTGRES, else None."""
    return (
        given
        or os.environ.get("PROBELINK_BENCH_POSTGRES")
        or os.environ.get("PROBELINK_TEST_POSTGRES")
        or None
    )


def measure_on(backend_url: str | None, clients: int, messages: int) -> IngestRun:
    """`measure` on SQLite (None) or in a fresh schema of the PostgreSQL at `backend_url`."""
    if backend_url is None:
        return measure(clients, messages)
    with fresh_schema(backend_url) as url:
        return measure(clients, messages, url)


def main() -> None:
    parser = argparse.ArgumentParser(description="durable ingest through the real server")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--postgres", help="postgresql://… to measure too (a schema is made)")
    args = parser.parse_args()
    pg = postgres_url(args.postgres)
    for url in [None, pg] if pg else [None]:
        for clients in args.clients:
            run = measure_on(url, clients, args.messages)
            ok = "ok" if run.stored == run.expected else "MISMATCH"
            print(
                f"{run.backend}, {clients} agents: {run.rate.per_second:,.0f} reports/s "
                f"({run.rate.seconds:.2f} s); stored {run.stored} of {run.expected} {ok}"
            )


if __name__ == "__main__":
    main()
