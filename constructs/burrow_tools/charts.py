"""`make verify-charts`: the third-party charts Burrow installs, checked with the exact values it passes.

For every `helm_release` with a chart repository in the synthesized stacks (Bitnami RabbitMQ,
metrics-server, KEDA, kube-prometheus-stack, Loki, Alloy, …; each must be pinned in
`burrow.pins`, and an environment that overrides its pin is noted) the chart at its version
is taken from `CHARTS_DIR` (a `<chart>-<version>.tgz`, or an unpacked chart whose Chart.yaml
names that chart and version, anywhere below it) or pulled with Helm from its repository. Then:
- every values key Burrow sets must exist in the chart's own values.yaml (Helm silently ignores
  an unknown key, so a typo never surfaces); keys below an empty mapping or list are free-form,
  and an undeclared key the chart does read (the output changes without it) is noted, not failed;
- `helm template` with the release's name, namespace and values must succeed;
- what the chart renders must be what its `ChartKinds` declaration says (the kinds, with these
  values, and the CRDs it ships), since the first-deploy rehearsal (`make rehearse`) trusts it;
- every rendered built-in object must pass strict schema validation for the environment's
  Kubernetes version, and every pod in the app namespace must meet Pod Security `restricted`;
- in a production environment, every image the release runs must be pinned by digest
  (`@sha256:`): each container and init container of every rendered pod template, and the images
  the Prometheus operator starts from what the chart renders (its Prometheus' and Alertmanager's
  `spec.image`, its config reloader's argument), as a release file pins them;
- Burrow's own custom resources (`<outdir>/objects/<env>.yaml` and the GitOps trees under
  `<outdir>/gitops/`: Karpenter's NodePool and
  EC2NodeClass, Velero's Schedules, KEDA's ScaledObjects, …) must pass their CRD's schema, taken
  from the verified charts (`crds/` and rendered templates), unknown fields refused as
  `kubectl --validate=strict` would.

Usage: python -m burrow_tools.charts <cdktf.out> [--charts-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from burrow.addons.kinds import ChartKinds
from burrow.config.loader import load_environment
from burrow.config.schema import EnvironmentConfig, Tier
from burrow.k8s.pod_security import pod_specs, restricted_violations
from burrow.k8s.release import terraform_unescape
from burrow.k8s.validate import is_custom_resource, object_id, validate_objects
from burrow.merge import deep_merge
from burrow.pins import pin_of
from burrow_tools.helm import helm_binary, manifests, run_helm

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ChartRelease:
    stack: str
    name: str
    namespace: str
    repository: str
    chart: str
    version: str
    values: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The CustomResourceDefinitions the chart ships (its `crds/` folder and rendered templates).
    crds: list[dict[str, Any]] = field(default_factory=list)
    #: In a production environment, (where, image) of every image the rendered chart runs.
    images: list[tuple[str, str]] = field(default_factory=list)


def chart_releases(outdir: Path) -> Iterator[ChartRelease]:
    for stack_file in sorted((outdir / "stacks").glob("*/cdk.tf.json")):
        stack = json.loads(stack_file.read_text())
        for release in stack.get("resource", {}).get("helm_release", {}).values():
            if not release.get("repository"):
                continue  # Burrow's own object chart, checked by the Helm render tests
            docs = [yaml.safe_load(terraform_unescape(v)) or {} for v in release.get("values") or []]
            yield ChartRelease(stack_file.parent.name, release["name"], release["namespace"], release["repository"],
                               release["chart"], release["version"], docs)


def unknown_paths(values: Any, defaults: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of `values` that the chart's defaults do not have (below an empty default anything goes)."""
    if not isinstance(values, Mapping) or not isinstance(defaults, Mapping) or not defaults:
        return []
    found = []
    for key, value in values.items():
        where = (*path, str(key))
        found += [where] if key not in defaults else unknown_paths(value, defaults[key], where)
    return found


def unknown_keys(values: Any, defaults: Any) -> list[str]:
    return [".".join(path) for path in unknown_paths(values, defaults)]


