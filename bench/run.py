#!/usr/bin/env python3
"""Benchmarks asf-proxy side by side with nginx on the same static upstream, in one run.

Scenarios (same load generator, same upstream, same machine, same run):
  1. direct      wrk -> nginx static JSON (the ceiling)
  2. nginx       wrk -> nginx reverse proxy (proxy_pass, upstream keepalive) -> static JSON (the peer)
  3. asf-proxy   wrk -> asf-proxy full pipeline (valid token, shield, authorization, one Redis
                 round trip, token swap) -> static JSON
  4. 401         asf-proxy answering a bad token vs nginx answering a static 401
  5. queue       many concurrent requests held waiting for budget slots (needs the global budget)

and, in the same run, the least any Pingora proxy does (proxy/examples/bench_bare.rs, same Pingora,
listener settings, threads and allocator): a bare forward, a bare forward after one trivial Redis
script call, a fixed 401, and the same number of requests held until their slots. They show how
much of the distance to nginx is Pingora's own and how much is the gateway's work.

Writes bench/RESULTS.md (full mode) or bench/out/RESULTS-quick.md (quick mode).
Usage: bench/run.py [--quick] [--duration SECS] [--connections N]
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
HS256_SECRET = "bench-hs256-secret-of-at-least-32-bytes!!"
UID = "0000BE01"
UPSTREAM_BODY = '[{"hubBindingRole":"MASTER","hubId":"0001A001"}]'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def nginx_conf(static_port, proxy_port, refuse_port):
    return f"""
