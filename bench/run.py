"""Benchmark: the app's routes under gunicorn against a bare Flask app, in alternating rounds.

    python bench/run.py [--rounds 5] [--duration 5] [--connections 16] [--only TEXT]
    python bench/run.py --memory [--sessions 10000] [--requests 100000]

Each server is gunicorn with one sync worker on a loopback port, settings as in production
(bench/settings.py: Redis sessions on DB 15, a migrated SQLite database holding one user, a
local HS256 token issuer). With two or more cores, the servers run on one
core and the load generator on another, so that they do not take turns on the same core.
For each route, rounds against the app and against the bare Flask "hello" app alternate
(ABBA order); a round's ratio is app req/s over bare req/s in that round, and the table shows
the median ratio and its spread (min..max). Load: ``wrk`` (Debian package) when installed,
else a Python load generator (slower: it can be the bottleneck, so its ratios read low).

``--memory`` checks instead that a worker's memory stays bounded: its RSS after
``--requests`` protected requests spread over ``--sessions`` distinct sessions.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.settings import (
    BENCH_PASSWORD,
    BENCH_USER,
    ISSUER,
    ISSUER_AUDIENCE,
    ISSUER_KEY,
    app_settings,
    delete_sessions,
)
from tests.support.gunicorn import REPO_ROOT, Server, gunicorn

BARE_APP = "bench.bare_app:app"
FLOOR_APP = "bench.bare_app:with_headers"
VERSIONS = ("Flask", "Werkzeug", "gunicorn", "jwcrypto", "redis")
WARM_UP_SECONDS = 1
MEMORY_LIMIT_MB = 150
SESSION_COOKIE = "session"
# Longer than any run, as a provider's token for a long job would be.
EXTERNAL_TOKEN_SECONDS = 4 * 3600

Headers = dict[str, str]


@dataclass(frozen=True)
class Result:
    """One load run."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    # The worker's own CPU time per request: unlike req/s, barely moved by other processes.
    cpu_us: float = float("nan")


# Load generators ---------------------------------------------------------------------------