def without(values: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `values` with the key at `path` removed."""
    head, *rest = path
    copy = dict(values)
    if rest:
        copy[head] = without(copy[head], tuple(rest))
    else:
        del copy[head]
    return copy


def chart_defaults(chart_dir: Path) -> dict[str, Any]:
    """The chart's values.yaml, with each subchart's values under its name (and `global` free-form)."""
    values_file = chart_dir / "values.yaml"
    defaults = (yaml.safe_load(values_file.read_text()) or {}) if values_file.exists() else {}
    for sub in sorted((chart_dir / "charts").glob("*/Chart.yaml")):
        name = yaml.safe_load(sub.read_text())["name"]
        defaults.setdefault(name, {}).update(chart_defaults(sub.parent))
    defaults["global"] = {}
    return defaults


def find_local_chart(charts_dir: Path, chart: str, version: str, work: Path) -> Path | None:
    archive = charts_dir / f"{chart}-{version}.tgz"
    if archive.is_file():
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        return work / chart
    for chart_yaml in charts_dir.rglob("Chart.yaml"):
        meta = yaml.safe_load(chart_yaml.read_text()) or {}
        if meta.get("name") == chart and str(meta.get("version")) == version:
            return chart_yaml.parent
    return None


def pull_chart(helm: str, release: ChartRelease, work: Path) -> Path:
    if release.repository.startswith("oci://"):
        args = ["pull", f"{release.repository.rstrip('/')}/{release.chart}"]
    else:
        args = ["pull", release.chart, "--repo", release.repository]
    result = run_helm(helm, *args, "--version", release.version, "--untar", "--untardir", str(work))
    if result.returncode != 0:
        raise RuntimeError(f"helm pull failed: {result.stderr.strip()}")
    return work / release.chart


def render(helm: str, release: ChartRelease, chart_dir: Path, work: Path,
           values: list[dict[str, Any]], api_versions: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`helm template`; `api_versions` are custom APIs the cluster serves by then (a chart that
    renders a ServiceMonitor only where the API exists renders it)."""
    files = [arg for api in api_versions for arg in ("--api-versions", api)]
    for index, doc in enumerate(values):
        path = work / f"{release.stack}-{release.name}-{index}.yaml"
        path.write_text(yaml.safe_dump(doc))
        files += ["--values", str(path)]
    # At the environment's Kubernetes version, as the helm provider renders against the cluster
    # (a chart's kubeVersion range and its Capabilities.KubeVersion branches apply).
    version = environment_of(release).kubernetes.version
    return run_helm(helm, "template", release.name, str(chart_dir), "--namespace", release.namespace,
                    "--kube-version", f"{version}.0", "--include-crds", *files)


@cache
def environment(name: str) -> EnvironmentConfig:
    return load_environment(name, ROOT / "environments")


def environment_of(release: ChartRelease) -> EnvironmentConfig:
    return environment(release.stack.split("-", 1)[0])  # `prod-us-east-1-app` is prod


def documents(output: str) -> set[str]:
    return {doc.strip() for doc in output.split("\n---") if doc.strip()}


#: Custom resources whose `spec.image` the Prometheus operator runs, and its argument naming the
#: config reloader it adds to their pods (the chart renders both; the operator starts the pods).
OPERATED_KINDS = ("Prometheus", "Alertmanager", "ThanosRuler", "PrometheusAgent")
RELOADER_ARG = "--prometheus-config-reloader="


def running_images(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(where, image) of each image the rendered objects run: pod templates' containers and init
    containers, and the images the Prometheus operator starts from them."""
    found = []
    for obj in objects:
        where = object_id(obj)
        for pod in pod_specs(obj):
            for key in ("initContainers", "containers"):
                found += [(f"{where}: {key} {c.get('name')}", str(c.get("image"))) for c in pod.get(key) or []]
                found += [(f"{where}: {c.get('name')} {RELOADER_ARG}", arg.removeprefix(RELOADER_ARG))
                          for c in pod.get(key) or [] for arg in c.get("args") or []
                          if isinstance(arg, str) and arg.startswith(RELOADER_ARG)]
        if obj.get("kind") in OPERATED_KINDS and (obj.get("spec") or {}).get("image"):
            found.append((f"{where}: spec.image", str(obj["spec"]["image"])))
    return found


def digest_problems(images: list[tuple[str, str]]) -> list[str]:
    return [f"{where}: image {image} is not pinned by digest (@sha256:): its chart's pin in burrow.pins lists "
            "each image with the values path that takes its digest" for where, image in images if "@sha256:" not in image]


def declaration_problems(declared: ChartKinds, values: list[dict[str, Any]], objects: list[dict[str, Any]],
                         crds: list[dict[str, Any]]) -> list[str]:
    """Where the chart's declaration and what the chart rendered with `values` disagree."""
    merged: dict[str, Any] = {}
    for doc in values:
        merged = deep_merge(merged, doc)
    rendered = {(obj.get("apiVersion"), obj.get("kind")) for obj in objects}
    expected = declared.rendered(merged)
    problems = [f"renders {api} {kind}, which its ChartKinds declaration does not list" for api, kind in sorted(rendered - expected)]
    problems += [f"its ChartKinds declaration lists {api} {kind}, which it does not render with these values"
                 for api, kind in sorted(expected - rendered)]
    shipped = {(crd["spec"]["group"], crd["spec"]["names"]["kind"]) for crd in crds}
    if shipped:  # a chart that installs its CRDs some other way (a hook Job) ships none to compare
        problems += [f"ships the CRD of {group} {kind}, which its ChartKinds declaration does not list"
                     for group, kind in sorted(shipped - set(declared.crds))]
        problems += [f"its ChartKinds declaration lists the CRD of {group} {kind}, which it does not ship"
                     for group, kind in sorted(set(declared.crds) - shipped)]
    return problems


def verify(release: ChartRelease, chart_dir: Path, helm: str, work: Path,
           declarations: Mapping[str, ChartKinds] | None = None) -> None:
    """Check one chart release; `declarations` (default: Burrow's, `burrow_tools.rehearse.DECLARED`)
    say what each chart renders."""
    if declarations is None:
        from burrow_tools.rehearse import DECLARED as declarations  # noqa: N811, PLC0415 - loads the add-ons
    declared = declarations.get(release.chart)
    listed = [*declared.kinds, *(k for kinds in declared.when.values() for k in kinds)] if declared else []
    api_versions = tuple(sorted({api for api, _ in listed if is_custom_resource({"apiVersion": api})}))
    rendered = render(helm, release, chart_dir, work, release.values, api_versions)
    if rendered.returncode != 0:
        release.problems.append(f"helm template failed: {rendered.stderr.strip()[-1500:]}")
        return
    # A key the chart's values.yaml does not declare may still be read (a map passed through
    # with toYaml, say). It is a typo only if the output without it is the same: Helm ignored it.
    # Documents that differ between two identical renders (generated secrets) prove nothing.
    defaults = chart_defaults(chart_dir)
    undeclared = [(index, path) for index, doc in enumerate(release.values) for path in unknown_paths(doc, defaults)]
    if undeclared:  # the second render is only needed to judge undeclared keys
        stable = documents(rendered.stdout) & documents(render(helm, release, chart_dir, work, release.values,
                                                                 api_versions).stdout)
        for index, path in undeclared:
            doc = release.values[index]
            values = [without(doc, path) if i == index else other for i, other in enumerate(release.values)]
            trial = render(helm, release, chart_dir, work, values, api_versions)
            if trial.returncode == 0 and stable <= documents(trial.stdout):
                release.problems.append(f"values[{index}]: unknown key {'.'.join(path)}")
            else:
                release.notes.append(f"values[{index}]: {'.'.join(path)} is not in values.yaml but the chart reads it")
    try:
        objects = manifests(rendered.stdout)
    except yaml.YAMLError as exc:
        release.problems.append(f"the rendered chart is not valid YAML: {exc}")
        return
    shipped = sorted((chart_dir / "crds").rglob("*.yaml"))  # empty when the chart has no crds/ folder
    release.crds = [doc for doc in objects + [d for path in shipped for d in manifests(path.read_text())]
                    if doc.get("kind") == "CustomResourceDefinition"]
    objects = [obj for obj in objects if obj.get("kind") != "CustomResourceDefinition"]
    if declared is None:
        release.notes.append(f"no ChartKinds declaration for chart {release.chart}: `make rehearse` cannot judge it")
    else:
        release.problems += declaration_problems(declared, release.values, objects, release.crds)
    env = environment_of(release)
    release.problems += validate_objects(objects, env.kubernetes.version)
    if env.tier == Tier.PRODUCTION:
        release.images = running_images(objects)
        release.problems += digest_problems(release.images)
    for obj in objects:
        if obj.get("metadata", {}).get("namespace", release.namespace) == env.namespace:
            release.problems += [f"{object_id(obj)}: {p}" for pod in pod_specs(obj) for p in restricted_violations(pod)]


def strict_schema(schema: Any) -> Any:
    """A CRD's openAPIV3Schema as `kubectl --validate=strict` applies it: no field it does not
    declare (unless it keeps unknown fields); `metadata` is the API server's to check."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: strict_schema(value) for key, value in schema.items()}
    if "properties" in strict and "additionalProperties" not in strict \
            and not strict.get("x-kubernetes-preserve-unknown-fields"):
        strict["additionalProperties"] = False
    return strict


def crd_schemas(crds: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict schema, for every version a CRD serves."""
    schemas = {}
    for crd in crds:
        spec = crd["spec"]
        for version in spec["versions"]:
            schema = strict_schema(version["schema"]["openAPIV3Schema"])
            schema.setdefault("properties", {})["metadata"] = {"type": "object"}
            schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return schemas


def custom_resource_problems(outdir: Path, schemas: Mapping[tuple[str, str], dict[str, Any]]) -> tuple[int, list[str]]:
    """Check Burrow's exported custom resources against `schemas`: (how many were checked, problems)."""
    import jsonschema  # noqa: PLC0415 - only verify-charts needs it

    checked, problems = 0, []
    for path in sorted([*(outdir / "objects").glob("*.yaml"), *(outdir / "gitops").rglob("*.yaml")]):
        for obj in manifests(path.read_text()):
            schema = schemas.get((obj.get("apiVersion"), obj.get("kind")))
            if schema is None:
                continue
            checked += 1
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.absolute_path))
            problems += [f"{path.relative_to(outdir)}: {object_id(obj)}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: "
                         f"{e.message}" for e in errors]
    return checked, problems


