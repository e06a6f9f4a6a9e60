#!/usr/bin/env python3
"""A minimal stand-in for GitHub's REST API, for the organisation-scale benchmark: it lists the
git repositories under REPOS_DIR as organisation ORG's, with `file://` clone URLs, so Rigger's
GitHub discovery can be timed without the network.

  GET /orgs/{ORG}/repos?per_page=&page=   the repositories in name order, `per_page` capped at 100
                                          (GitHub's default 30), a `Link: <…>; rel="next"` header
                                          while more pages follow, an `ETag` (304 on
                                          `If-None-Match`), and the rate-limit headers
  GET /repos/{ORG}/{name}                 one repository, or 404

Each repository as GitHub lists it: id, name, full_name, clone_url (`file://` + its path),
default_branch `main`, not archived, not a fork, no topics, public. Requests are logged to
stderr only with -v.

Usage: fake-github.py [-v] PORT ORG REPOS_DIR
"""
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = [a for a in sys.argv[1:] if a != "-v"]
verbose = "-v" in sys.argv[1:]
port, org, repos_dir = int(args[0]), args[1], os.path.abspath(args[2])

REPOS = {}
for index, name in enumerate(sorted(os.listdir(repos_dir))):
    path = os.path.join(repos_dir, name)
    if os.path.isdir(path):
        REPOS[name] = {"id": 1000 + index, "name": name, "full_name": f"{org}/{name}", "clone_url": f"file://{path}",
                       "default_branch": "main", "archived": False, "fork": False, "topics": [],
                       "visibility": "public", "private": False}
NAMES = list(REPOS)

RESET = int(time.time()) + 3600
budget = {"remaining": 5000}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        if verbose:
            super().log_message(format, *args)

    def answer(self, status, body=None, headers=(), counted=True):
        data = b"" if body is None else json.dumps(body).encode()
        with lock:
            if counted and budget["remaining"] > 0:
                budget["remaining"] -= 1
            remaining = budget["remaining"]
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-RateLimit-Limit", "5000")
        self.send_header("X-RateLimit-Remaining", str(remaining))
        self.send_header("X-RateLimit-Reset", str(RESET))
        self.send_header("X-RateLimit-Used", str(5000 - remaining))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if status != 304:
            self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        if len(parts) == 3 and parts[0] == "orgs" and parts[2] == "repos":
            if parts[1].lower() != org.lower():
                return self.answer(404, {"message": "Not Found"})
            per_page = max(1, min(100, int(query.get("per_page", ["30"])[0])))
            page = max(1, int(query.get("page", ["1"])[0]))
            items = [REPOS[n] for n in NAMES[(page - 1) * per_page:page * per_page]]
            body = json.dumps(items).encode()
            etag = '"' + hashlib.sha1(body).hexdigest() + '"'
            headers = [("ETag", etag)]
            if page * per_page < len(NAMES):
                host = self.headers.get("Host") or f"127.0.0.1:{port}"
                rest = {k: v[-1] for k, v in query.items() if k not in ("page", "per_page")}
                rest.update(per_page=per_page, page=page + 1)
                last = dict(rest, page=(len(NAMES) + per_page - 1) // per_page)
                link = (f'<http://{host}{url.path}?{urllib.parse.urlencode(rest)}>; rel="next", '
                        f'<http://{host}{url.path}?{urllib.parse.urlencode(last)}>; rel="last"')
                headers.append(("Link", link))
            if self.headers.get("If-None-Match") == etag:
                # GitHub does not charge conditional requests that answer 304.
                return self.answer(304, headers=headers, counted=False)
            return self.answer(200, items, headers)
        if len(parts) == 3 and parts[0] == "repos":
            repo = REPOS.get(parts[2]) if parts[1].lower() == org.lower() else None
            return self.answer(200, repo) if repo else self.answer(404, {"message": "Not Found"})
        self.answer(404, {"message": "Not Found"})


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
print(f"fake GitHub for {org}: {len(REPOS)} repositories on http://127.0.0.1:{port}", file=sys.stderr, flush=True)
server.serve_forever()
