#!/usr/bin/env python3
"""Writes the organisation-scale benchmark's repositories, deterministically:

  repos/repo-NNNN     N repositories, each a small service tree (sources, a Dockerfile, a README)
                      with one catalog-info.yaml of 11 entities (a component, its API, a system,
                      a group, a resource and six more components of the system)
  big                 one repository with 20,000 entities: 100 groups, 15,000 components and 4,900
                      APIs in 4 files of 5,000, behind a root Location
  mono                a monorepo of FILES catalog files (one component each) under services/**,
                      behind a `**/*.yaml` glob

Usage: generate-org.py OUTDIR N FILES
"""
import os
import subprocess
import sys

out, n, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="bench",
           GIT_COMMITTER_EMAIL="b@b", GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
           GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")


def commit(path):
    subprocess.run(["git", "init", "-q", "-b", "main", path], check=True, env=ENV)
    subprocess.run(["git", "-C", path, "add", "-A"], check=True, env=ENV)
    subprocess.run(["git", "-C", path, "commit", "-q", "-m", "initial"], check=True, env=ENV)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def entity(kind, name, spec, extra=""):
    return (f"---\napiVersion: backstage.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n"
            f"  description: {kind} {name} of the benchmark organisation\n{extra}spec:\n{spec}")


for i in range(n):
    root = os.path.join(out, "repos", f"repo-{i:04}")
    team, system = f"team-{i:04}", f"system-{i:04}"
    docs = [
        entity("Component", f"svc-{i:04}", f"  type: service\n  lifecycle: production\n  owner: {team}\n"
               f"  system: {system}\n  providesApis: [api-{i:04}]\n  dependsOn: [resource:db-{i:04}]\n",
               "  annotations:\n    github.com/project-slug: acme/repo\n  tags: [rust, grpc]\n"),
        entity("API", f"api-{i:04}", f"  type: openapi\n  lifecycle: production\n  owner: {team}\n"
               f"  system: {system}\n  definition: 'openapi: 3.0.0'\n"),
        entity("System", system, f"  owner: {team}\n"),
        entity("Group", team, "  type: team\n  children: []\n"),
        entity("Resource", f"db-{i:04}", f"  type: database\n  owner: {team}\n  system: {system}\n"),
    ] + [
        entity("Component", f"svc-{i:04}-{j}", f"  type: library\n  lifecycle: production\n  owner: {team}\n"
               f"  system: {system}\n")
        for j in range(6)
    ]
    write(os.path.join(root, "catalog-info.yaml"), "".join(docs))
    write(os.path.join(root, "README.md"), f"# repo-{i:04}\n\nA service of the benchmark organisation.\n")
    write(os.path.join(root, "Dockerfile"), "FROM scratch\nCOPY app /app\n")
    for m in range(8):
        write(os.path.join(root, "src", f"module_{m}.rs"), f"// module {m} of repo {i}\n" + "pub fn f() {}\n" * 40)
    commit(root)

big = os.path.join(out, "big")
write(os.path.join(big, "catalog-info.yaml"),
      "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: big }\n"
      "spec:\n  targets: [./part-0.yaml, ./part-1.yaml, ./part-2.yaml, ./part-3.yaml]\n")
entities = [entity("Group", f"group-{g:03}", "  type: team\n  children: []\n") for g in range(100)]
entities += [entity("Component", f"component-{c:05}",
                    f"  type: service\n  lifecycle: production\n  owner: group-{c % 100:03}\n"
                    f"  providesApis: [api-{c % 4900:04}]\n") for c in range(15000)]
entities += [entity("API", f"api-{a:04}", f"  type: openapi\n  lifecycle: production\n  owner: group-{a % 100:03}\n"
                    "  definition: 'openapi: 3.0.0'\n") for a in range(4900)]
for part in range(4):
    write(os.path.join(big, f"part-{part}.yaml"), "".join(entities[part * 5000:(part + 1) * 5000]))
commit(big)

mono = os.path.join(out, "mono")
write(os.path.join(mono, "catalog-info.yaml"),
      "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: mono }\n"
      "spec:\n  targets: [./services/**/*.yaml]\n")
for f in range(files):
    write(os.path.join(mono, "services", f"area-{f % 50:02}", f"svc-{f:05}.yaml"),
          entity("Component", f"mono-{f:05}", f"  type: service\n  lifecycle: production\n  owner: team-{f % 50:02}\n"))
commit(mono)
