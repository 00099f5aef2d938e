"""The cdktf app behind `main.py`: load environments, build their stacks, synthesize, export objects.

User mistakes (a bad environment file, a bad construct prop) print one clear
message and exit with status 2 before anything is written; no traceback.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from burrow.config.loader import load_environments
from burrow.config.release import RELEASE_VARIABLE, apply_release, load_release, missing_release
from burrow.config.schema import EnvironmentConfig
from burrow.errors import BurrowError, ConfigError
from burrow.previews import HOST_VARIABLE, PreviewRequest, preview_host, request_from_environment

if TYPE_CHECKING:
    from cdktf import App, TerraformStack

    from burrow.environment import EnvironmentStacks

ENV_VARIABLE = "BURROW_ENV"


def selected_environments(value: str | None) -> list[str] | None:
    """`BURROW_ENV=prod` or `BURROW_ENV=qa,prod`; unset or empty means every environment."""
    if not value:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


def _quiet(_message: str) -> None:
    """No progress report (tests and library use)."""


def build_app(
    app: App, configs: Sequence[EnvironmentConfig], helm_dir: Path, progress: Callable[[str], None] = _quiet
) -> list[EnvironmentStacks]:
    """Build the stacks of every (already validated) environment into `app`, reporting progress."""
    started = time.perf_counter()
    from burrow.environment import build_environment  # noqa: PLC0415 - cdktf loads after config is valid

    progress(f"loaded the kubernetes, helm and random provider bindings in {time.perf_counter() - started:.1f} s")
    if any(env.on_aws for env in configs):
        started = time.perf_counter()
        import burrow.stacks.aws  # noqa: F401, PLC0415 - timed here, so the wait is explained, not silent

        progress(f"loaded the AWS provider bindings in {time.perf_counter() - started:.1f} s")
    built = []
    for env in configs:
        started = time.perf_counter()
        built.append(build_environment(app, env, helm_dir=helm_dir))
        progress(f"{env.name}: built {len(built[-1].stacks)} stacks in {time.perf_counter() - started:.1f} s")
    return built


def build_preview_app(
    app: App, host: EnvironmentConfig, request: PreviewRequest, helm_dir: Path, progress: Callable[[str], None] = _quiet,
) -> list[EnvironmentStacks]:
    """Build only the preview stack `pr-<n>-app` into `app`, in the cluster of the previews' `host`."""
    from burrow.environment import build_preview  # noqa: PLC0415 - cdktf loads after config is valid

    built = build_preview(app, host, request, helm_dir=helm_dir)
    progress(f"preview of pull request {request.pr}: {request.stack_name} in {host.name}'s cluster, namespace "
             f"{request.namespace}, expires {request.expires_at(host.previews.ttl_hours).isoformat()}")
    return [built]


def stacks_of(app: App) -> list[TerraformStack]:
    from cdktf import TerraformStack  # noqa: PLC0415

    return [child for child in app.node.children if isinstance(child, TerraformStack)]


def synthesize(app: App) -> None:
    """`app.synth()` for stacks that use Burrow's constructs, with every stack under guardrails.

    Every stack of the app is policed (a stack that set no tier is held to `production`), so a
    `helm_release` or `kubernetes_manifest` a stack adds itself is checked like Burrow's own. The
    findings waivers let through are printed on stdout, one `WAIVED` line each with its reason.
    When the guardrails refuse a stack, this prints Burrow's report on stderr (one line per
    violation, with the rule and what to change) and exits with status 2, instead of the jsii
    error with a Node.js stack trace that `app.synth()` raises. Anything else is raised unchanged.
    """
    from burrow.policy.guardrails import Guardrails, refusal, waiver_report  # noqa: PLC0415 - loads cdktf

    stacks = stacks_of(app)
    for stack in stacks:
        Guardrails.of(stack)
    try:
        app.synth()
    except Exception:
        report = refusal(stacks)
        if report is None:
            raise
        print(f"burrow: {report}", file=sys.stderr)
        raise SystemExit(2) from None
    for line in waiver_report(stacks):
        print(line)


def environment_objects(built: EnvironmentStacks, include_gitops: bool = True, prefix: str | None = None) -> list[dict]:
    """Every Kubernetes object Burrow delivers through object releases in one environment: its
    stacks' and, unless `include_gitops` is false, a GitOps app layer's (delivered by Flux). With
    `prefix`, only one region's (stacks named `<prefix>-<layer>`)."""
    from burrow.k8s.release import KubernetesObjects  # noqa: PLC0415

    found = []
    app = getattr(built, "app", None) if include_gitops else None
    stacks = [*built.stacks, *([app] if app is not None and app not in built.stacks else [])]
    for stack in stacks:
        if prefix is not None and stack.env.stack_prefix != prefix:
            continue
        for node in stack.node.find_all():
            if isinstance(node, KubernetesObjects):
                found.extend(node.objects)
    return found


