"""Bad configuration gets one clear error (file, key, value, what is allowed) before anything is synthesized."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from burrow.config.helm_values import chart_values
from burrow.config.loader import load_environment, load_environments
from burrow.errors import ConfigError
from burrow.merge import deep_merge
from tests.support.services import ROOT


@pytest.fixture
def env_dir(tmp_path) -> Path:
    target = tmp_path / "environments"
    shutil.copytree(ROOT / "environments", target)
    return target


def write(env_dir: Path, name: str, text: str) -> None:
    (env_dir / f"{name}.yaml").write_text(text)


def error_for(env_dir: Path, name: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_environment(name, env_dir)
    return str(caught.value)


def minimal_qa_error(env_dir: Path, override: str) -> str:
    """The error for a qa.yaml holding only what an EKS environment needs plus `override`; it must
    name qa.yaml, the file the mistake is in."""
    write(env_dir, "qa", "tier: staging\naws: {account_id: '210987654321'}\n"
                         f"state: {{backend: s3, bucket: burrow-qa-tfstate}}\n{override}\n")
    message = error_for(env_dir, "qa")
    assert message.startswith(str(env_dir / "qa.yaml")), message
    return message


def test_deep_merge_merges_mappings_and_replaces_everything_else():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    assert deep_merge(base, {"a": {"y": [3]}, "c": 2}) == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}


def test_every_shipped_environment_is_valid():
    for name in ("dev", "qa", "uat", "preprod", "prod"):
        assert load_environment(name, ROOT / "environments").name == name


def test_missing_environment_file_names_the_file_and_the_known_environments(env_dir):
    message = error_for(env_dir, "perf")
    assert "perf.yaml: file not found" in message
    assert "known environments: dev, preprod, prod, qa, uat" in message


@pytest.mark.parametrize("name", ["Prod", "p", "prod-eu", "../etc", "1qa"])
def test_bad_environment_names_are_refused(env_dir, name):
    assert f"environment name {name!r} is invalid" in error_for(env_dir, name)


def test_unknown_key_is_an_error_with_its_path_and_file(env_dir):
    write(env_dir, "qa", "state: {backend: s3, bucket: b-qa-tfstate}\nrabbitmq:\n  replicas: 1\n  replica_count: 3\n")
    message = error_for(env_dir, "qa")
    assert f"{env_dir / 'qa.yaml'}: rabbitmq.replica_count = 3: unknown key" in message


def test_wrong_type_names_file_key_value_and_what_is_allowed(env_dir):
    write(env_dir, "qa", "state: {backend: s3, bucket: b-qa-tfstate}\napps:\n  consumer:\n    prefetch: lots\n")
    message = error_for(env_dir, "qa")
    assert f"{env_dir / 'qa.yaml'}: apps.consumer.prefetch = 'lots': Input should be a valid integer" in message


def test_a_mistake_in_the_defaults_names_default_yaml(env_dir):
    text = (env_dir / "default.yaml").read_text() + "network:\n  vpc_cidr: 10.0.0.0/33\n"
    (env_dir / "default.yaml").write_text(text)
    message = error_for(env_dir, "dev")
    assert f"{env_dir / 'default.yaml'}: network.vpc_cidr = '10.0.0.0/33': not an IPv4 network" in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("rabbitmq: {replicas: 2}", "rabbitmq.replicas = 2: a RabbitMQ cluster needs an odd number"),
        ("apps: {producer: {image: {tag: latest}}}", "apps.producer.image.tag = 'latest': the mutable tag 'latest' is not allowed"),
        ("cluster: {eks: {node_groups: {general: {min_size: 5}}}}", "min_size (5) exceeds max_size (4)"),
        ("network: {availability_zones: 1}", "network.availability_zones = 1: Input should be greater than or equal to 2"),
        ("network: {availability_zones: 6, subnet_prefix_length: 19}", "12 subnets of /19 (public and private per zone) do not fit in 10.0.0.0/16"),
        ("kubernetes: {version: '1.9'}", "kubernetes.version = '1.9': supported versions are"),
        ("cluster: {eks: {node_groups: {general: {instance_types: [large]}}}}", "instance_types.0 = 'large'"),
        ("state: {backend: local}", "an EKS environment keeps its state in S3"),
        ("tier: prodution", "tier = 'prodution': Input should be 'development', 'staging', 'production' or 'preview'"),
    ],
)
def test_configurations_that_cannot_work_fail_with_the_reason(env_dir, override, expected):
    base = "state: {backend: s3, bucket: b-qa-tfstate}\n" if "state:" not in override else ""
    write(env_dir, "qa", base + override + "\n")
    assert expected in error_for(env_dir, "qa")


def test_invalid_yaml_names_the_line(env_dir):
    write(env_dir, "qa", "tier: staging\nrabbitmq:\n  replicas: 3\n  image: {tag: x\nnetwork: {}\n")
    error = error_for(env_dir, "qa")
    assert error.startswith(f"{env_dir / 'qa.yaml'}: line 5, column 8: not valid YAML:"), error


def test_a_storage_class_that_does_not_exist_is_refused(env_dir):
    write(env_dir, "qa", (env_dir / "qa.yaml").read_text() + "monitoring: {storage_class: fast-ssd}\n")
    assert error_for(env_dir, "qa") == (
        f"{env_dir / 'qa.yaml'}: monitoring.storage_class = 'fast-ssd': no such StorageClass on this cluster; available: gp3"
    )


def test_brokers_that_cannot_all_be_scheduled_are_refused(env_dir):
    text = (env_dir / "preprod.yaml").read_text().replace("min_size: 3, desired_size: 3", "min_size: 2, desired_size: 2")
    # Without Karpenter the brokers share the node groups (with it: test_day2, Karpenter's limits).
    text = text.replace("    node_groups:\n", "    karpenter: {enabled: false}\n    node_groups:\n")
    write(env_dir, "preprod", text)
    assert error_for(env_dir, "preprod") == (
        f"{env_dir / 'preprod.yaml'}: rabbitmq.replicas = 3: 3 brokers with hard anti-affinity need 3 nodes, but the "
        "node groups guarantee 2 (sum of cluster.eks.node_groups.*.min_size); raise min_size, or set anti_affinity: soft"
    )


def test_name_may_not_be_set_in_a_file(env_dir):
    write(env_dir, "qa", "name: other\n")
    assert "name: not allowed here; it comes from the file name" in error_for(env_dir, "qa")


def test_chart_values_may_not_set_what_the_typed_config_owns(tmp_path):
    (tmp_path / "values-default.yaml").write_text("clustering: {enabled: true}\n")
    (tmp_path / "values-qa.yaml").write_text("replicaCount: 5\n")
    assert chart_values(tmp_path, "dev", ["replicaCount"]) == [{"clustering": {"enabled": True}}]
    with pytest.raises(ConfigError, match=r"values-qa.yaml: replicaCount: set by Burrow"):
        chart_values(tmp_path, "qa", ["replicaCount"])


def run_main(env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py"], cwd=ROOT, env={"BURROW_ENV": env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120
    )


def test_cli_reports_a_bad_environment_without_a_traceback_and_writes_nothing(tmp_path):
    result = run_main("nosuchenv")
    assert result.returncode == 2
    assert "burrow: configuration error:" in result.stderr
    assert "nosuchenv.yaml: file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_new_env_scaffold_synthesizes_at_once(env_dir, tmp_path):
    from cdktf import App

    from burrow.synth import build_app
    from burrow_tools.scaffold import scaffold

    path = scaffold("perf", "210987654321", env_dir)
    assert path.read_text().count("burrow-perf-tfstate") == 1
    with pytest.raises(ConfigError, match="already exists"):
        scaffold("perf", "210987654321", env_dir)
    app = App(outdir=str(tmp_path / "out"))
    build_app(app, [load_environment("perf", env_dir)], ROOT / "helm")
    app.synth()
    assert sorted(p.name for p in (tmp_path / "out" / "stacks").iterdir()) == [
        "perf-addons",
        "perf-app",
        "perf-cluster",
        "perf-common",
    ]


ACCOUNT = 'aws: {account_id: "210987654321"}\n'
STATE = "state: {backend: s3, bucket: b-perf-tfstate}\n"


def test_an_eks_environment_without_its_account_is_refused_naming_its_file(env_dir):
    write(env_dir, "perf", STATE)
    message = error_for(env_dir, "perf")
    assert f"{env_dir / 'perf.yaml'}: aws.account_id = None: an EKS environment names its AWS account" in message


@pytest.mark.parametrize("account", ["12345", "12345678901a", "1234567890123"])
def test_a_malformed_account_id_names_the_value(env_dir, account):
    write(env_dir, "perf", STATE + f'aws: {{account_id: "{account}"}}\n')
    message = error_for(env_dir, "perf")
    assert f"perf.yaml: aws.account_id = '{account}': String should match pattern '^[0-9]{{12}}$'" in message


def test_a_role_in_another_account_is_refused_unless_allowed(env_dir):
    role = "arn:aws:iam::999999999999:role/deployer"
    write(env_dir, "perf", STATE + f'aws: {{account_id: "210987654321", role_arn: "{role}"}}\n')
    message = error_for(env_dir, "perf")
    assert f"perf.yaml: aws.role_arn = '{role}': the role is in account 999999999999, not the environment's" in message
    write(env_dir, "perf", STATE + f'aws: {{account_id: "210987654321", role_arn: "{role}", cross_account_role: true}}\n')
    assert load_environment("perf", env_dir).aws.role_account == "999999999999"


def test_an_external_id_without_a_role_is_refused(env_dir):
    write(env_dir, "perf", STATE + 'aws: {account_id: "210987654321", external_id: "burrow-ci"}\n')
    assert "external_id is only used with role_arn" in error_for(env_dir, "perf")


def test_one_state_bucket_from_two_accounts_is_refused(env_dir):
    write(env_dir, "perf", "state: {backend: s3, bucket: burrow-qa-tfstate}\n" + 'aws: {account_id: "111122223333"}\n')
    for asked in (None, ["perf"]):  # also when only the new environment is synthesized
        with pytest.raises(ConfigError) as caught:
            load_environments(env_dir, asked)
        assert ("state.bucket = 'burrow-qa-tfstate' is used by environments in different AWS accounts "
                "(111122223333: perf; 210987654321: qa)") in str(caught.value)


def test_the_account_guard_and_role_reach_every_aws_provider_the_backend_and_the_cluster_token(env_dir, tmp_path):
    """The role is assumed by every AWS provider and the backend, and `aws eks get-token` asks for a
    token as that role too (the role created the cluster, so its access entry is the one that exists)."""
    from cdktf import App

    from burrow.synth import build_app

    role = "arn:aws:iam::210987654321:role/burrow-deployer"
    write(env_dir, "perf", STATE + f'aws: {{account_id: "210987654321", role_arn: "{role}"}}\n')
    app = App(outdir=str(tmp_path / "out"))
    build_app(app, [load_environment("perf", env_dir)], ROOT / "helm")
    app.synth()
    for layer in ("common", "cluster"):
        stack = json.loads((tmp_path / "out" / "stacks" / f"perf-{layer}" / "cdk.tf.json").read_text())
        (aws,) = stack["provider"]["aws"]
        assert aws["allowed_account_ids"] == ["210987654321"]
        assert aws["assume_role"] == [{"role_arn": role, "session_name": "burrow-perf"}]
        backend = stack["terraform"]["backend"]["s3"]
        assert backend["allowed_account_ids"] == ["210987654321"]
        assert backend["assume_role"] == {"role_arn": role, "session_name": "burrow-perf"}
    for layer in ("addons", "app"):
        providers = json.loads((tmp_path / "out" / "stacks" / f"perf-{layer}" / "cdk.tf.json").read_text())["provider"]
        (kubernetes,), (helm,) = providers["kubernetes"], providers["helm"]
        for exec_block in (kubernetes["exec"][0], helm["kubernetes"]["exec"]):
            assert exec_block["args"][:2] == ["eks", "get-token"]
            assert exec_block["args"][-2:] == ["--role-arn", role], layer


def test_an_external_id_is_refused_where_the_cluster_token_cannot_pass_it(env_dir):
    role = "arn:aws:iam::210987654321:role/burrow-deployer"
    write(env_dir, "perf", STATE + f'aws: {{account_id: "210987654321", role_arn: "{role}", external_id: "ci-x1"}}\n')
    message = error_for(env_dir, "perf")
    assert f"{env_dir / 'perf.yaml'}: aws.external_id = 'ci-x1': `aws eks get-token`" in message
    assert "cannot pass an external id" in message


def test_make_new_env_as_the_docs_print_it_and_without_an_account(tmp_path):
    """`make new-env NAME=perf ACCOUNT=210987654321` as docs/environments.md prints it, into a copy of
    environments/ (tests beside this one read the real folder): the account is qa's, which creates
    the image repositories there, so the new environment uses them instead of breaking every load."""
    command = "make new-env NAME=perf ACCOUNT=210987654321"
    assert command in (ROOT / "docs" / "environments.md").read_text() and command in (ROOT / "README.md").read_text()
    env_dir = tmp_path / "environments"
    shutil.copytree(ROOT / "environments", env_dir)
    made = subprocess.run(["make", "-s", *command.split()[1:], f"ENVIRONMENTS={env_dir}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"created {env_dir / 'perf.yaml'}" in made.stdout
    perf = load_environment("perf", env_dir)
    assert perf.aws.account_id == "210987654321" and perf.registry.create is False
    assert "environment qa creates the repositories" in (env_dir / "perf.yaml").read_text()
    assert {env.name for env in load_environments(env_dir)} >= {"qa", "uat", "preprod", "prod", "perf"}
    again = subprocess.run(["make", "-s", *command.split()[1:], f"ENVIRONMENTS={env_dir}"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "perf.yaml: already exists; edit it instead" in again.stderr
    refused = subprocess.run(["make", "-s", "new-env", "NAME=perfx", f"ENVIRONMENTS={env_dir}"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "usage: make new-env NAME=<environment> ACCOUNT=<12-digit AWS account id>" in refused.stdout
    assert not (env_dir / "perfx.yaml").exists() and not (ROOT / "environments" / "perf.yaml").exists()


def test_make_synth_starts_afresh_but_keeps_local_terraform_state(tmp_path):
    """dev's state lives beside its stacks (`make deploy ENV=dev`); a later `make synth` must not
    delete it, or the next deploy would try to create everything again."""
    out = tmp_path / "out"
    state = out / "stacks" / "dev-app" / "terraform.dev-app.tfstate"
    stale = out / "stacks" / "gone-app" / "cdk.tf.json"
    for path, text in ((state, '{"version": 4}'), (state.with_suffix(".tfstate.backup"), "{}"), (stale, "{}")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    result = subprocess.run(["make", "-s", "synth", "ENV=dev"], cwd=ROOT, env={**os.environ, "CDKTF_OUTDIR": str(out)},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert state.read_text() == '{"version": 4}'
    assert state.with_suffix(".tfstate.backup").exists()
    assert not stale.parent.exists()
    assert (out / "stacks" / "dev-app" / "cdk.tf.json").exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        # Karpenter and backups (test_day2)
        ("cluster: {eks: {karpenter: {limits: {cpu: 1, memory_gib: 128}}}}",
         "cluster.eks.karpenter.limits.cpu = 1: at least one node of the smallest instance allowed (2 vCPUs, 4 GiB: "
         "size large of categories c, m, r)"),
        ("cluster: {eks: {karpenter: {instance_categories: [r], instance_sizes: [xlarge], limits: {cpu: 8, memory_gib: 16}}}}",
         "cluster.eks.karpenter.limits.memory_gib = 16: at least one node of the smallest instance allowed (4 vCPUs, 32 GiB"),
        ("cluster: {eks: {karpenter: {capacity_types: []}}}",
         "cluster.eks.karpenter.capacity_types = []: needs at least one entry"),
        ("cluster: {eks: {karpenter: {capacity_types: [reserved]}}}",
         "cluster.eks.karpenter.capacity_types.0 = 'reserved': Input should be 'spot' or 'on-demand'"),
        ("backups: {schedules: {daily: {retention_days: 0}}}",
         "backups.schedules.daily.retention_days = 0: Input should be greater than or equal to 1"),
        ("backups: {schedules: {daily: {cron: '0 25 * * *'}}}",
         "backups.schedules.daily.cron = '0 25 * * *': not a valid cron expression: hour field '25'"),
        ("backups: {schedules: {daily: {cron: 'every day'}}}",
         "backups.schedules.daily.cron = 'every day': not a valid cron expression: has 2 fields"),
        # delivery (test_gitops)
        ("delivery: flux", "delivery = 'flux': Input should be 'terraform' or 'gitops'"),
        ("delivery: gitops", "gitops = None: delivery: gitops needs gitops.repository"),
        ("delivery: gitops\ngitops: {repository: 'github.com/org/repo'}",
         "gitops.repository = 'github.com/org/repo': not a Git URL: use https://host/org/repo.git"),
        ("delivery: gitops\ngitops: {repository: 'https://github.com/o/r.git', branch: 'a b'}",
         "gitops.branch = 'a b': String should match pattern"),
    ],
)
def test_bad_scaling_backup_and_delivery_settings_fail_before_synthesis(env_dir, override, expected):
    message = minimal_qa_error(env_dir, override)
    assert expected in message, message


TWO_REGIONS = "regions: [{name: eu-west-1}, {name: us-east-1, network: {vpc_cidr: 10.1.0.0/16}}]\n"
PUBLIC = "ingress: {enabled: true, host: events.qa.example.com, zone: qa.example.com}\n"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("regions: [{name: eu-west-1}, {name: us-east-1, network: {vpc_cidr: 10.1.0.0/16}}, {name: us-east-1}]",
         "regions.2.name = 'us-east-1': region us-east-1 is listed twice (first as regions.1); each region once"),
        ("regions: [{name: eu-west-1}, {name: us-middle-1}]",
         "regions.1.name = 'us-middle-1': not an AWS region Burrow knows; known: us-east-1"),
        ("regions: [{name: us-east-1}, {name: eu-west-1}]",
         "regions.0.name = 'us-east-1': the first region is the primary and must be aws.region ('eu-west-1')"),
        ("regions: [{name: eu-west-1}, {name: us-east-1}]",
         "regions.1.network.vpc_cidr = '10.0.0.0/16': overlaps eu-west-1's 10.0.0.0/16; the regions' networks are peered"),
        ("regions: [{name: eu-west-1}, {name: us-east-1, network: {vpc_cidr: 10.0.128.0/17}}]",
         "regions.1.network.vpc_cidr = '10.0.128.0/17': overlaps eu-west-1's 10.0.0.0/16"),
        ("regions: [{name: eu-west-1}, {name: us-east-1, network: {vpc_cidr: 10.1.0.0/30}}]",
         "regions.1.network.vpc_cidr = '10.1.0.0/30': in region us-east-1: the VPC needs at least a /24"),
        ("regions: [{name: eu-west-1}, {name: us-east-1, network: {vpc_cidr: 10.1.0.0/16}, tier: production}]",
         "regions.1.tier = 'production': unknown key"),
        (TWO_REGIONS + PUBLIC + "federation: {enabled: true, regions: [eu-west-1, ap-south-1]}",
         "federation.regions = ['eu-west-1', 'ap-south-1']: ap-south-1 is not a region of this environment "
         "(eu-west-1, us-east-1); federate only between the environment's regions"),
        (TWO_REGIONS + "federation: {enabled: true}",
         "federation.enabled = True: federation names each region's broker in the environment's Route 53 zone"),
        (PUBLIC + "federation: {enabled: true}",
         "federation.enabled = True: federation links at least two regions; this environment federates eu-west-1"),
        ("tier: production\n" + PUBLIC.replace("}", ", tls: false}"),
         "ingress.tls = False: a public producer in a production environment serves HTTPS only"),
        *((f"tier: {tier}\n" + PUBLIC.replace("}", ", authentication: none}"),
           "qa.yaml: ingress.authentication = 'none': a public producer publishes only for its bearer token, in "
           "every tier: set ingress.authentication: token") for tier in ("development", "staging", "production")),
        ("ingress: {enabled: true, host: events.example.org, zone: qa.example.com}",
         "host 'events.example.org' does not lie inside zone 'qa.example.com'"),
        ("ingress: {enabled: true}", "an enabled ingress needs host (the public name) and zone"),
        ("ingress: {enabled: true, host: e.qa.example.com, zone: qa.example.com, allowed_cidrs: [10.0.0.1/8]}",
         "ingress.allowed_cidrs = ['10.0.0.1/8']: '10.0.0.1/8' is not an IPv4 network in CIDR notation (10.0.0.1/8 has host bits set)"),
    ],
)
def test_bad_region_ingress_and_federation_settings_fail_before_synthesis(env_dir, override, expected):
    message = minimal_qa_error(env_dir, override)
    assert expected in message, message


def test_a_second_region_keeps_the_primary_stack_names_and_state_keys():
    """Adding a region never moves the primary's state: its stacks keep `<env>-<layer>` and
    `<env>/<layer>.tfstate`; the new region's are `<env>-<region>-<layer>` in the same bucket."""
    prod = load_environment("prod", ROOT / "environments")
    primary, second = prod.regional()
    assert (primary.stack_prefix, primary.state_prefix, primary.aws.region) == ("prod", "prod", "eu-west-1")
    assert (second.stack_prefix, second.state_prefix, second.aws.region) == ("prod-us-east-1", "prod/us-east-1", "us-east-1")
    assert (second.network.vpc_cidr, primary.network.vpc_cidr) == ("10.51.0.0/16", "10.50.0.0/16")
    assert second.primary_region == "eu-west-1" and not second.is_primary
    for name in ("dev", "qa", "uat", "preprod"):
        env = load_environment(name, ROOT / "environments")
        assert env.regional() == [env] and env.stack_prefix == name and env.state_prefix == name


