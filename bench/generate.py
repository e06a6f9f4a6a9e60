#!/usr/bin/env python3
"""Writes a synthetic catalog for the benchmark: a root Location with a glob target, FILES files
of PER_FILE components each (owner, system, an API each provides and another it consumes), and
the groups and systems they point at. Deterministic: the same arguments write the same bytes.

Usage: generate.py OUTDIR [ENTITIES] [PER_FILE]
"""
import os
import sys

out = sys.argv[1]
total = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
per_file = int(sys.argv[3]) if len(sys.argv) > 3 else 100
groups = 100
systems = 50

os.makedirs(os.path.join(out, "entities"), exist_ok=True)
with open(os.path.join(out, "catalog-info.yaml"), "w") as f:
    f.write("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: bench }\n"
            "spec:\n  targets: [./org.yaml, ./entities/*.yaml]\n")
with open(os.path.join(out, "org.yaml"), "w") as f:
    for g in range(groups):
        f.write(f"---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {{ name: team-{g} }}\n"
                f"spec: {{ type: team, children: [] }}\n")
    for s in range(systems):
        f.write(f"---\napiVersion: backstage.io/v1alpha1\nkind: System\nmetadata: {{ name: system-{s} }}\n"
                f"spec: {{ owner: team-{s % groups} }}\n")

remaining = total - groups - systems - 1
index = 0
file_no = 0
while remaining > 0:
    with open(os.path.join(out, "entities", f"part-{file_no:05}.yaml"), "w") as f:
        for _ in range(min(per_file, remaining)):
            i = index
            kind_is_api = i % 5 == 4
            if kind_is_api:
                f.write(f"---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: api-{i}\n"
                        f"  description: interface {i} of the zebra{i % 997}quartz family\n  tags: [t{i % 20}]\n"
                        f"spec:\n  type: openapi\n  lifecycle: production\n  owner: team-{i % groups}\n"
                        f"  system: system-{i % systems}\n  definition: 'openapi: 3.0.0'\n")
            else:
                f.write(f"---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-{i}\n"
                        f"  description: service {i} of the zebra{i % 997}quartz family\n  tags: [t{i % 20}, java]\n"
                        f"spec:\n  type: service\n  lifecycle: production\n  owner: team-{i % groups}\n"
                        f"  system: system-{i % systems}\n  providesApis: [api-{i - i % 5 + 4}]\n")
            index += 1
            remaining -= 1
    file_no += 1
print(f"{index + groups + systems + 1} entities in {file_no + 2} files under {out}")