def pin_problem(release: ChartRelease) -> None:
    """Every third-party chart is pinned in burrow.pins; an environment may override a pin (noted)."""
    pin = pin_of(release.chart)
    if pin is None:
        release.problems.append(f"chart {release.chart} has no pin in constructs/burrow/pins.py")
    elif (pin.repository, pin.version) != (release.repository, release.version):
        release.notes.append(f"the pin is {pin.repository} {pin.version}; this release overrides it")


def verify_all(outdir: Path, charts_dir: Path | None) -> list[ChartRelease]:
    results = []
    with tempfile.TemporaryDirectory(prefix="burrow-charts-") as tmp:
        helm = helm_binary(Path(tmp) / "bin")
        for release in chart_releases(outdir):
            work = Path(tmp) / f"{release.stack}-{release.name}"
            work.mkdir()
            pin_problem(release)
            try:
                chart_dir = find_local_chart(charts_dir, release.chart, release.version, work) if charts_dir else None
                chart_dir = chart_dir or pull_chart(helm, release, work)
                verify(release, chart_dir, helm, work)
            except RuntimeError as exc:
                release.problems.append(str(exc))
            results.append(release)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="verify-charts")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--charts-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    results = verify_all(args.outdir, args.charts_dir)
    for release in results:
        status = "ok" if not release.problems else "FAILED"
        print(f"{status:<7} {release.stack:<16} {release.chart} {release.version}")
        for line in release.problems + release.notes:
            print(f"        {line}")
    failed = [r for r in results if r.problems]
    print(f"\n{len(results) - len(failed)} of {len(results)} chart releases verified")
    images = [image for release in results for _, image in release.images]
    if images:
        pinned = [image for image in images if "@sha256:" in image]
        print(f"{len(pinned)} of {len(images)} images run by production's chart releases are pinned by digest "
              f"({len(set(pinned))} of {len(set(images))} distinct)")
    schemas = crd_schemas([crd for release in results for crd in release.crds])
    checked, problems = custom_resource_problems(args.outdir, schemas)
    for line in problems:
        print(f"FAILED  {line}")
    print(f"{checked - len({tuple(p.split(': ')[:2]) for p in problems})} of {checked} custom resources of Burrow's pass the "
          f"schemas of {len(schemas)} CRD versions from the charts")
    return 1 if failed or problems or not results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