def test_two_environments_of_one_account_and_region_may_not_both_create_the_registries(env_dir):
    """qa, uat and preprod share one account in eu-west-1; ECR repository names are unique there, so
    only qa creates `burrow/producer` and `burrow/consumer` (registry.create: false in the others)."""
    from burrow.config.loader import load_environments

    assert [e.name for e in load_environments(env_dir) if e.registry.create and e.on_aws] == ["prod", "qa"]
    uat = env_dir / "uat.yaml"
    uat.write_text(uat.read_text().replace("registry:\n  create: false\n", ""))
    with pytest.raises(ConfigError) as caught:
        load_environments(env_dir, ["qa"])
    message = str(caught.value)
    assert "uat.yaml: registry.create = True: ECR repository burrow/producer is also created by environment qa in " \
        "account 210987654321, eu-west-1" in message, message
    assert "set registry.create: false in the others" in message


def test_two_environments_of_one_account_may_not_create_the_same_state_bucket(env_dir):
    from burrow.config.loader import load_environments

    uat = env_dir / "uat.yaml"
    uat.write_text(uat.read_text().replace("bucket: burrow-uat-tfstate", "bucket: burrow-qa-tfstate"))
    with pytest.raises(ConfigError, match=r"uat.yaml: state.bucket = 'burrow-qa-tfstate': S3 bucket burrow-qa-tfstate "
                                          r"is also created by environment qa in the world"):
        load_environments(env_dir)
