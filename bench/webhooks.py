#!/usr/bin/env python3
"""The change-detection benchmark: N git repositories (default 1,000) tracked by one
`rigger run` on PostgreSQL, polled hourly, so only webhooks bring changes in quickly.

1. push → visible: commit to a random repository (not timed), then time from the signed
   `push` webhook to the new description being served by the catalog API; P pushes.
2. no-change poll of every repository: restart the daemon (its first pass checks every remote,
   which has not moved) and time start → ready; the fetch counter must stay at zero.

Usage: bench/webhooks.py [N] [P]     (run by bench/run-webhooks, which builds the release binary)
"""
import concurrent.futures
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
PUSHES = int(sys.argv[2]) if len(sys.argv) > 2 else 100
PG = os.environ.get("RIGGER_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
SECRET = "bench-secret"
BINARY = os.path.abspath("target/release/rigger")
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x")


def git(repo, *args, stdin=None):
    out = subprocess.run(["git", "-C", repo, *args], input=stdin, capture_output=True, text=True, env=GIT_ENV, check=True)
    return out.stdout.strip()


def component(i, description):
    return (f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-{i}\n"
            f"  description: {description}\nspec: {{ type: service, lifecycle: production, owner: team-a }}\n")


def commit(repo, i, description, parent=None):
    """A commit on main whose tree holds only catalog-info.yaml, written with plumbing."""
    blob = git(repo, "hash-object", "-w", "--stdin", stdin=component(i, description))
    tree = git(repo, "mktree", stdin=f"100644 blob {blob}\tcatalog-info.yaml\n")
    args = ["commit-tree", tree, "-m", description] + (["-p", parent] if parent else [])
    sha = git(repo, *args)
    git(repo, "update-ref", "refs/heads/main", sha)
    return sha


def make_repo(root, i):
    repo = os.path.join(root, f"repo-{i}.git")
    subprocess.run(["git", "init", "--bare", "--quiet", "-b", "main", repo], check=True)
    commit(repo, i, "v0")
    return repo


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def start(config, base):
    daemon = subprocess.Popen([BINARY, "--config", config, "run"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    while get(f"{base}/readyz")[0] != 200:
        if daemon.poll() is not None:
            sys.exit("rigger run exited")
        time.sleep(0.05)
    return daemon, time.monotonic() - started


def deliver(base, repo_url, delivery):
    body = json.dumps({"ref": "refs/heads/main", "repository": {"full_name": "acme/x", "clone_url": repo_url,
                                                                 "default_branch": "main"}}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"{base}/webhooks/github", data=body, method="POST", headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature,
        "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 202, r.status


def metric_sum(base, prefix):
    text = get(f"{base}/metrics")[1].decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(prefix))


def main():
    work = tempfile.mkdtemp(prefix="rigger-wh-")
    repos_dir = os.path.join(work, "repos")
    os.makedirs(repos_dir)
    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        repos = list(pool.map(lambda i: make_repo(repos_dir, i), range(N)))
    print(f"made {N} repositories in {time.monotonic() - t:.1f} s", file=sys.stderr)
    subprocess.run(["psql", "-q", f"{PG}/postgres", "-c", "DROP DATABASE IF EXISTS rigger_bench_wh WITH (FORCE)",
                    "-c", "CREATE DATABASE rigger_bench_wh"], check=True, capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(os.path.join(work, "secret"), "w") as f:
        f.write(SECRET)
    config = os.path.join(work, "rigger.yaml")
    with open(config, "w") as f:
        f.write(f"database:\n  url: {PG}/rigger_bench_wh\nserver:\n  listen: 127.0.0.1:{port}\ncache_dir: cache\n"
                "webhooks:\n  github:\n    secret: { file: secret }\nsources:\n")
        for i, repo in enumerate(repos):
            f.write(f"  - name: repo-{i}\n    interval: 1h\n    git:\n      url: file://{repo}\n      branch: main\n")

    daemon, first_ready = start(config, base)
    latencies = []
    for k in range(1, PUSHES + 1):
        i = random.randrange(N)
        repo = repos[i]
        commit(repo, i, f"v{k}", parent=git(repo, "rev-parse", "refs/heads/main"))
        t0 = time.monotonic()
        deliver(base, f"file://{repo}", f"delivery-{k}")
        while True:
            status, body = get(f"{base}/api/catalog/entities/by-name/component/default/svc-{i}")
            if status == 200 and json.loads(body)["metadata"].get("description") == f"v{k}":
                break
            time.sleep(0.002)
        latencies.append(time.monotonic() - t0)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=30)

    daemon, poll_all = start(config, base)
    fetched = metric_sum(base, 'rigger_git_fetches_total{result="fetched"')
    unchanged = metric_sum(base, 'rigger_git_fetches_total{result="unchanged"')
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=30)

    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    print("| measure | result |")
    print("|---|---|")
    print(f"| repositories tracked | {N} |")
    print(f"| first start (clone and ingest every repository) → ready | {first_ready:.1f} s |")
    print(f"| push webhook → new entity served, {PUSHES} pushes | p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, max {latencies[-1] * 1000:.0f} ms |")
    print(f"| restart → ready: no-change check of all {N} repositories | {poll_all:.2f} s; {unchanged:.0f} unchanged, {fetched:.0f} fetched |")


if __name__ == "__main__":
    main()
