"""Checks of charts/rigger, run by scripts/check-chart inside its virtualenv.

Every check prints one line: `ok`, `FAIL` or `NOT CHECKED` (with the reason). Exits 1 when any
check failed. Run from the repository root.
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import sys

import jsonschema
import yaml

CHART = pathlib.Path("charts/rigger")
FIXTURES = pathlib.Path("tests/chart")
# Kubernetes versions whose schemas (from the kubernetes-validate package) the manifests must
# satisfy: the chart's kubeVersion floor and the newest the package ships.
KUBE_VERSIONS = ["1.25.0", None]
# Custom resources: no schema in kubernetes-validate; checked structurally below instead.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ExternalSecret"}

failures: list[str] = []
not_checked: list[str] = []


def ok(msg: str) -> None:
    print(f"  ok           {msg}")


def fail(msg: str) -> None:
    print(f"  FAIL         {msg}")
    failures.append(msg)


def skip(msg: str) -> None:
    print(f"  NOT CHECKED  {msg}")
    not_checked.append(msg)


def load_yaml_docs(path: pathlib.Path) -> list:
    with path.open() as f:
        return list(yaml.safe_load_all(f))


def coalesce(defaults: dict, overrides: dict) -> dict:
    """Helm's value merge: maps merge recursively, anything else replaces, null deletes."""
    out = copy.deepcopy(defaults)
    for key, value in (overrides or {}).items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = coalesce(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def expectation(path: pathlib.Path) -> str:
    first = path.read_text().splitlines()[0]
    m = re.match(r"#\s*expect:\s*(.+)$", first)
    if not m:
        raise SystemExit(f"{path}: first line must be '# expect: <text>'")
    return m.group(1).strip()


def section(title: str) -> None:
    print(f"==> {title}")


# ---------------------------------------------------------------------------------------------

def check_yaml_well_formed() -> None:
    section("YAML files that are not templates are well-formed")
    files = sorted(
        p for p in list(CHART.rglob("*.yaml")) + list(CHART.rglob("*.yml")) + list(FIXTURES.rglob("*.yaml"))
        if "templates" not in p.relative_to(CHART if p.is_relative_to(CHART) else FIXTURES).parts
    )
    for p in files:
        try:
            load_yaml_docs(p)
            ok(str(p))
        except yaml.YAMLError as e:
            fail(f"{p}: {e}")


def check_chart_yaml() -> dict:
    section("Chart.yaml")
    chart = load_yaml_docs(CHART / "Chart.yaml")[0]
    semver = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
    if chart.get("apiVersion") != "v2":
        fail("Chart.yaml: apiVersion must be v2")
    if chart.get("name") != CHART.name:
        fail(f"Chart.yaml: name must be {CHART.name!r} (the directory name)")
    if not semver.match(str(chart.get("version", ""))):
        fail("Chart.yaml: version must be SemVer 2")
    if not chart.get("appVersion"):
        fail("Chart.yaml: appVersion missing")
    if chart.get("type", "application") not in ("application", "library"):
        fail("Chart.yaml: type must be application or library")
    if not chart.get("description"):
        fail("Chart.yaml: description missing")
    cargo = pathlib.Path("Cargo.toml").read_text()
    m = re.search(r'^version\s*=\s*"([^"]+)"', cargo, re.M)
    if m and str(chart.get("appVersion")) != m.group(1):
        fail(f"Chart.yaml: appVersion {chart.get('appVersion')} differs from Cargo.toml's {m.group(1)}")
    if not any(f.startswith("Chart.yaml:") for f in failures):
        ok("apiVersion v2, name, SemVer version, appVersion (= Cargo.toml), type, description")
    return chart


def check_templates_balanced() -> None:
    section("templates: balanced {{ }} and define/if/range/with ... end")
    opener = re.compile(r"\{\{-?\s*(if|range|with|define|block)\b")
    ender = re.compile(r"\{\{-?\s*end\b")
    for p in sorted((CHART / "templates").iterdir()):
        text = p.read_text()
        # Strip template comments first: they may contain anything.
        body = re.sub(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", "", text, flags=re.S)
        depth, bad = 0, False
        for tok in re.finditer(r"\{\{|\}\}", body):
            depth += 1 if tok.group() == "{{" else -1
            if depth not in (0, 1):
                bad = True
                break
        if bad or depth != 0:
            fail(f"{p}: unbalanced {{{{ }}}}")
            continue
        opens, ends = len(opener.findall(body)), len(ender.findall(body))
        if opens != ends:
            fail(f"{p}: {opens} if/range/with/define blocks but {ends} end")
            continue
        ok(str(p))


def check_schema(defaults: dict) -> tuple[dict, list[pathlib.Path]]:
    section("values.schema.json (JSON Schema draft-07)")
    schema = json.loads((CHART / "values.schema.json").read_text())
    try:
        jsonschema.Draft7Validator.check_schema(schema)
        ok("values.schema.json is a valid draft-07 schema")
    except jsonschema.SchemaError as e:
        fail(f"values.schema.json is not a valid schema: {e.message}")
        return schema, []
    validator = jsonschema.Draft7Validator(schema)

    def errors(values: dict) -> list[str]:
        return [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in validator.iter_errors(values)]

    errs = errors(defaults)
    fail(f"values.yaml: {errs}") if errs else ok("values.yaml validates")
    examples = sorted((CHART / "examples").glob("*.yaml"))
    for ex in examples:
        merged = coalesce(defaults, load_yaml_docs(ex)[0])
        errs = errors(merged)
        fail(f"{ex}: {errs}") if errs else ok(f"{ex} (merged over values.yaml) validates")
    for bad in sorted((FIXTURES / "bad-values").glob("*.yaml")):
        want = expectation(bad)
        errs = errors(coalesce(defaults, load_yaml_docs(bad)[0]))
        if not errs:
            fail(f"{bad}: the schema accepted it")
        elif not any(want in e for e in errs) and not any(
                want in sub.message for e in validator.iter_errors(coalesce(defaults, load_yaml_docs(bad)[0]))
                for sub in [e, *e.context]):
            fail(f"{bad}: rejected, but not for {want!r}: {errs}")
        else:
            ok(f"{bad} is rejected ({want})")
    return schema, examples


# ---------------------------------------------------------------------------------------------

def load_helm():
    try:
        import helm_python as helm  # Helm's Go SDK (v4) through a C ABI, from PyPI
        return helm
    except Exception as e:  # noqa: BLE001 - report and go on with what can be checked
        skip(f"rendering: helm-python-sdk could not be loaded ({e})")
        return None


def render(helm, values: dict) -> dict[str, str]:
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)
        return chart.render(values, name="rigger", namespace="rigger", is_install=True)


def objects_of(rendered: dict[str, str]) -> list[dict]:
    objs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["__source"] = path
                objs.append(doc)
    return objs


def validate_kube(objs: list[dict], label: str) -> None:
    try:
        import kubernetes_validate as kv
    except Exception as e:  # noqa: BLE001
        skip(f"{label}: Kubernetes schemas unavailable ({e})")
        return
    versions = [v or kv.latest_version() for v in KUBE_VERSIONS]
    for obj in objs:
        body = {k: v for k, v in obj.items() if k != "__source"}
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if obj.get("kind") in CUSTOM_KINDS:
            continue
        for version in versions:
            try:
                kv.validate(body, version, strict=True)
            except kv.ValidationError as e:
                fail(f"{label}: {name} invalid for Kubernetes {version}: "
                     f"{'.'.join(map(str, e.path))}: {e.message}")
                break
            except kv.SchemaNotFoundError:
                fail(f"{label}: {name}: no Kubernetes {version} schema for this kind")
                break
    ok(f"{label}: {sum(o.get('kind') not in CUSTOM_KINDS for o in objs)} objects valid "
       f"(strict) against Kubernetes {' and '.join(versions)} schemas")


def check_custom(objs: list[dict], label: str) -> None:
    """Structure of the custom resources the Kubernetes schemas do not cover."""
    for obj in objs:
        kind, spec = obj.get("kind"), obj.get("spec", {})
        if kind == "ServiceMonitor":
            good = obj["apiVersion"] == "monitoring.coreos.com/v1" and spec["endpoints"][0]["port"] == "http"
        elif kind == "PrometheusRule":
            rules_file = yaml.safe_load((CHART / "files/rigger-alerts.yaml").read_text())
            good = (obj["apiVersion"] == "monitoring.coreos.com/v1"
                    and spec.get("groups") == (rules_file.get("groups") or []))
        elif kind == "ExternalSecret":
            good = (obj["apiVersion"].startswith("external-secrets.io/")
                    and spec["target"]["name"].endswith("-external") and spec["secretStoreRef"]["name"])
        else:
            continue
        fail(f"{label}: {kind} malformed") if not good else ok(
            f"{label}: {kind} structure (no schema available: checked by hand-written assertions)")


def check_invariants(objs: list[dict], values: dict, label: str) -> None:
    """What the chart promises, on the rendered objects."""
    problems = []
    deploys = [o for o in objs if o["kind"] == "Deployment"]
    if len(deploys) != 1:
        problems.append("expected exactly one Deployment")
    for d in deploys:
        pod = d["spec"]["template"]["spec"]
        c = next(c for c in pod["containers"] if c["name"] == "rigger")
        sc = c.get("securityContext", {})
        if not (pod["securityContext"].get("runAsNonRoot") and sc.get("runAsNonRoot")):
            problems.append("runAsNonRoot")
        if not sc.get("readOnlyRootFilesystem"):
            problems.append("readOnlyRootFilesystem")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append("allowPrivilegeEscalation")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append("capabilities.drop ALL")
        if pod["securityContext"].get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append("seccomp RuntimeDefault")
        if c["livenessProbe"]["httpGet"]["path"] != "/healthz" or c["readinessProbe"]["httpGet"]["path"] != "/readyz":
            problems.append("probes on /healthz and /readyz")
        port = int(str(values["config"]["server"]["listen"]).rsplit(":", 1)[1])
        if c["ports"][0]["containerPort"] != port:
            problems.append("containerPort is server.listen's port")
        if c["args"] != ["--log-format", values["logFormat"], "run", "--config", "/etc/rigger/rigger.yaml"]:
            problems.append("args --log-format <logFormat> run --config /etc/rigger/rigger.yaml")
        mount = next((m for m in c["volumeMounts"] if m["mountPath"] == "/etc/rigger/rigger.yaml"), None)
        if not mount or not mount.get("readOnly"):
            problems.append("config mounted read-only")
        if pod["automountServiceAccountToken"] != ("kubernetes" in values["config"]):
            problems.append("service account token mounted exactly when config.kubernetes is set")
        if not c.get("resources", {}).get("requests"):
            problems.append("resource requests")
    cms = [o for o in objs if o["kind"] == "ConfigMap"]
    if not cms or yaml.safe_load(cms[0]["data"]["rigger.yaml"]) != values["config"]:
        problems.append("ConfigMap rigger.yaml is values.config 1:1")
    if any(o["kind"] == "Secret" for o in objs):
        problems.append("the chart renders no Secret (secrets are references)")
    rbac = [o for o in objs if o["apiVersion"].startswith("rbac.authorization.k8s.io")]
    if "kubernetes" not in values["config"] and rbac:
        problems.append("no RBAC without config.kubernetes")
    for o in rbac:
        for rule in o.get("rules", []):
            verbs, res, groups = set(rule["verbs"]), set(rule.get("resources", [])), set(rule.get("apiGroups", []))
            if "*" in verbs | res | groups:
                problems.append(f"{o['kind']}/{o['metadata']['name']}: wildcard")
            if "secrets" in res or "rbac.authorization.k8s.io" in groups:
                problems.append(f"{o['kind']}/{o['metadata']['name']}: secrets or RBAC kinds")
            if verbs & {"escalate", "bind"}:
                problems.append(f"{o['kind']}/{o['metadata']['name']}: escalate/bind")
            if "impersonate" in verbs and (not rule.get("resourceNames") or res != {"serviceaccounts"}):
                problems.append(f"{o['kind']}/{o['metadata']['name']}: unrestricted impersonate")
            if o["kind"] == "ClusterRole" and o["metadata"]["name"].endswith("-read") and verbs - {"get", "list", "watch"}:
                problems.append("the cluster-wide role is read-only")
        if o["kind"] == "ClusterRoleBinding" and o["roleRef"]["name"].endswith("-write"):
            problems.append("the write role is never bound cluster-wide")
    if problems:
        fail(f"{label}: invariants broken: {problems}")
    else:
        ok(f"{label}: invariants (non-root, read-only root fs, drop ALL, seccomp, probes, "
           f"config 1:1 read-only, no Secrets, least-privilege RBAC)")


def granted(values: dict) -> tuple[set[str], set[tuple[str, str]]]:
    """From config: namespaces granted to writes as Rigger itself, and (namespace, name) of every
    service account a tenancy or grant impersonates."""
    namespaces, accounts = set(), set()
    for src in values["config"].get("sources") or []:
        for t in [src.get("tenancy") or {}] + list(src.get("grants") or []):
            if t.get("service_account"):
                accounts.add(tuple(t["service_account"].split("/", 1)))
                continue
            ns = t.get("namespaces") or []
            namespaces |= {n for lst in ns.values() for n in lst} if isinstance(ns, dict) else set(ns)
    return namespaces, accounts


def check_grants(objs: list[dict], values: dict, label: str) -> None:
    """The chart's RBAC follows the grants: the write role is bound where writes as Rigger itself
    are granted, and Rigger may impersonate exactly the tenant accounts the config names."""
    if "kubernetes" not in values["config"]:
        return
    namespaces, accounts = granted(values)
    write = values.get("rbac", {}).get("write", {})
    if write.get("namespacesFromTenancy", True):
        namespaces |= set(write.get("namespaces") or [])
    else:
        namespaces = set(write.get("namespaces") or [])
    bound = {o["metadata"].get("namespace") for o in objs
             if o["kind"] == "RoleBinding" and o["roleRef"]["name"].endswith("-write")}
    impersonable = set()
    for o in objs:
        if o["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in o.get("rules", []):
            if "impersonate" in rule["verbs"]:
                impersonable |= {(o["metadata"].get("namespace"), n) for n in rule.get("resourceNames", [])}
    problems = []
    if write.get("rules") and bound != namespaces:
        problems.append(f"write role bound in {sorted(bound)}, granted {sorted(namespaces)}")
    if impersonable != accounts:
        problems.append(f"impersonable {sorted(impersonable)}, named {sorted(accounts)}")
    if problems:
        fail(f"{label}: RBAC does not match the grants: {problems}")
    else:
        ok(f"{label}: RBAC matches the grants (write bound in {sorted(namespaces)}; "
           f"impersonates {sorted('/'.join(a) for a in accounts)})")


def check_rendering(defaults: dict, examples: list[pathlib.Path]) -> None:
    section("render with Helm's Go SDK (helm-python-sdk), validate against Kubernetes schemas")
    helm = load_helm()
    if helm is None:
        return
    print(f"  (Helm SDK {helm.helm_sdk_version()}, helm-c {helm.helm_c_version()})")
    report = helm.lint(str(CHART), strict=True)
    lint_errors = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + report.get("errors", [])
    fail(f"helm lint --strict: {lint_errors}") if lint_errors else ok("helm lint --strict (default values)")
    cases = [("values.yaml", {})] + [(str(ex), load_yaml_docs(ex)[0]) for ex in examples]
    for label, overrides in cases:
        try:
            rendered = render(helm, overrides)
        except helm.HelmError as e:
            fail(f"{label}: render failed: {e}")
            continue
        objs = objects_of(rendered)
        ok(f"{label}: rendered {len(objs)} objects: "
           + ", ".join(sorted({o['kind'] for o in objs})))
        validate_kube(objs, label)
        check_custom(objs, label)
        check_invariants(objs, coalesce(defaults, overrides), label)
        check_grants(objs, coalesce(defaults, overrides), label)
    for path in sorted((FIXTURES / "render-fails").glob("*.yaml")):
        want = expectation(path)
        try:
            render(helm, load_yaml_docs(path)[0])
            fail(f"{path}: rendered, but the chart must refuse it ({want})")
        except helm.HelmError as e:
            ok(f"{path} is refused ({want})") if want in str(e) else fail(
                f"{path}: refused for another reason: {e}")
    # The PrometheusRule must carry the alert file exactly.
    try:
        objs = objects_of(render(helm, {"metrics": {"prometheusRule": {"enabled": True}}}))
        check_custom([o for o in objs if o["kind"] == "PrometheusRule"], "prometheusRule.enabled")
    except helm.HelmError as e:
        fail(f"prometheusRule.enabled: render failed: {e}")


def main() -> int:
    check_yaml_well_formed()
    check_chart_yaml()
    check_templates_balanced()
    defaults = load_yaml_docs(CHART / "values.yaml")[0]
    _, examples = check_schema(defaults)
    check_rendering(defaults, examples)
    skip("a live install (no cluster here): admission, RBAC evaluation, CRDs of the Prometheus "
         "Operator and External Secrets, NetworkPolicy enforcement, the image itself")
    print(f"==> chart checks: {len(failures)} failed, {len(not_checked)} not checked")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