def wrk(url: str, headers: Headers, duration: int, connections: int) -> Result:
    """Run wrk (one thread) and parse its summary."""
    command = ["wrk", "--latency", "-t", "1", "-c", str(connections), "-d", f"{duration}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return _wrk_result(output)


def _wrk_result(output: str) -> Result:
    """Requests/s, p50, p99 and failed requests from wrk's output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    return Result(rps, _wrk_latency(output, "50%"), _wrk_latency(output, "99%"), errors, requests)


def _wrk_latency(output: str, percentile: str) -> float:
    """A latency percentile from wrk's distribution, in ms."""
    match = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", output)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


# Rotates through header sets; after ``limit`` responses it prints its count and exits (wrk's
# own thread:stop() would still wait for the whole --duration).
WRK_ROTATING = """
local requests, sent, failed, limit, next_index = {}, 0, 0, 0, 0
function init(args)
  for line in io.lines(args[1]) do
    local auth, cookie = line:match("^([^\\t]*)\\t(.*)$")
    requests[#requests + 1] = wrk.format("GET", args[3], {Authorization = auth, Cookie = cookie})
  end
  limit = tonumber(args[2])
end
function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
function response(status, headers, body)
  sent = sent + 1
  if status ~= 200 then failed = failed + 1 end
  if sent >= limit then
    io.write(string.format("answered %d failed %d\\n", sent, failed))
    io.flush()
    os.exit(0)
  end
end
"""


def wrk_rotating(
    url: str, path: str, header_sets: Sequence[Headers], requests: int, connections: int
) -> Result:
    """wrk sending ``requests`` requests, each with the next of ``header_sets``."""
    with tempfile.TemporaryDirectory() as tmp:
        script, lines = Path(tmp, "rotate.lua"), Path(tmp, "headers.tsv")
        script.write_text(WRK_ROTATING)
        lines.write_text("".join(f"{h['Authorization']}\t{h['Cookie']}\n" for h in header_sets))
        command = ["wrk", "-t", "1", "-c", str(connections), "-d", "3600s", "-s", str(script)]
        command += [url, "--", str(lines), str(requests), path]
        started = time.monotonic()
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        elapsed = time.monotonic() - started
    counts = re.search(r"answered (\d+) failed (\d+)", output)
    if counts is None:
        raise RuntimeError(f"wrk stopped before {requests} responses:\n{output}")
    answered, failed = int(counts.group(1)), int(counts.group(2))
    return Result(answered / elapsed, float("nan"), float("nan"), failed, answered)


def python_load(
    url: str,
    header_sets: Sequence[Headers],
    duration: float,
    connections: int,
    requests: int | None = None,
) -> Result:
    """Fallback load generator: ``connections`` threads, each one request at a time.

    Each request takes the next of ``header_sets``; it stops after ``duration`` seconds or
    ``requests`` requests, whichever comes first.
    """
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, port = host_port.split(":")
    latencies: list[float] = []
    errors = [0]
    sent = [0]
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + duration

    def worker() -> None:
        mine: list[float] = []
        bad = 0
        while time.monotonic() < deadline:
            with lock:
                if requests is not None and sent[0] >= requests:
                    break
                headers = header_sets[sent[0] % len(header_sets)]
                sent[0] += 1
            begun = time.perf_counter()
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
            mine.append((time.perf_counter() - begun) * 1000)
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Result(
        len(latencies) / elapsed, statistics.median(latencies), p99, errors[0], len(latencies)
    )


def load(use_wrk: bool, url: str, headers: Headers, duration: int, connections: int) -> Result:
    """One load run with the chosen generator."""
    if use_wrk:
        return wrk(url, headers, duration, connections)
    return python_load(url, [headers], duration, connections)


def stat_fields(stat: Path) -> list[str]:
    """The fields of a /proc/<pid>/stat file after the command name (which may hold spaces)."""
    return stat.read_text().rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = stat_fields(Path(f"/proc/{pid}/stat"))
    # utime and stime: fields 14 and 15 of stat(5), counted after the command name here.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured_load(
    use_wrk: bool, worker: int, url: str, headers: Headers, duration: int, connections: int
) -> Result:
    """A load run, with the worker's CPU time per request."""
    before = cpu_seconds(worker)
    result = load(use_wrk, url, headers, duration, connections)
    used = cpu_seconds(worker) - before
    return replace(result, cpu_us=used / max(result.requests, 1) * 1e6)


# Credentials: how a route's requests authenticate ------------------------------------------


def _request(
    server: Server, method: str, path: str, headers: Headers, body: str | None = None
) -> tuple[Headers, str]:
    """Send one request that must answer 200 or 201; the session cookie (when set), the body."""
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
        if response.status not in (200, 201):
            raise RuntimeError(f"{method} {path} answered {response.status}: {text}")
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
    finally:
        connection.close()
    return ({"Cookie": cookie} if cookie.startswith(f"{SESSION_COOKIE}=") else {}), text


def _get(server: Server, path: str, headers: Headers | None = None) -> tuple[Headers, str]:
    """GET a path; the session cookie (when one is set) and the body."""
    return _request(server, "GET", path, headers or {})


def _post(server: Server, path: str, data: Mapping[str, str], headers: Headers) -> dict[str, str]:
    """POST a JSON body; the JSON answer."""
    headers = {"Content-Type": "application/json", **headers}
    _, body = _request(server, "POST", path, headers, json.dumps(data))
    answer: dict[str, str] = json.loads(body)
    return answer


def no_credentials(server: Server) -> Headers:
    """Anonymous requests."""
    return {}


def session_cookie(server: Server) -> Headers:
    """The cookie of an existing session (GET /api/public then issues into that session)."""
    return _get(server, "/api/public")[0]


def session_token(server: Server) -> Headers:
    """A session token and its session cookie."""
    cookie, body = _get(server, "/api/public")
    token = re.search(r'"token":\s*"([^"]+)"', body).group(1)  # type: ignore[union-attr]
    return {"Authorization": f"Bearer {token}", **cookie}


def user_access_token(server: Server) -> Headers:
    """The access token of a login of the benchmark's user (POST /api/auth/login)."""
    login = {"username": BENCH_USER, "password": BENCH_PASSWORD}
    token = _post(server, "/api/auth/login", login, {})["access_token"]
    return {"Authorization": f"Bearer {token}"}


