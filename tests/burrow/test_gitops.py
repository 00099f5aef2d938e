"""`delivery: gitops`: Terraform owns the cloud, the cluster and the add-ons (Flux included); Flux
owns the app layer, reconciled from the tree `make gitops-export` writes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from syrupy.extensions.json import JSONSnapshotExtension

from burrow.addons.flux import CHART_VERSION as FLUX_VERSION
from burrow.config.loader import load_environment
from burrow.errors import BurrowError
from burrow.k8s.release import terraform_unescape
from burrow_tools.gitops import check_tree
from tests.burrow.test_config import env_dir, error_for, write  # noqa: F401 - env_dir is a fixture
from tests.support.services import ROOT


def tree_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tree(synthesized) -> dict[str, str]:
    return tree_files(synthesized.outdir / "gitops" / "uat")


def test_a_gitops_environment_has_no_app_stack_and_installs_flux(synthesized):
    assert "uat-app" not in synthesized.stacks and "qa-app" in synthesized.stacks
    releases = {r["name"]: r for r in synthesized.stack("uat-addons")["resource"]["helm_release"].values()}
    flux = releases["flux"]
    assert (flux["chart"], flux["version"], flux["namespace"]) == ("flux2", FLUX_VERSION, "flux-system")
    sync = yaml.safe_load(terraform_unescape(releases["burrow-gitops-sync"]["values"][0]))["objects"]
    *_tenant, source, kustomization = sync
    assert source["spec"] == {"interval": "5m", "url": "https://github.com/burrow-dev/burrow-gitops.git",
                              "ref": {"branch": "main"},
                              "verify": {"mode": "HEAD", "secretRef": {"name": "flux-signing-keys"}}}
    assert kustomization["spec"]["path"] == "./clusters/uat" and kustomization["spec"]["prune"] is True
    assert kustomization["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "burrow"}
    # Flux syncs after every other add-on: the tree uses their CRDs (KEDA, External Secrets, monitoring).
    others = [key for key, r in synthesized.stack("uat-addons")["resource"]["helm_release"].items()
              if r["name"] not in ("flux", "burrow-gitops-sync")]
    sync_key = next(k for k, r in synthesized.stack("uat-addons")["resource"]["helm_release"].items()
                    if r["name"] == "burrow-gitops-sync")
    depends = synthesized.stack("uat-addons")["resource"]["helm_release"][sync_key]["depends_on"]
    assert {f"helm_release.{key}" for key in others} <= set(depends)


def test_the_tree_matches_snapshot(tree, snapshot):
    assert tree == snapshot.use_extension(JSONSnapshotExtension)


def test_the_tree_builds_with_kustomize_passes_strict_validation_and_holds_no_secret(synthesized, tmp_path):
    objects = check_tree(synthesized.outdir / "gitops" / "uat", "1.33", tmp_path)
    kinds = [o["kind"] for o in objects]
    assert "Secret" not in kinds and kinds.count("HelmRelease") == 1 and "Namespace" not in kinds
    # Exactly Burrow's objects of the environment, plus the chart's Flux objects (the namespace is Terraform's).
    from burrow.k8s.pod_security import pod_specs, restricted_violations

    assert [p for o in objects for pod in pod_specs(o) for p in restricted_violations(pod)] == []
    assert sum(1 for o in objects for _ in pod_specs(o)) >= 2
    built = {(o["kind"], o["metadata"]["name"]) for o in synthesized.objects("uat")
             if o["metadata"].get("namespace") == "burrow-uat"}
    exported = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert exported - built == {("OCIRepository", "rabbitmq-chart"), ("HelmRelease", "rabbitmq")}
    # Flux's own objects in the namespace (its tenant, source and Kustomization) are Terraform's, not the tree's.
    assert built - exported == {("ServiceAccount", "flux-deployer"), ("Role", "flux-deployer"),
                                ("RoleBinding", "flux-deployer"), ("GitRepository", "burrow"),
                                ("Kustomization", "burrow-uat")}


def test_the_check_refuses_a_broken_tree_and_a_secret(synthesized, tmp_path):
    broken = tmp_path / "tree"
    shutil.copytree(synthesized.outdir / "gitops" / "uat", broken)
    (broken / "secret.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "burrow-uat"}, "data": {}}))
    producer = broken / "producer.yaml"
    producer.write_text(producer.read_text().replace("revisionHistoryLimit: 5", "revisionHistoryLimit: 5\n  replica: 2"))
    kustomization = yaml.safe_load((broken / "kustomization.yaml").read_text())
    kustomization["resources"].append("secret.yaml")
    (broken / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    with pytest.raises(BurrowError) as caught:
        check_tree(broken, "1.33", tmp_path / "bin")
    assert "Secret/s: a Secret never goes to Git" in str(caught.value)
    assert "replica" in str(caught.value)


def test_the_helm_release_carries_exactly_the_values_terraform_would_pass(tree, synthesized):
    """uat in terraform mode and in GitOps mode give the chart the same values."""
    from cdktf import App

    from burrow.synth import build_app

    config = load_environment("uat", ROOT / "environments").model_copy(update={"delivery": "terraform"})
    app = App(outdir=str(synthesized.outdir / "uat-terraform"))
    [built] = build_app(app, [config], ROOT / "helm")
    from burrow.k8s.release import release_values

    [source, release] = yaml.safe_load_all(tree["rabbitmq/release.yaml"])
    assert release["spec"]["values"] == release_values(built.app.broker.release)
    assert release["spec"]["values"]["auth"]["existingPasswordSecret"] == "rabbitmq-auth"
    assert source["spec"]["url"] == "oci://registry-1.docker.io/bitnamicharts/rabbitmq"
    assert source["spec"]["ref"] == {"tag": "16.0.14"}


def test_make_gitops_export_as_the_readme_prints_it_is_byte_identical_from_another_checkout_path(tree, tmp_path):
    """One synthesis in a process of its own serves both: `make gitops-export ENV=uat DIR=…` run as
    printed, in a copy of the checkout at another path, writes the tree the session built here."""
    checkout = tmp_path / "elsewhere" / "burrow"
    for part in ("constructs", "environments", "helm"):
        shutil.copytree(ROOT / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("main.py", "Makefile", "Pipfile", "Pipfile.lock"):
        shutil.copy2(ROOT / part, checkout / part)  # their times too: the installed .venv stays up to date
    for part in (".venv", "node_modules"):
        (checkout / part).symlink_to((ROOT / part).resolve())
    target = tmp_path / "burrow-gitops" / "clusters" / "uat"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    result = subprocess.run(["make", "gitops-export", "ENV=uat", f"DIR={target}", f"CDKTF_OUTDIR={tmp_path / 'out'}"],
                            cwd=checkout, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "pipenv" not in result.stdout + result.stderr  # the copy used the installed environment as it was
    # every object of the tree's files (the kustomization lists them): kustomize dropped none
    objects = sum(1 for name, text in tree.items() if name != "kustomization.yaml"
                  for doc in yaml.safe_load_all(text) if isinstance(doc, dict) and "kind" in doc)
    assert f"kustomize built {objects} objects" in result.stdout and "strict validation passed; no Secret" in result.stdout
    assert (target / "kustomization.yaml").is_file() and (target / "rabbitmq" / "release.yaml").is_file()
    assert tree_files(tmp_path / "out" / "gitops" / "uat") == tree_files(target) == tree
    assert str(ROOT) not in "".join(tree.values()) and str(checkout) not in "".join(tree.values())


def test_make_gitops_export_of_a_terraform_environment_says_what_to_set(tmp_path):
    result = subprocess.run(["make", "gitops-export", "ENV=qa", f"CDKTF_OUTDIR={tmp_path}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert "gitops-export: ENV = 'qa': delivery is 'terraform'; set delivery: gitops" in result.stderr
    assert list(tmp_path.iterdir()) == []  # refused before synthesis: nothing written




def test_gitops_needs_an_eks_environment(env_dir):  # noqa: F811
    write(env_dir, "dev", (env_dir / "dev.yaml").read_text()
          + "delivery: gitops\ngitops: {repository: 'git@github.com:org/repo.git'}\n")
    assert "dev.yaml: delivery = 'gitops': GitOps keeps the broker's credentials out of Git" in error_for(env_dir, "dev")
