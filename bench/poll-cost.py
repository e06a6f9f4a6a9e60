#!/usr/bin/env python3
"""What one poll of an unchanged repository costs a running daemon: starts `rigger run` on a
config whose one source polls every second, waits until it is ready (its first pass done), then
counts POLLS further polls (each an unchanged fetch check, `rigger_git_fetches_total`) and the
daemon's CPU time (user + system, /proc) over them. The figure includes this script's own reads
of /metrics, twice a second.

Prints `<CPU ms per poll>\t<polls>`.

Usage: poll-cost.py RIGGER CONFIG BASE_URL POLLS   (run by bench/run-scale)
"""
import os
import subprocess
import sys
import time
import urllib.request

rigger, config, base, polls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
TICKS = os.sysconf("SC_CLK_TCK")


def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return None, ""


def fetch_checks():
    text = get("/metrics")[1]
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith("rigger_git_fetches_total{"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


daemon = subprocess.Popen([rigger, "--config", config, "run"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    started = time.monotonic()
    while get("/readyz")[0] != 200:
        if daemon.poll() is not None or time.monotonic() - started > 600:
            sys.exit("rigger run did not become ready")
        time.sleep(0.05)
    first, cpu = fetch_checks(), cpu_seconds(daemon.pid)
    while fetch_checks() < first + polls:
        time.sleep(0.5)
    spent = cpu_seconds(daemon.pid) - cpu
    print(f"{spent / polls * 1000:.0f}\t{polls}")
finally:
    daemon.terminate()
    daemon.wait(timeout=30)