def api_key(server: Server) -> Headers:
    """A new stored API key of the benchmark's user, created with the user's access token."""
    created = _post(server, "/api/auth/api-keys", {"name": "bench"}, user_access_token(server))
    return {"X-Api-Key": created["key"]}


def external_token(server: Server) -> Headers:
    """A token of the local HS256 issuer of bench/settings.py, valid for a few hours."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": ISSUER_AUDIENCE,
        "sub": BENCH_USER,
        "iat": now,
        "exp": now + EXTERNAL_TOKEN_SECONDS,
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, ISSUER_KEY, algorithm='HS256')}"}


# Routes ------------------------------------------------------------------------------------

APP = "app"
APP_LEAN = "app, access log + metrics off"
BARE = "bare"
FLOOR = "bare, with the app's headers"
# The servers that run a bare app (no database, no settings), by name.
BARE_APPS = {BARE: BARE_APP, FLOOR: FLOOR_APP}


@dataclass(frozen=True)
class Route:
    """One line of the table: a path on one of the servers, with the credential it needs."""

    label: str
    path: str
    server: str
    credentials: Callable[[Server], Headers]
    # The server the credentials come from, when not ``server`` itself.
    issuer: str | None = None


ROUTES = (
    Route("/", "/", APP, no_credentials),
    Route("/api/public (issues a token)", "/api/public", APP, session_cookie),
    Route("/api/restricted (session token)", "/api/restricted", APP, session_token),
    # The floor of the line above: the bare app, sent the same request (token and cookie) and
    # answering with the same headers; what HTTP costs before any code of the app runs.
    Route("  bare app, same request and headers", "/", FLOOR, session_token, issuer=APP),
    Route("/api/restricted, access log + metrics off", "/api/restricted", APP_LEAN, session_token),
    Route("/api/restricted (user access token)", "/api/restricted", APP, user_access_token),
    Route("/api/restricted (API key)", "/api/restricted", APP, api_key),
    Route("/api/restricted (external HS256 token)", "/api/restricted", APP, external_token),
    # Each new kind of credential is one entry here, with a function like session_token that
    # obtains that credential from the running server.
)


def server_settings(name: str, instance: Path) -> tuple[str, Headers]:
    """The WSGI app and the environment of each server."""
    if name in BARE_APPS:
        return BARE_APPS[name], {"INSTANCE_PATH": str(instance)}
    return "api:create_app()", app_settings(instance, batteries=name == APP)


def prepare_database(env: Headers) -> None:
    """As a deployment does before it starts: the tables (migrations), then one user."""
    full_env = {**os.environ, **env}

    def flask(*arguments: str, stdin: str | None = None) -> None:
        command = [sys.executable, "-m", "flask", "--app", "api", *arguments]
        done = subprocess.run(
            command, cwd=REPO_ROOT, env=full_env, input=stdin, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(arguments)} failed:\n{done.stderr}")

    flask("db", "upgrade")
    flask("users", "create", BENCH_USER, "--password-stdin", stdin=BENCH_PASSWORD + "\n")


# Machine and pinning -----------------------------------------------------------------------


@dataclass(frozen=True)
class Cores:
    """Where the servers and the load generator run (None: wherever the OS puts them)."""

    server: int | None
    load: int | None


def choose_cores() -> Cores:
    """Two different cores when this process may use two or more."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return Cores(None, None)
    return Cores(available[0], available[1])


@contextlib.contextmanager
def pinned(core: int | None) -> Iterator[None]:
    """Run this process (and what it starts meanwhile) on one core."""
    if core is None:
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def machine(use_wrk: bool, cores: Cores) -> list[str]:
    """What the figures were measured on."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        model = found.group(1).strip() if found else model
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in VERSIONS)
    if cores.server is None:
        placement = "not pinned (one core available)"
    else:
        placement = f"gunicorn on core {cores.server}, load generator on core {cores.load}"
    generator = "wrk" if use_wrk else "Python threads (install wrk: these ratios read low)"
    return [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {os.cpu_count()} cores, {model}; {placement}",
        f"Python {platform.python_version()}; {versions}",
        f"load: {generator}",
    ]


# The benchmark -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteFigures:
    """The app's median round, the bare app's medians, every round's ratio."""

    route: Route
    app: Result
    bare_rps: float
    ratios: list[float]
    app_cpu_us: float
    bare_cpu_us: float
    errors: int