def export_objects(built: EnvironmentStacks, outdir: Path) -> list[Path]:
    """Write an environment's objects as plain YAML for review and GitOps: `<outdir>/objects/<env>.yaml`,
    and with several regions one file per further region (`<env>-<region>.yaml`)."""
    from burrow.k8s.validate import object_id  # noqa: PLC0415

    written = []
    for prefix in dict.fromkeys(stack.env.stack_prefix for stack in built.stacks if stack.layer != "global"):
        target = outdir / "objects" / f"{prefix}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        objects = environment_objects(built, prefix=prefix)
        header = "".join(f"# {object_id(obj)}\n" for obj in objects)
        target.write_text(
            f"# Kubernetes objects of {prefix.replace('-', ' in ', 1)}, generated by `make synth`.\n"
            + header
            + yaml.safe_dump_all(objects, sort_keys=False),
            encoding="utf-8",
        )
        written.append(target)
    return written


def export_gitops(built: EnvironmentStacks, outdir: Path) -> Path | None:
    """Write a `delivery: gitops` environment's tree to `<outdir>/gitops/<env>/` (replacing it)."""
    if built.gitops is None:
        return None
    import shutil  # noqa: PLC0415

    target = outdir / "gitops" / built.env.name
    shutil.rmtree(target, ignore_errors=True)
    for path, text in built.gitops.items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_text(text, encoding="utf-8")
    return target


def progress(message: str) -> None:
    """Progress of `make synth` on stderr, so twenty seconds of loading never look like a hang."""
    print(f"burrow: {message}", file=sys.stderr, flush=True)


def released(configs: list[EnvironmentConfig], release_file: str | None, preview: bool) -> list[EnvironmentConfig]:
    """`configs` with the release's images pinned (build once, deploy many); without a release, an
    error when one of them must deploy by digest (a preview deploys into its host's tier)."""
    if release_file:
        release = load_release(Path(release_file))
        return [apply_release(env, release) for env in configs]
    if not preview and (refusal := missing_release(configs)):
        raise ConfigError(refusal)
    return configs


def main(root: Path, checks: Sequence[Callable[[list[EnvironmentConfig]], list[str]]] = ()) -> int:
    """Synthesize the environments in `BURROW_ENV` (default: all) into cdktf's output folder.
    `checks` are the application's own checks of the loaded environments (each returns problems, one
    sentence each); any problem stops synthesis like a configuration error."""
    names = selected_environments(os.environ.get(ENV_VARIABLE))
    try:
        # Configuration is validated before cdktf or any provider binding is imported:
        # a mistake is reported in a fraction of a second and nothing is written.
        preview = request_from_environment(os.environ)
        if preview is not None:  # the host's environment is read in full; only the preview is built
            names = None
        configs = load_environments(root / "environments", names)
        problems = [problem for check in checks for problem in check(configs)]
        if problems:
            raise ConfigError("\n".join(problems))
        configs = released(configs, os.environ.get(RELEASE_VARIABLE) or None, preview is not None)
        host = preview_host(configs, os.environ.get(HOST_VARIABLE) or None) if preview is not None else None
        progress(f"configuration valid: {', '.join(env.name for env in configs)}")
        started = time.perf_counter()
        from cdktf import App  # noqa: PLC0415

        app = App()
        progress(f"started cdktf in {time.perf_counter() - started:.1f} s")
        if preview is not None and host is not None:
            built = build_preview_app(app, host, preview, root / "helm", progress)
        else:
            built = build_app(app, configs, root / "helm", progress)
    except BurrowError as exc:
        print(f"burrow: configuration error:\n{exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    synthesize(app)
    progress(f"synthesized {sum(len(env.stacks) for env in built)} stacks in {time.perf_counter() - started:.1f} s")
    outdir = Path(app.outdir)
    for env in built:
        for stack in env.stacks:
            print(f"{stack.node.id:<24} {outdir / 'stacks' / stack.node.id / 'cdk.tf.json'}")
        for path in export_objects(env, outdir):
            print(f"{path.stem + ' objects':<24} {path}")
        tree = export_gitops(env, outdir)
        if tree is not None:
            print(f"{env.env.name + ' gitops':<24} {tree}  (Flux reads it from {env.env.gitops.repository})")
    return 0
