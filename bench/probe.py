#!/usr/bin/env python3
"""Waits for a big ingest to be served, and says when it was: all entities visible, and the
relations of one group complete, in one poller so neither figure carries the other's probing.

Each iteration (about 5 ms apart) asks `by-query?limit=1` for `totalItems`; once that reaches
TOTAL it asks, in the same iteration, for GROUP's `ownerOf` relations. Prints two numbers, the
seconds from START (a Unix timestamp, e.g. `date +%s.%N` taken just before the daemon started)
to the first answer showing everything visible, and to the first showing the relations complete;
equal when both were seen in one iteration.

Usage: probe.py BASE START [TOTAL [GROUP [RELATIONS [TIMEOUT]]]]
       probe.py http://127.0.0.1:8080 1767225600.123 20001 group-099 199 600
"""
import json
import sys
import time
import urllib.error
import urllib.request

base, start = sys.argv[1].rstrip("/"), float(sys.argv[2])
total = int(sys.argv[3]) if len(sys.argv) > 3 else 20001
group = sys.argv[4] if len(sys.argv) > 4 else "group-099"
relations = int(sys.argv[5]) if len(sys.argv) > 5 else 199
timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 600


def get(path):
    """The JSON at `path`, or None when the daemon does not answer it (yet)."""
    try:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return json.load(response)
    except (OSError, ValueError, urllib.error.HTTPError):
        return None


seen = None
while True:
    if seen is None:
        answer = get("/api/catalog/entities/by-query?limit=1")
        if answer is not None and answer.get("totalItems", 0) >= total:
            seen = time.time() - start
    if seen is not None:
        answer = get(f"/api/catalog/entities/by-name/group/default/{group}")
        owned = sum(r.get("type") == "ownerOf" for r in (answer or {}).get("relations", []))
        if owned >= relations:
            print(f"{seen:.2f} {time.time() - start:.2f}")
            break
    if time.time() - start > timeout:
        sys.exit(f"probe.py: not complete after {timeout:.0f} s (visible: {seen})")
    time.sleep(0.005)
