"""The load client: a few processes, one keep-alive HTTP connection each (stdlib
http.client), so the client costs little of the two cores it shares with the server.

A scenario gives each client its own list of requests. A read scenario cycles through
its list for a fixed time (after a short warm-up that is not counted); a write scenario
sends each request once (each names a different milestone or draft), so it ends when
the lists are done or the time is up."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

# (method, path, JSON body or None)
Request = tuple[str, str, Any]


@dataclass
class Result:
    """What one scenario measured: requests completed per second of wall time, and the
    latency percentiles of those requests (milliseconds)."""

    name: str
    requests: int
    errors: int
    seconds: float
    throughput: float
    p50: float
    p95: float
    p99: float
    statuses: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def row(self) -> dict[str, Any]:
        return self.__dict__.copy()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def summarise(
    name: str, samples: list[tuple[float, float, int]], seconds: float, note: str = ""
) -> Result:
    """`samples` are (start, latency in seconds, status) of every counted request."""
    latencies = sorted(s[1] * 1000 for s in samples)
    statuses: dict[str, int] = {}
    for _start, _latency, status in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    errors = sum(1 for s in samples if not 200 <= s[2] < 400)
    return Result(
        name=name,
        requests=len(samples),
        errors=errors,
        seconds=round(seconds, 2),
        throughput=round(len(samples) / seconds, 1) if seconds > 0 else 0.0,
        p50=round(percentile(latencies, 50), 1),
        p95=round(percentile(latencies, 95), 1),
        p99=round(percentile(latencies, 99), 1),
        statuses=statuses,
        note=note,
    )


class Client:
    """One keep-alive connection; reconnects if the server closed it."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port, self.headers = host, port, headers
        self.connection = http.client.HTTPConnection(host, port, timeout=120)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=data, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def _client_loop(
    host: str,
    port: int,
    headers: dict[str, str],
    requests: list[Request],
    cycle: bool,
    start_at: float,
    warmup: float,
    stop_at: float,
    out: Any,
) -> None:
    client = Client(host, port, headers)
    samples: list[tuple[float, float, int]] = []
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    counted_from = start_at + warmup
    n = 0
    while requests:
        if time.time() >= stop_at:
            break
        if not cycle and n >= len(requests):
            break
        method, path, body = requests[n % len(requests)]
        n += 1
        began = time.time()
        try:
            status, _content = client.request(method, path, body)
        except OSError:
            status = 599
        ended = time.time()
        if began >= counted_from:
            samples.append((began, ended - began, status))
    client.close()
    out.send(samples)
    out.close()


def run_load(
    name: str,
    host: str,
    port: int,
    headers: dict[str, str],
    per_client: list[list[Request]],
    *,
    cycle: bool,
    duration: float,
    warmup: float = 0.0,
    note: str = "",
) -> Result:
    """Drive the server with one process per list in `per_client`; see the module doc."""
    context = multiprocessing.get_context("fork")
    start_at = time.time() + 0.3
    stop_at = start_at + warmup + duration
    pipes, processes = [], []
    for requests in per_client:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=_client_loop,
            args=(host, port, headers, requests, cycle, start_at, warmup, stop_at, send),
        )
        process.start()
        send.close()
        pipes.append(receive)
        processes.append(process)
    samples: list[tuple[float, float, int]] = []
    for receive in pipes:
        samples.extend(receive.recv())
    for process in processes:
        process.join()
    if not samples:
        return summarise(name, samples, 0.0, note)
    first = min(s[0] for s in samples)
    last = max(s[0] + s[1] for s in samples)
    # A read scenario counts over its whole window; a write scenario over the time its
    # requests actually took (it may finish before the window ends).
    seconds = duration if cycle else last - first
    return summarise(name, samples, seconds, note)


def run_callable_load(
    name: str,
    per_client: list[list[Any]],
    work: Callable[[Any, Any], None],
    setup: Callable[[], Any],
    *,
    duration: float,
    note: str = "",
) -> Result:
    """As run_load for work that is not HTTP (the direct raw-SQL ceiling): each process
    calls `setup()` once (e.g. to connect), then `work(state, item)` per item."""
    context = multiprocessing.get_context("fork")
    start_at = time.time() + 0.5
    stop_at = start_at + duration

    def loop(items: list[Any], out: Any) -> None:
        state = setup()
        samples = []
        delay = start_at - time.time()
        if delay > 0:
            time.sleep(delay)
        for item in items:
            if time.time() >= stop_at:
                break
            began = time.time()
            try:
                work(state, item)
                status = 200
            except Exception:
                status = 500
            samples.append((began, time.time() - began, status))
        out.send(samples)
        out.close()

    pipes, processes = [], []
    for items in per_client:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=loop, args=(items, send))
        process.start()
        send.close()
        pipes.append(receive)
        processes.append(process)
    samples: list[tuple[float, float, int]] = []
    for receive in pipes:
        samples.extend(receive.recv())
    for process in processes:
        process.join()
    if not samples:
        return summarise(name, samples, 0.0, note)
    seconds = max(s[0] + s[1] for s in samples) - min(s[0] for s in samples)
    return summarise(name, samples, seconds, note)


def split(items: Sequence[Any], clients: int) -> list[list[Any]]:
    """Deal `items` round-robin to `clients` lists (each request goes to one client)."""
    return [list(items[i::clients]) for i in range(clients)]


def sign_in(host: str, port: int, email: str, password: str) -> str:
    """Sign in through the login form like a browser (CSRF cookie and token); returns the
    Cookie header of the session."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    connection.request("GET", "/login/")
    response = connection.getresponse()
    page = response.read().decode()
    cookies = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    csrf = cookies["csrftoken"].value
    marker = 'name="csrfmiddlewaretoken" value="'
    token = page[page.index(marker) + len(marker) :].split('"', 1)[0]
    body = urlencode({"username": email, "password": password, "csrfmiddlewaretoken": token})
    connection.request(
        "POST",
        "/login/",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf}",
            "Referer": f"http://{host}:{port}/login/",
        },
    )
    response = connection.getresponse()
    response.read()
    for header in response.headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    connection.close()
    if response.status != 302 or "sessionid" not in cookies:
        raise RuntimeError(f"signing in as {email} failed: HTTP {response.status}")
    return "; ".join(f"{k}={v.value}" for k, v in cookies.items())


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0