def measure_route(
    route: Route, servers: dict[str, Server], args: argparse.Namespace, use_wrk: bool
) -> RouteFigures:
    """Alternate rounds between the bare app and this route (ABBA order)."""
    app_server, bare_server = servers[route.server], servers[BARE]
    issuer = servers[route.issuer or route.server]
    targets = {
        BARE: (worker_pid(bare_server.pid), bare_server.url + "/", {}),
        APP: (worker_pid(app_server.pid), app_server.url + route.path, route.credentials(issuer)),
    }
    for _, url, headers in targets.values():
        load(use_wrk, url, headers, WARM_UP_SECONDS, args.connections)
    rounds: list[tuple[Result, Result]] = []
    for index in range(args.rounds):
        order = (BARE, APP) if index % 2 == 0 else (APP, BARE)
        got = {
            name: measured_load(use_wrk, *targets[name], args.duration, args.connections)
            for name in order
        }
        rounds.append((got[BARE], got[APP]))
    ratios = [app.requests_per_second / bare.requests_per_second for bare, app in rounds]
    by_rps = sorted((app for _, app in rounds), key=lambda result: result.requests_per_second)
    return RouteFigures(
        route,
        app=by_rps[len(by_rps) // 2],
        bare_rps=statistics.median(bare.requests_per_second for bare, _ in rounds),
        ratios=ratios,
        app_cpu_us=statistics.median(app.cpu_us for _, app in rounds),
        bare_cpu_us=statistics.median(bare.cpu_us for bare, _ in rounds),
        errors=sum(bare.errors + app.errors for bare, app in rounds),
    )


def print_table(figures: list[RouteFigures]) -> None:
    """The table: the app's median round, the ratio's median and spread, CPU per request."""
    print(
        f"{'route':<44}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'bare/s':>8}{'x bare':>8}"
        f"{'spread':>12}{'cpu us':>8}{'bare us':>8}{'errors':>7}"
    )
    for item in figures:
        spread = f"{min(item.ratios):.2f}..{max(item.ratios):.2f}"
        print(
            f"{item.route.label:<44}{item.app.requests_per_second:>7.0f}{item.app.p50_ms:>8.2f}"
            f"{item.app.p99_ms:>8.2f}{item.bare_rps:>8.0f}{statistics.median(item.ratios):>8.2f}"
            f"{spread:>12}{item.app_cpu_us:>8.0f}{item.bare_cpu_us:>8.0f}{item.errors:>7}"
        )
    print(
        "\nx bare: median over rounds of app req/s / bare req/s (spread: lowest..highest round);"
        "\ncpu us, bare us: the gunicorn worker's CPU time per request (median round), which"
        "\nother processes on the machine disturb far less than req/s."
    )


@contextlib.contextmanager
def servers_for(names: set[str], tmp: Path, cores: Cores) -> Iterator[dict[str, Server]]:
    """Start each named server on the server core; stop them all at the end."""
    with contextlib.ExitStack() as stack:
        started: dict[str, Server] = {}
        for index, name in enumerate(sorted(names)):
            app, env = server_settings(name, tmp / f"instance-{index}")
            if name not in BARE_APPS:
                prepare_database(env)
            with pinned(cores.server):
                started[name] = stack.enter_context(
                    gunicorn(env, tmp / f"gunicorn-{index}.log", workers=1, app=app)
                )
        yield started


def benchmark(args: argparse.Namespace, use_wrk: bool, cores: Cores) -> int:
    """Every selected route against the bare app; print the table."""
    routes = [route for route in ROUTES if args.only in route.label]
    if not routes:
        print(f"No route label contains {args.only!r}.", file=sys.stderr)
        return 2
    print("\n".join(machine(use_wrk, cores)))
    print(
        f"gunicorn: 1 sync worker per server; {args.connections} connections; {args.rounds} "
        f"rounds of {args.duration:g} s per route and per app, alternated\n"
    )
    with tempfile.TemporaryDirectory() as tmp, pinned(cores.load):
        names = {BARE, *(name for route in routes for name in (route.server, route.issuer) if name)}
        with servers_for(names, Path(tmp), cores) as servers:
            figures = [measure_route(route, servers, args, use_wrk) for route in routes]
    failed = sum(item.errors for item in figures)
    print_table(figures)
    if failed:
        print(f"\n{failed} requests failed; the figures above are not valid.", file=sys.stderr)
        return 1
    return 0


# The memory check --------------------------------------------------------------------------


def worker_pid(master: int) -> int:
    """The one worker of a gunicorn master (the process whose parent it is)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat_fields(stat)[1]) == master:
                return int(stat.parent.name)
    raise RuntimeError(f"gunicorn {master} has no worker process.")


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    now = re.search(r"VmRSS:\s+(\d+) kB", status)
    peak = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert now is not None and peak is not None
    return int(now.group(1)) / 1024, int(peak.group(1)) / 1024


def new_sessions(server: Server, count: int, connections: int) -> list[Headers]:
    """``count`` distinct sessions, each with a token, made over HTTP by parallel clients."""
    made: list[Headers] = []
    lock = threading.Lock()

    def client(share: int) -> None:
        mine = [session_token(server) for _ in range(share)]
        with lock:
            made.extend(mine)

    shares = [count // connections + (i < count % connections) for i in range(connections)]
    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(made) != count:
        raise RuntimeError(f"only {len(made)} of {count} sessions could be made")
    return made


def delete_header_sessions(header_sets: Sequence[Headers]) -> None:
    """Remove the benchmark's sessions (named by these Cookie headers) from Redis."""
    delete_sessions([h["Cookie"].partition("=")[2] for h in header_sets if "Cookie" in h])


def memory_check(args: argparse.Namespace, use_wrk: bool, cores: Cores) -> int:
    """A worker's RSS after ``--requests`` protected calls over ``--sessions`` sessions."""
    print("\n".join(machine(use_wrk, cores)))
    path = "/api/restricted"
    with (
        tempfile.TemporaryDirectory() as tmp,
        pinned(cores.load),
        servers_for({APP}, Path(tmp), cores) as servers,
    ):
        server = servers[APP]
        pid = worker_pid(server.pid)
        started, _ = memory_mb(pid)
        sessions = new_sessions(server, args.sessions, args.connections)
        try:
            if use_wrk:
                result = wrk_rotating(server.url, path, sessions, args.requests, args.connections)
            else:
                result = python_load(
                    server.url + path, sessions, 3600, args.connections, args.requests
                )
            now, peak = memory_mb(pid)
        finally:
            delete_header_sessions(sessions)
    verdict = "under" if now < MEMORY_LIMIT_MB else "OVER"
    print(
        f"\nworker RSS: {started:.1f} MB after start; {now:.1f} MB (peak {peak:.1f} MB) after "
        f"{args.sessions} sessions were made and {args.requests} requests to {path} spread over "
        f"them ({result.requests_per_second:.0f} req/s, {result.errors} errors): "
        f"{verdict} the {MEMORY_LIMIT_MB} MB target"
    )
    return 0 if now < MEMORY_LIMIT_MB and not result.errors else 1


def main() -> int:
    """Run the benchmark or the memory check."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per route and app")
    parser.add_argument("--duration", type=int, default=5, help="seconds per round")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--only", default="", help="only routes whose label contains this")
    parser.add_argument(
        "--load", choices=("auto", "wrk", "python"), default="auto", help="load generator"
    )
    parser.add_argument("--memory", action="store_true", help="run the memory check instead")
    parser.add_argument("--sessions", type=int, default=10_000, help="memory check: sessions")
    parser.add_argument("--requests", type=int, default=100_000, help="memory check: requests")
    args = parser.parse_args()
    if args.load == "wrk" and not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install wrk).", file=sys.stderr)
        return 2
    use_wrk = args.load == "wrk" or (args.load == "auto" and shutil.which("wrk") is not None)
    cores = choose_cores()
    if args.memory:
        return memory_check(args, use_wrk, cores)
    return benchmark(args, use_wrk, cores)


if __name__ == "__main__":
    sys.exit(main())
