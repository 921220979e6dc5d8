"""Benchmark: the app's routes under gunicorn against a bare Flask app, in one run.

    python bench/run.py [--duration 5] [--connections 8] [--store redis|filesystem]

Starts each server with one sync worker on a free loopback port, drives load with wrk
when it is installed (Debian package ``wrk``) or with a bounded Python load generator,
and prints requests/s, p50/p99 latency and each route's ratio to the bare app.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.gunicorn import Server, gunicorn

BARE_APP = "bench.bare_app:app"
REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Result:
    """One load run."""

    label: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk(url: str, headers: dict[str, str], duration: int, connections: int) -> Result:
    """Run wrk and parse its summary."""
    command = ["wrk", "--latency", "-t", "1", "-c", str(connections), "-d", f"{duration}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return Result("", rps, _wrk_latency(output, "50%"), _wrk_latency(output, "99%"), errors)


def _wrk_latency(output: str, percentile: str) -> float:
    """A latency percentile from wrk's distribution, in ms."""
    match = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", output)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def python_load(url: str, headers: dict[str, str], duration: int, connections: int) -> Result:
    """Fallback load generator: ``connections`` threads, each one request at a time."""
    host_port, path = url.removeprefix("http://").split("/", 1)
    host, port = host_port.split(":")
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + duration
    lock = threading.Lock()

    def worker() -> None:
        mine: list[float] = []
        bad = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                connection.request("GET", "/" + path, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status >= 300:
                    bad += 1
            except OSError:
                bad += 1
            finally:
                connection.close()
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Result("", len(latencies) / duration, statistics.median(latencies), p99, errors[0])


def token_headers(server: Server) -> dict[str, str]:
    """Authorization and session cookie of a fresh token."""
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=10)
    connection.request("GET", "/api/public")
    response = connection.getresponse()
    body = response.read().decode()
    cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
    token = re.search(r'"token":\s*"([^"]+)"', body).group(1)  # type: ignore[union-attr]
    return {"Authorization": f"Bearer {token}", "Cookie": cookie}


def app_env(store: str, instance: Path, batteries: bool) -> dict[str, str]:
    """Settings for the app under test; rate limits off so token issuing is measured."""
    env = {
        "APP_ENV": "development",
        "INSTANCE_PATH": str(instance),
        "SESSION_TYPE": store,
        # INFO: with the batteries on, every request really writes its access-log line.
        "LOG_LEVEL": "info",
        "RATELIMIT_ENABLED": "0",
        "ACCESS_LOG": "1" if batteries else "0",
        "METRICS_ENABLED": "1" if batteries else "0",
    }
    if store == "redis":
        env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", REDIS_URL)
    return env


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per route")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--store", choices=("redis", "filesystem"), default="redis")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per route; the median is reported"
    )
    args = parser.parse_args()

    load = wrk if shutil.which("wrk") else python_load
    print(f"load generator: {'wrk' if load is wrk else 'python (install wrk for better figures)'}")
    print(
        f"gunicorn: 1 sync worker; {args.connections} connections; median of {args.repeat} runs"
        f" of {args.duration} s per route; session store: {args.store}\n"
    )
    results: list[Result] = []

    def measure(label: str, server: Server, path: str, headers: dict[str, str]) -> None:
        load(server.url + path, headers, 2, args.connections)  # warm-up
        runs = sorted(
            (load(server.url + path, headers, args.duration, args.connections)
             for _ in range(args.repeat)),
            key=lambda run: run.requests_per_second,
        )  # fmt: skip
        results.append(replace(runs[len(runs) // 2], label=label))

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        log = tmp_path / "gunicorn.log"
        base = {"INSTANCE_PATH": str(tmp_path / "bare")}
        with gunicorn(base, log, workers=1, app=BARE_APP) as bare:
            measure("bare Flask /", bare, "/", {})
        for batteries in (True, False):
            suffix = "" if batteries else " (access log + metrics off)"
            env = app_env(args.store, tmp_path / "instance", batteries)
            with gunicorn(env, log, workers=1) as server:
                headers = token_headers(server)
                if batteries:
                    measure("/", server, "/", {})
                    measure("/api/public", server, "/api/public", {"Cookie": headers["Cookie"]})
                measure("/api/restricted" + suffix, server, "/api/restricted", headers)

    bare_rps = results[0].requests_per_second
    print(f"{'route':<46}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'x bare':>8}{'errors':>8}")
    for result in results:
        print(
            f"{result.label:<46}{result.requests_per_second:>9.0f}{result.p50_ms:>9.2f}"
            f"{result.p99_ms:>9.2f}{result.requests_per_second / bare_rps:>8.2f}{result.errors:>8}"
        )
    failed = sum(result.errors for result in results)
    if failed:
        print(f"\n{failed} requests failed; the figures above are not valid.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