worker_processes 1;
pid {OUT}/nginx.pid;
error_log {OUT}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    upstream static_upstream {{ server 127.0.0.1:{static_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{static_port};
        location / {{ default_type application/json; return 200 '{UPSTREAM_BODY}'; }}
    }}
    server {{
        listen 127.0.0.1:{proxy_port};
        location / {{
            proxy_pass http://static_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen 127.0.0.1:{refuse_port};
        location / {{ default_type application/json; return 401 '{{"message":"Session token is invalid","messageId":"x","errors":[]}}'; }}
    }}
}}
"""


class Run:
    """Starts and stops everything of one benchmark run."""

    def __init__(self, profile):
        self.procs = []
        self.bin = ROOT / "target" / profile
        self.profile = profile

    def start(self, args, env=None, log=None):
        stream = open(OUT / log, "w") if log else subprocess.DEVNULL
        proc = subprocess.Popen(args, env=env, stdout=stream, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def cpu_seconds(pid):
    """User + system CPU seconds of a process (and its threads) and of its child processes that are
    still running (nginx's worker under its master)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / ticks
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return own + sum(cpu_seconds(int(kid)) for kid in kids)


def redis_cpu_seconds():
    """Redis's own user + system CPU seconds (`INFO cpu`)."""
    out = subprocess.run(["redis-cli", "info", "cpu"], capture_output=True, text=True, check=True).stdout
    return sum(float(v) for v in re.findall(r"used_cpu_(?:sys|user):([\d.]+)", out))


def rss_mb(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def redis_calls():
    """Calls per command name (commands run inside a script count too)."""
    out = subprocess.run(["redis-cli", "info", "commandstats"], capture_output=True, text=True, check=True).stdout
    return {name: int(calls) for name, calls in re.findall(r"cmdstat_(\w+):calls=(\d+)", out)}


def parse_duration_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)?", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}.get(match.group(2) or "ms", 1.0)


def wrk(url, duration, connections, headers=(), pid=None):
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    redis_before = redis_cpu_seconds()
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    (OUT / f"wrk-{re.sub(r'[^0-9]', '', url)[:12]}-{len(headers)}.txt").write_text(out)
    cpu_after = cpu_seconds(pid) if pid else 0.0
    redis_after = redis_cpu_seconds()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = parse_duration_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = parse_duration_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    cpu_us = (cpu_after - cpu_before) / total * 1e6 if pid and total else None
    redis_us = (redis_after - redis_before) / total * 1e6 if total else None
    return {"rps": rps, "total": total, "p50": p50, "p99": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1) if errors else "", "cpu_us": cpu_us, "redis_us": redis_us}


async def _hold_queue(port, path, token, count, spacing_s):
    """Opens `count` connections, sends one request on each in order, and records completion order."""
    import asyncio

    done = []
    statuses = {}

    async def one(index):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nhost: bench\r\nx-session-token: {token}\r\n"
                     f"connection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
        writer.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
        statuses[index] = status
        done.append(index)

    tasks = []
    for index in range(count):
        tasks.append(asyncio.create_task(one(index)))
        await asyncio.sleep(spacing_s)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    return done, statuses, errors


def hold_queue(port, path, token, count, proxy_pid, spacing_s):
    """Scenario 5: `count` concurrent requests waiting for budget slots."""
    import asyncio
    import threading

    peak = {"rss": 0.0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], rss_mb(proxy_pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.time()
    done, statuses, errors = asyncio.run(_hold_queue(port, path, token, count, spacing_s))
    elapsed = time.time() - started
    stop.set()
    sampler.join()
    served = sum(1 for s in statuses.values() if s == 200)
    # Served in slot order: completion order against send order (slots are granted in arrival order).
    in_order = sum(1 for a, b in zip(done, done[1:]) if a < b)
    order = in_order / max(1, len(done) - 1)
    return {"count": count, "served": served, "other": len(statuses) - served, "errors": len(errors),
            "seconds": elapsed, "peak_rss_mb": peak["rss"], "in_order": order}


def status_of(url, headers):
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"]
    for header in headers:
        args += ["-H", header]
    return subprocess.run(args + [url], capture_output=True, text=True).stdout.strip()


def raise_open_files_limit(wanted=65536):
    """The queue scenario holds thousands of sockets in this process and in the proxy (which
    inherits the limit): raise the soft limit as far as the hard one allows."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main():
    raise_open_files_limit()
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a few seconds per scenario, debug build")
    parser.add_argument("--duration", type=int, default=None)
    parser.add_argument("--connections", type=int, default=32)
    options = parser.parse_args()
    duration = options.duration or (2 if options.quick else 15)
    profile = "debug" if options.quick else "release"
    OUT.mkdir(parents=True, exist_ok=True)

    build = ["cargo", "build", "--workspace", "--bins", "--examples", "--locked"]
    if profile == "release":
        build.append("--release")
    subprocess.run(build, cwd=ROOT, check=True)

    run = Run(profile)
    prefix = f"bench-{os.getpid()}"
    try:
        static_port, nginx_port, refuse_port = free_port(), free_port(), free_port()
        (OUT / "nginx.conf").write_text(nginx_conf(static_port, nginx_port, refuse_port))
        nginx = run.start(["nginx", "-c", str(OUT / "nginx.conf"), "-g", "daemon off;"], log="nginx.log")
        for port in (static_port, nginx_port, refuse_port):
            wait_port(port)

        secrets = base64.b64encode(os.urandom(32)).decode()
        env = dict(os.environ, REDIS_URL="redis://127.0.0.1:6379", ASF_REDIS_PREFIX=prefix,
                   ASF_SECRETS_KEY=secrets, ASF_JWT_HS256_SECRET=HS256_SECRET, BENCH_AJAX_USER_ID=UID)
        fixture = subprocess.run([str(run.bin / "examples" / "bench_fixture")], env=env, capture_output=True,
                                 text=True, check=True)
        token = json.loads(fixture.stdout)["token"]

        proxy_port, metrics_port = free_port(), free_port()
        proxy_env = dict(env, AJAX_API_URL=f"http://127.0.0.1:{static_port}", AJAX_API_KEY="bench-company-key",
                         ASF_PROXY_LISTEN=f"127.0.0.1:{proxy_port}",
                         ASF_PROXY_METRICS_LISTEN=f"127.0.0.1:{metrics_port}", ASF_JWT_MODE="hs256",
                         # A budget (and tenant quota) so large that it never throttles: every
                         # request still makes its reservation round trip.
                         ASF_GLOBAL_RATE="1000000000/1s", ASF_GLOBAL_BURST="100000000",
                         ASF_TENANT_RATE_PER_MINUTE="4000000000", ASF_TENANT_BURST="4000000000",
                         ASF_TENANT_MAX_QUEUED="100000", RUST_LOG="warn",
                         # wrk is one client IP: the per-IP flood guard and the auth-failure
                         # slowdown would (rightly) stop it.
                         ASF_PER_IP_PER_SECOND="0", ASF_AUTH_FAILURES_PER_MINUTE="0")
        proxy = run.start([str(run.bin / "asf-proxy"), "-c", str(ROOT / "conf" / "proxy.yaml")], env=proxy_env,
                          log="proxy.log")
        bare_ports = {mode: free_port() for mode in ("proxy", "redis", "refuse")}
        bare = {mode: run.start([str(run.bin / "examples" / "bench_bare")], log=f"bare-{mode}.log",
                                env=dict(env, BARE_MODE=mode, BARE_UPSTREAM=f"127.0.0.1:{static_port}",
                                         BARE_LISTEN=f"127.0.0.1:{port}"))
                for mode, port in bare_ports.items()}
        for port in [proxy_port, *bare_ports.values()]:
            wait_port(port)

        path = f"/api/user/{UID}/hubs"
        auth = [f"X-Session-Token: {token}"]
        # Sanity: every scenario answers what it should before it is measured.
        checks = {
            "direct": status_of(f"http://127.0.0.1:{static_port}{path}", []),
            "nginx": status_of(f"http://127.0.0.1:{nginx_port}{path}", []),
            "asf-proxy": status_of(f"http://127.0.0.1:{proxy_port}{path}", auth),
            "asf-proxy 401": status_of(f"http://127.0.0.1:{proxy_port}{path}", ["X-Session-Token: bad"]),
            "nginx 401": status_of(f"http://127.0.0.1:{refuse_port}{path}", []),
            **{f"pingora bare {mode}": status_of(f"http://127.0.0.1:{port}{path}", [])
               for mode, port in bare_ports.items()},
        }
        expected = {"direct": "200", "nginx": "200", "asf-proxy": "200", "asf-proxy 401": "401", "nginx 401": "401",
                    "pingora bare proxy": "200", "pingora bare redis": "200", "pingora bare refuse": "401"}
        if checks != expected:
            raise SystemExit(f"scenario sanity check failed: {checks}")

        c = options.connections
        results = {}
        results["direct"] = wrk(f"http://127.0.0.1:{static_port}{path}", duration, c, pid=nginx.pid)
        results["nginx"] = wrk(f"http://127.0.0.1:{nginx_port}{path}", duration, c, pid=nginx.pid)
        results["pingora bare"] = wrk(f"http://127.0.0.1:{bare_ports['proxy']}{path}", duration, c,
                                      pid=bare["proxy"].pid)
        results["pingora bare + 1 Redis call"] = wrk(f"http://127.0.0.1:{bare_ports['redis']}{path}", duration, c,
                                                     pid=bare["redis"].pid)
        calls_before = redis_calls()
        results["asf-proxy"] = wrk(f"http://127.0.0.1:{proxy_port}{path}", duration, c, auth, pid=proxy.pid)
        calls_after = redis_calls()
        results["nginx 401"] = wrk(f"http://127.0.0.1:{refuse_port}{path}", duration, c, pid=nginx.pid)
        results["pingora bare 401"] = wrk(f"http://127.0.0.1:{bare_ports['refuse']}{path}", duration, c,
                                          pid=bare["refuse"].pid)
        results["asf-proxy 401"] = wrk(f"http://127.0.0.1:{proxy_port}{path}", duration, c,
                                       ["X-Session-Token: bad"], pid=proxy.pid)
        proxied = results["asf-proxy"]["total"]
        delta = {name: calls_after.get(name, 0) - calls_before.get(name, 0) for name in calls_after}
        redis_per_request = {name: n / proxied for name, n in sorted(delta.items()) if n and proxied}
        proxy_rss = rss_mb(proxy.pid, "VmHWM")
        for server in [proxy, *bare.values()]:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=15)

        # Scenario 5: a budget that queues (queue_count requests spread over ~20 s of slots).
        queue_count = 500 if options.quick else 10000
        queue_rate = f"{queue_count // 20}/1s"
        queue_env = dict(proxy_env, ASF_GLOBAL_RATE=queue_rate, ASF_GLOBAL_BURST="3", ASF_QUEUE_MAX_WAIT="40s",
                         ASF_TENANT_RATE_PER_MINUTE="100000000", ASF_TENANT_BURST="100000",
                         ASF_TENANT_MAX_QUEUED="100000", ASF_REDIS_PREFIX=prefix + "-queue")
        env_queue_fixture = dict(env, ASF_REDIS_PREFIX=prefix + "-queue")
        fixture = subprocess.run([str(run.bin / "examples" / "bench_fixture")], env=env_queue_fixture,
                                 capture_output=True, text=True, check=True)
        queue_token = json.loads(fixture.stdout)["token"]
        queue_proxy = run.start([str(run.bin / "asf-proxy"), "-c", str(ROOT / "conf" / "proxy.yaml")],
                                env=queue_env, log="proxy-queue.log")
        wait_port(proxy_port)
        queue = hold_queue(proxy_port, path, queue_token, queue_count, queue_proxy.pid, 2.0 / queue_count)
        queue["rate"] = queue_rate
        queue_proxy.send_signal(signal.SIGINT)
        queue_proxy.wait(timeout=15)
        # The same requests, arriving the same way, held by a bare Pingora until the same slots.
        hold_port = free_port()
        holder = run.start([str(run.bin / "examples" / "bench_bare")], log="bare-hold.log",
                           env=dict(env, BARE_MODE="hold", BARE_LISTEN=f"127.0.0.1:{hold_port}",
                                    BARE_SLOT_US=str(20_000_000 // queue_count)))
        wait_port(hold_port)
        held = hold_queue(hold_port, path, "-", queue_count, holder.pid, 2.0 / queue_count)
    finally:
        run.stop()
        # No worker runs in the benchmark (it would compete for the same two cores): drop the audit
        # records the proxies shipped to Redis.
        subprocess.run(["redis-cli", "DEL", f"{prefix}:audit", f"{prefix}-queue:audit"],
                       capture_output=True, check=False)

    write_results(options.quick, duration, c, results, redis_per_request, proxy_rss, queue, held)


def versions():
    def first_line(args):
        try:
            out = subprocess.run(args, capture_output=True, text=True)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"
    return {"rustc": first_line(["rustc", "--version"]), "nginx": first_line(["nginx", "-v"]),
            "wrk": first_line(["wrk", "--version"]), "redis": first_line(["redis-server", "--version"])}


def write_results(quick, duration, connections, results, redis_per_request, proxy_rss, queue, held):
    nginx, proxy = results["nginx"], results["asf-proxy"]
    bare, bare_redis = results["pingora bare"], results["pingora bare + 1 Redis call"]
    refusal, bare_refusal, nginx_refusal = results["asf-proxy 401"], results["pingora bare 401"], results["nginx 401"]

    def ratio(a, b, key="rps"):
        return f"{a[key] / b[key]:.2f}" if b[key] else "-"

    def number(value):
        return f"{value:.1f}" if value is not None else "-"

    lines = [
        "# Benchmark results" + (" (quick mode: harness check, not a measurement)" if quick else ""),
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} cores, {platform_memory()} GiB; everything on 127.0.0.1",
        f"- load: wrk -t1 -c{connections} -d{duration}s per scenario, same run, same static nginx upstream",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        "",
        "| scenario | req/s | p50 ms | p99 ms | server CPU µs/req | Redis CPU µs/req | non-2xx | socket errors |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {number(r['cpu_us'])} | "
                     f"{number(r['redis_us'])} | {r['non2xx']} | {r['errors'] or '-'} |")
    lines += [
        "",
        "| ratio | value | bar |",
        "|---|---:|---|",
        f"| asf-proxy / nginx proxy throughput | {ratio(proxy, nginx)} | ≥ 0.80 |",
        f"| asf-proxy p99 / nginx p99 | {ratio(proxy, nginx, 'p99')} | ≤ 1.00 |",
        f"| asf-proxy 401 / nginx static 401 | {ratio(refusal, nginx_refusal)} | ≥ 1.00 |",
        f"| Redis round trips per proxied request (one EVALSHA each) | "
        f"{redis_per_request.get('evalsha', 0):.2f} | ≤ 1 |",
        f"| asf-proxy peak RSS under load (MB) | {proxy_rss:.1f} | |",
        "",
        "The same ratios for the least a Pingora proxy can do (`proxy/examples/bench_bare.rs`: same Pingora,",
        "listener settings, threads and allocator; nothing of the gateway), measured in this run:",
        "",
        "| ratio | value |",
        "|---|---:|",
        f"| pingora bare / nginx proxy throughput (ceiling of any Pingora proxy here) | {ratio(bare, nginx)} |",
        f"| pingora bare + 1 Redis call / nginx proxy throughput (ceiling with one round trip) | "
        f"{ratio(bare_redis, nginx)} |",
        f"| pingora bare p99 / nginx p99 | {ratio(bare, nginx, 'p99')} |",
        f"| asf-proxy / pingora bare + 1 Redis call (the gateway's own cost) | {ratio(proxy, bare_redis)} |",
        f"| pingora bare 401 / nginx static 401 | {ratio(bare_refusal, nginx_refusal)} |",
        f"| asf-proxy 401 / pingora bare 401 | {ratio(refusal, bare_refusal)} |",
        "",
        f"Holding a queue: {queue['count']} concurrent requests on their own connections against a budget of "
        f"{queue['rate']} (so they wait up to ~20 s for their slots), then the same requests held by a bare",
        "Pingora until the same slots:",
        "",
        "| server | queued | served 200 | other status | lost (connection errors) | seconds | peak RSS MB | "
        "KB per request | completed in send order |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, q in (("asf-proxy", queue), ("pingora bare", held)):
        lines.append(f"| {name} | {q['count']} | {q['served']} | {q['other']} | {q['errors']} | {q['seconds']:.1f} | "
                     f"{q['peak_rss_mb']:.1f} | {q['peak_rss_mb'] * 1024 / max(1, q['count']):.1f} | "
                     f"{q['in_order'] * 100:.1f}% |")
    lines += [
        "",
        "Redis commands per proxied request, by name (`INFO commandstats`; those run by the budget script",
        "inside Redis count too): " + ", ".join(f"{k} {v:.2f}" for k, v in redis_per_request.items()) + ".",
        "",
        "Server CPU µs/req is the server's user+system time during the scenario (nginx: master and worker)",
        "divided by requests; Redis CPU µs/req is Redis's own (`INFO cpu`) over the same interval. nginx",
        "serves the upstream, its proxy and its 401 from one worker process; wrk, every server and Redis share",
        "the same 2 cores, so read the ratios, not the absolute numbers.",
    ]
    target = OUT / "RESULTS-quick.md" if quick else ROOT / "bench" / "RESULTS.md"
    log = ROOT / "bench" / "optimisations.md"
    if not quick and log.exists():
        lines += ["", log.read_text().rstrip()]
    target.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten to {target}")


def platform_memory():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024)
    return "?"


if __name__ == "__main__":
    if shutil.which("wrk") is None or shutil.which("nginx") is None:
        sys.exit("bench needs wrk and nginx (apt-get install wrk nginx-light)")
    main()
