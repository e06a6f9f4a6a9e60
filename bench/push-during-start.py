#!/usr/bin/env python3
"""Push webhook → visible, while `rigger run`'s cold start over N repositories is under way and
again once it is idle; and the daemon's peak RSS over those N repositories. Part of
bench/run-scale, which builds the release binary, generates the repositories
(bench/generate-org.py) and creates the empty database.

Writes a config tracking every repository under REPOS_DIR as a git source (`file://` + its
path, polled hourly, so only webhooks bring changes in quickly) with `webhooks.github` set,
starts the daemon, and as soon as `/healthz` answers:

1. cold: up to COLD pushes, one after another, to the repositories last in the config order
   (their first pass would otherwise come last), each while `/readyz` is not yet 200: a commit
   changing the description of the repository's component `svc-NNNN` in its work tree (not
   timed), then the signed `push` delivery, timed until the by-name API serves the new
   description. Pushes stop when the daemon becomes ready; how many made it is reported.
2. waits for `/readyz` 200 and reads the daemon's peak RSS (VmHWM) there.
3. idle: IDLE more pushes the same way.

Prints tab-separated `key<TAB>value` lines: cold, idle (p50/p99/max), ready (seconds from start),
rss (MiB), sent (pushes sent during the cold start), refused (deliveries answered 503 because the
store was not migrated yet: each is sent again at once, and a push is timed from the delivery that
was accepted). The daemon's log goes to WORK/push-LABEL.log.

Usage: push-during-start.py RIGGER WORK REPOS_DIR DATABASE_URL PORT LABEL [COLD [IDLE]]
"""
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

rigger, work, repos_dir, database, port, label = sys.argv[1:7]
COLD = int(sys.argv[7]) if len(sys.argv) > 7 else 10
IDLE = int(sys.argv[8]) if len(sys.argv) > 8 else 20
SECRET = "bench-secret"
BASE = f"http://127.0.0.1:{port}"
PROBE_EVERY = 0.005
DEADLINE = 300  # seconds for one push to show
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="bench",
               GIT_COMMITTER_EMAIL="b@b")

repos = sorted(n for n in os.listdir(repos_dir) if os.path.isdir(os.path.join(repos_dir, n)))


def url_of(name):
    """The source's URL exactly as configured: pushes are matched on it."""
    return f"file://{os.path.join(repos_dir, name)}"


def get(path):
    try:
        with urllib.request.urlopen(BASE + path, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def commit(name, description):
    """Changes svc-NNNN's description in the repository's work tree and commits it on main."""
    path = os.path.join(repos_dir, name, "catalog-info.yaml")
    number = name.rsplit("-", 1)[1]
    with open(path) as f:
        text = f.read()
    text, changed = re.subn(rf"(\n  name: svc-{number}\n  description: )[^\n]*", rf"\g<1>{description}", text, count=1)
    assert changed == 1, f"no svc-{number} in {path}"
    with open(path, "w") as f:
        f.write(text)
    subprocess.run(["git", "-C", os.path.join(repos_dir, name), "commit", "-q", "-a", "-m", description],
                   check=True, env=GIT_ENV)


def deliver(name, delivery):
    """The signed push delivery; returns how many 503s (store not up yet) came before the 202."""
    body = json.dumps({"ref": "refs/heads/main", "repository": {
        "full_name": f"acme/{name}", "clone_url": url_of(name), "default_branch": "main"}}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"{BASE}/webhooks/github", data=body, method="POST", headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature,
        "Content-Type": "application/json"})
    refused = 0
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                answer = r.read()
                assert r.status == 202, f"{r.status} {answer!r}"
                assert json.loads(answer)["queued"] == [name], answer
                return refused
        except urllib.error.HTTPError as e:
            if e.code != 503 or refused > 1000:
                raise
            refused += 1
            time.sleep(PROBE_EVERY)


def push(k, name, group):
    """One timed push: seconds from the delivery to the new description being served. A cold
    push is sent only while the daemon is not ready yet (checked after the commit, just before
    the delivery); None when it was ready by then."""
    description = f"{label} {group} push {k} {os.urandom(4).hex()}"  # new on every run
    commit(name, description)
    if group == "cold" and get("/readyz")[0] == 200:
        return None
    started = time.monotonic()
    refused[group] += deliver(name, f"{label}-{group}-{k}")
    number = name.rsplit("-", 1)[1]
    while True:
        status, body = get(f"/api/catalog/entities/by-name/component/default/svc-{number}")
        if status == 200 and json.loads(body)["metadata"].get("description") == description:
            return time.monotonic() - started
        if time.monotonic() - started > DEADLINE:
            fail(f"push {k} to {name} not visible after {DEADLINE} s")
        time.sleep(PROBE_EVERY)


# 503s answered to deliveries (before the store is migrated), by group; retried at once, and the
# push timed from the delivery that was accepted.
refused = {"cold": 0, "idle": 0}


def fail(message):
    """Exits with `message` and the end of the daemon's log (run-scale removes its work dir)."""
    log.flush()
    with open(log_path) as f:
        tail = f.readlines()[-40:]
    sys.exit(f"push-during-start.py ({label}): {message}; the end of the daemon's log:\n{''.join(tail)}")


def summary(latencies):
    if not latencies:
        return "none sent before ready"
    ordered = sorted(latencies)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
    return f"p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, max {ordered[-1] * 1000:.0f} ms"


config = os.path.join(work, f"push-{label}.yaml")
with open(os.path.join(work, "webhook-secret"), "w") as f:
    f.write(SECRET)
with open(config, "w") as f:
    f.write(f"database:\n  url: {database}\ncache_dir: {work}/cache\nserver:\n  listen: 127.0.0.1:{port}\n"
            f"webhooks:\n  github:\n    secret: {{ file: {work}/webhook-secret }}\nsources:\n")
    for name in repos:
        f.write(f"  - name: {name}\n    interval: 1h\n    git: {{ url: \"{url_of(name)}\", branch: main }}\n")

log_path = os.path.join(work, f"push-{label}.log")
log = open(log_path, "w")
started = time.monotonic()
daemon = subprocess.Popen([rigger, "--config", config, "run"], stdout=log, stderr=subprocess.STDOUT,
                          env=dict(os.environ, NO_COLOR="1"))
try:
    while get("/healthz")[0] != 200:
        if daemon.poll() is not None:
            fail("rigger run exited")
        time.sleep(PROBE_EVERY)

    # The last repositories in the config order, latest first.
    cold = []
    for k, name in enumerate(reversed(repos[-COLD:]), 1):
        latency = push(k, name, "cold")
        if latency is None:
            break
        cold.append(latency)

    while get("/readyz")[0] != 200:
        if daemon.poll() is not None:
            fail("rigger run exited")
        time.sleep(PROBE_EVERY)
    ready = time.monotonic() - started
    with open(f"/proc/{daemon.pid}/status") as f:
        rss = next(int(l.split()[1]) // 1024 for l in f if l.startswith("VmHWM:"))

    idle = [push(k, repos[-1 - (k % min(len(repos), IDLE))], "idle") for k in range(1, IDLE + 1)]
finally:
    daemon.terminate()
    daemon.wait(timeout=60)

print(f"cold\t{summary(cold)}")
print(f"sent\t{len(cold)}")
print(f"refused\t{refused['cold'] + refused['idle']}")
print(f"idle\t{summary(idle)}")
print(f"ready\t{ready:.2f}")
print(f"rss\t{rss}")
