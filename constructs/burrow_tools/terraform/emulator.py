"""`make e2e-aws ENV=<env>`: rehearse an environment's AWS layers against a local AWS API emulator.

It starts moto's server on a loopback port, synthesizes the environment with the AWS
provider pointed at it (only in this mode), then for `<env>-common` and `<env>-cluster`:
apply, a second `terraform plan -detailed-exitcode` that must report no changes, and
destroy; finally the emulator must hold exactly what it held before (nothing left behind).

Where moto cannot represent AWS faithfully, `EMULATOR_GAPS` says which resource and why.
That table is the only place the rehearsal departs from what `make synth` produces; where moto
itself is wrong and a stack would wait on it forever, `moto_server.FIXES` corrects moto instead.

Usage: python -m burrow_tools.terraform.emulator <env> [--keep]
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burrow_tools.terraform.cli import TerraformUnavailable, find_mirror
from burrow_tools.terraform.diff import plan_environment
from burrow_tools.terraform.moto_server import FIXES
from burrow_tools.terraform.validate import run_terraform, terraform_env

ROOT = Path(__file__).resolve().parents[3]
LAYERS = ("common", "cluster")


@dataclass(frozen=True)
class Gap:
    """One way the emulator differs from AWS, and what the rehearsal does about it."""

    resource_type: str
    reason: str
    drop: bool = False  # the emulator has no API for it: leave the resource out
    ignore: tuple[str, ...] = ()  # attributes the emulator does not store: ignore their drift
    allow_destroy: bool = False  # lift prevent_destroy so the rehearsal can clean up


EMULATOR_GAPS = (
    Gap("aws_eks_addon", "moto has no EKS add-on API (CreateAddon answers 404)", drop=True),
    Gap("aws_eks_cluster", "moto does not store or return access_config", ignore=("access_config",)),
    Gap("aws_eks_access_entry", "moto has no EKS access entry API (CreateAccessEntry answers 404)", drop=True),
    Gap(
        "aws_ec2_tag",
        "moto's EKS creates no cluster security group (clusterSecurityGroupId is empty), so Karpenter's "
        "discovery tag has nothing to go on",
        drop=True,
    ),
    Gap(
        "aws_eks_node_group",
        "moto returns an empty remote_access block, no update_config, and its own version/release",
        ignore=("remote_access", "update_config", "version", "release_version", "labels", "tags"),
    ),
    Gap(
        "aws_s3_bucket_policy",
        "moto enforces bucket policies but never sees aws:SecureTransport as true, so the "
        "TLS-only deny would refuse every request, the state backend's included",
        drop=True,
    ),
    Gap(
        "aws_s3_bucket_lifecycle_configuration",
        "moto's answer to GetBucketLifecycleConfiguration never matches what the provider waits "
        "for after PutBucketLifecycleConfiguration, so creation times out after 3 minutes",
        drop=True,
    ),
    Gap(
        "aws_route53_query_log",
        "moto finds the log group only when its ARN ends in ':*', which the provider does not send (AWS takes "
        "the log group's ARN as the provider gives it)",
        drop=True,
    ),
    Gap(
        "aws_s3_bucket",
        "the rehearsal destroys the state bucket, which prevent_destroy forbids for real",
        allow_destroy=True,
    ),
)


def apply_gaps(stack_json: dict) -> list[str]:
    """Adjust one synthesized stack for the emulator; return what was changed, for the log."""
    resources = stack_json.get("resource", {})
    notes = []
    for gap in EMULATOR_GAPS:
        if gap.resource_type not in resources:
            continue
        if gap.drop:
            dropped = resources.pop(gap.resource_type)
            notes.append(f"left out {len(dropped)} {gap.resource_type}: {gap.reason}")
            continue
        for resource in resources[gap.resource_type].values():
            lifecycle = resource.setdefault("lifecycle", {})
            if gap.ignore:
                lifecycle["ignore_changes"] = sorted(set(lifecycle.get("ignore_changes", [])) | set(gap.ignore))
            if gap.allow_destroy:
                lifecycle["prevent_destroy"] = False
        notes.append(f"adjusted {gap.resource_type}: {gap.reason}")
    return notes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Emulator:
    """moto's server on a loopback port, with AWS managed policies loaded (EKS roles attach them).

    `account_id` is the account every caller is in (what STS GetCallerIdentity answers), so the
    providers' `allowed_account_ids` guard runs for real: the environment's own account passes,
    any other is refused by Terraform.
    """

    def __init__(self, account_id: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Certificates are issued 1 s after their DNS validation records exist (AWS: minutes).
        env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "MOTO_ACM_VALIDATION_WAIT": "1"}
        if account_id:
            env["MOTO_ACCOUNT_ID"] = account_id
        self.process = subprocess.Popen(
            [sys.executable, "-m", "burrow_tools.terraform.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            env={**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "constructs"), env.get("PYTHONPATH")]))},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.close()
        raise TerraformUnavailable(f"moto_server did not listen on {self.url}")

    def client(self, service: str, region: str):
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(aws_access_key_id="emulator", aws_secret_access_key="emulator", region_name=region)
        return session.client(service, endpoint_url=self.url, config=Config(s3={"addressing_style": "path"}))

    def inventory(self, region: str) -> dict[str, list[str]]:
        """What the emulator holds of every kind Burrow creates (ids, sorted)."""
        def client(name: str):
            return self.client(name, region)

        ec2, iam, eks, kms = client("ec2"), client("iam"), client("eks"), client("kms")
        live_keys = [
            k["KeyId"]
            for k in kms.list_keys()["Keys"]
            if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] != "PendingDeletion"
        ]
        listings: dict[str, Callable[[], list[str]]] = {
            "vpcs": lambda: [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]],
            "subnets": lambda: [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]],
            "internet_gateways": lambda: [g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]],
            "nat_gateways": lambda: [
                n["NatGatewayId"] for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] != "deleted"
            ],
            "elastic_ips": lambda: [a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]],
            "route_tables": lambda: [r["RouteTableId"] for r in ec2.describe_route_tables()["RouteTables"]],
            "buckets": lambda: [b["Name"] for b in client("s3").list_buckets()["Buckets"]],
            "ecr_repositories": lambda: [r["repositoryName"] for r in client("ecr").describe_repositories()["repositories"]],
            "iam_roles": lambda: [r["RoleName"] for r in iam.list_roles()["Roles"]],
            "oidc_providers": lambda: [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]],
            "eks_clusters": lambda: eks.list_clusters()["clusters"],
            "kms_keys": lambda: live_keys,
            "secrets": lambda: [x["Name"] for x in client("secretsmanager").list_secrets()["SecretList"]],
            "queues": lambda: client("sqs").list_queues().get("QueueUrls", []),
            "event_rules": lambda: [r["Name"] for r in client("events").list_rules()["Rules"]],
            "certificates": lambda: [c["CertificateArn"] for c in client("acm").list_certificates()["CertificateSummaryList"]],
            "peerings": lambda: [
                p["VpcPeeringConnectionId"] for p in ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
                if p["Status"]["Code"] not in ("deleted", "rejected")
            ],
            "log_groups": lambda: [g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]],
            # Route 53 is global: listed the same from every region
            "hosted_zones": lambda: [z["Name"] for z in client("route53").list_hosted_zones()["HostedZones"]],
            "health_checks": lambda: [h["Id"] for h in client("route53").list_health_checks()["HealthChecks"]],
        }
        return {kind: sorted(listing()) for kind, listing in listings.items()}

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


_STARTED = [time.monotonic()]  # reset when a rehearsal starts


def step(message: str) -> None:
    """One line of the rehearsal's log, with the seconds since it started (where the time goes)."""
    print(f"e2e-aws: [{time.monotonic() - _STARTED[0]:4.0f} s] {message}", flush=True)


def synthesize(env_name: str, outdir: Path, endpoint: str) -> None:
    env = {
        **os.environ,
        "BURROW_ENV": env_name,
        "BURROW_AWS_ENDPOINT": endpoint,
        "CDKTF_OUTDIR": str(outdir),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise RuntimeError(f"synth failed:\n{result.stderr[-3000:]}")


#: Everything Terraform printed during a rehearsal (plans and applies), searched for secret values.
PRINTED: list[str] = []


def terraform(args: list[str], stack_dir: Path, env: dict[str, str], what: str) -> subprocess.CompletedProcess:
    result = run_terraform([*args, "-no-color", "-input=false"], stack_dir, env)
    PRINTED.append(result.stdout + result.stderr)
    if result.returncode not in (0, 2) or (result.returncode == 2 and "-detailed-exitcode" not in args):
        raise RuntimeError(f"{what} failed for {stack_dir.name}:\n{(result.stdout + result.stderr)[-4000:]}")
    return result


def emulator_s3_backend(bucket: str, key: str, region: str, endpoint: str, account_id: str | None) -> dict:
    """The S3 backend of a cloud environment (state bucket, S3 lock file, account guard), pointed at the emulator."""
    guard = {"allowed_account_ids": [account_id]} if account_id else {"skip_requesting_account_id": True}
    return {
        "terraform": {
            "backend": {
                "s3": {
                    "bucket": bucket,
                    "key": key,
                    "region": region,
                    "encrypt": True,
                    "use_lockfile": True,
                    "endpoints": {"s3": endpoint, "sts": endpoint, "iam": endpoint},
                    "use_path_style": True,
                    "access_key": "emulator",
                    "secret_key": "emulator",
                    "skip_credentials_validation": True,
                    "skip_metadata_api_check": True,
                    "skip_region_validation": True,
                    **guard,
                }
            }
        }
    }


def rehearse_bootstrap(stack: Path, tf_env: dict[str, str], emulator: Emulator, bucket: str, region: str,
                       account_id: str | None) -> None:
    """The documented first deploy: `<env>-common` applied with local state moves its state into the
    bucket it just created, plans empty from there, and (for the clean-up) moves back."""
    key = f"{stack.name.rsplit('-', 1)[0]}/common.tfstate"
    override = stack / "backend_override.tf.json"
    override.write_text(json.dumps(emulator_s3_backend(bucket, key, region, emulator.url, account_id), indent=2))
    step(f"{stack.name}: bootstrap - migrate local state into s3://{bucket}/{key}")
    terraform(["init", "-migrate-state", "-force-copy"], stack, tf_env, "init -migrate-state")
    s3 = emulator.client("s3", region)
    if "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=key):
        raise RuntimeError(f"bootstrap: no state object s3://{bucket}/{key} after the migration")
    plan = terraform(["plan", "-detailed-exitcode"], stack, tf_env, "plan")
    if plan.returncode != 0:
        raise RuntimeError(f"bootstrap: plan from the S3 state is not empty:\n{plan.stdout[-3000:]}")
    override.unlink()
    terraform(["init", "-migrate-state", "-force-copy"], stack, tf_env, "init -migrate-state (back to local)")
    versions = s3.list_object_versions(Bucket=bucket)
    for entry in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])
    step(f"{stack.name}: bootstrap passed (state lived in its own bucket, plan empty)")


def rehearse_credentials(outdir: Path, emulator: Emulator, env_name: str, region: str) -> None:
    """The generated credentials exist in Secrets Manager (of `region`), and no value of theirs
    occurs in any state file or in anything Terraform printed (plans, applies). A shell (the
    federation CA, which the primary's cluster writes) exists and holds no value at all."""
    from burrow.cluster.credentials import PUSHED_BY  # noqa: PLC0415 - loads the AWS bindings

    manager = emulator.client("secretsmanager", region)
    listed = [s for s in manager.list_secrets()["SecretList"] if s["Name"].startswith(f"burrow/{env_name}/")]
    shells = sorted(s["Name"] for s in listed  # tagged for the cluster's PushSecret: Terraform writes no value
                    if PUSHED_BY.items() <= {t["Key"]: t["Value"] for t in s.get("Tags") or []}.items())
    names = [s["Name"] for s in listed if s["Name"] not in shells]
    if not names:
        raise RuntimeError(f"no generated secrets burrow/{env_name}/* in the emulator's Secrets Manager")
    valued = [name for name in shells if _has_value(manager, name)]
    if valued:
        raise RuntimeError(f"shells that Terraform must leave empty hold a value: {valued}")
    values = {
        f"{name}:{field}": value
        for name in names
        for field, value in json.loads(manager.get_secret_value(SecretId=name)["SecretString"]).items()
    }
    if any(len(value) < 16 for value in values.values()):
        raise RuntimeError(f"a generated credential is shorter than 16 characters: {sorted(values)}")
    written = [path.read_text(errors="replace") for path in outdir.rglob("*.tfstate*") if path.is_file()]
    written += [path.read_text(errors="replace") for path in outdir.rglob("cdk.tf.json")]
    found = sorted(where for where, value in values.items() if any(value in text for text in written + PRINTED))
    if found:
        raise RuntimeError(f"generated credentials leaked into Terraform state, plan or output: {found}")
    empty = f"{len(shells)} shell(s) without a value ({', '.join(shells)}); " if shells else ""
    step(f"credentials: {len(values)} values in {len(names)} secrets ({', '.join(sorted(names))}) in {region}; {empty}"
         f"none in {len(written)} state/config files or {len(PRINTED)} Terraform outputs")


def _has_value(manager: Any, name: str) -> bool:
    try:
        manager.get_secret_value(SecretId=name)
    except manager.exceptions.ResourceNotFoundException:
        return False
    return True


def rehearse_day2(emulator: Emulator, env_name: str, region: str, account_id: str | None) -> None:  # env_name: the stack prefix
    """Karpenter's and Velero's AWS side, as applied: the interruption queue with every EventBridge
    rule targeting it, the backup bucket encrypted with its own KMS key and versioned, the roles."""
    sqs, events, s3, iam = (emulator.client(name, region) for name in ("sqs", "events", "s3", "iam"))
    queue = f"burrow-{env_name}-karpenter"
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rules = [r["Name"] for r in events.list_rules(NamePrefix=f"{queue}-")["Rules"]]
    untargeted = [r for r in rules if arn not in {t["Arn"] for t in events.list_targets_by_rule(Rule=r)["Targets"]}]
    from burrow.cluster.karpenter import INTERRUPTION_EVENTS  # noqa: PLC0415 - loads the AWS bindings

    if len(rules) != len(INTERRUPTION_EVENTS) or untargeted:
        raise RuntimeError(f"interruption rules: {rules}; not sending to {queue}: {untargeted}")
    bucket = f"burrow-{env_name}-backups-{account_id}"
    [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    default = rule["ApplyServerSideEncryptionByDefault"]
    if default["SSEAlgorithm"] != "aws:kms" or ":key/" not in default.get("KMSMasterKeyID", ""):
        raise RuntimeError(f"backup bucket {bucket} is not encrypted with its own KMS key: {default}")
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        raise RuntimeError(f"backup bucket {bucket} is not versioned")
    roles = [f"burrow-{env_name}-{suffix}" for suffix in ("karpenter", "karpenter-node", "velero")]
    for role in roles:
        iam.get_role(RoleName=role)
    step(f"day 2: {queue} receives {len(rules)} EventBridge rules; {bucket} is KMS-encrypted and versioned; "
         f"roles {', '.join(roles)} exist")


def rehearse_review(outdir: Path, env_name: str) -> None:
    """`make diff`'s code path once every stack the cluster reads exists: common plans empty, the
    cluster's plan shows what it will create (it can read their outputs now)."""
    plans = {plan.stack: plan for plan in plan_environment(outdir, env_name, echo=lambda _text: None)}
    common, cluster = plans[f"{env_name}-common"], plans[f"{env_name}-cluster"]
    if common.status != "no changes" or cluster.status != "changes" or " to add" not in cluster.summary:
        raise RuntimeError(f"review plans are wrong: {common.stack}: {common.summary}; {cluster.stack}: {cluster.summary}"
                           f"\n{(common.output + cluster.output)[-3000:]}")
    for plan in plans.values():
        step(f"review: {plan.stack}: {plan.status}: {plan.summary}")


def rehearse_dns(emulator: Emulator, env_name: str, regions: list[str], zone: str, host: str) -> None:
    """The global stack as applied: the zone, one health check and one latency record per region,
    and every region's certificate issued for the public name and the region's own."""
    route53 = emulator.client("route53", regions[0])
    [zone_id] = [z["Id"] for z in route53.list_hosted_zones()["HostedZones"] if z["Name"] == f"{zone}."]
    records = [r for r in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
               if r["Name"] == f"{host}." and r["Type"] == "CNAME"]
    routed = sorted((r["SetIdentifier"], r["Region"], r["ResourceRecords"][0]["Value"], bool(r.get("HealthCheckId")))
                    for r in records)
    wanted = sorted((region, region, f"{region}.{host}", True) for region in regions)
    if routed != wanted:
        raise RuntimeError(f"latency records of {host}: {routed}; wanted {wanted}")
    checks = [h["HealthCheckConfig"] for h in route53.list_health_checks()["HealthChecks"]]
    probed = sorted(c["FullyQualifiedDomainName"] for c in checks if c.get("ResourcePath") == "/health")
    if probed != sorted(f"{region}.{host}" for region in regions):
        raise RuntimeError(f"health checks probe {probed}")
    for region in regions:
        acm = emulator.client("acm", region)
        issued = [acm.describe_certificate(CertificateArn=c["CertificateArn"])["Certificate"]
                  for c in acm.list_certificates()["CertificateSummaryList"]]
        names = [sorted(c["SubjectAlternativeNames"]) for c in issued if c["DomainName"] == host and c["Status"] == "ISSUED"]
        if names != [sorted({host, f"{region}.{host}"})]:
            raise RuntimeError(f"{region}: no issued certificate for {host} and {region}.{host}: {names}")
    step(f"dns: {zone} answers {host} by latency from {', '.join(regions)}, each tied to a /health check; "
         f"certificates issued in {len(regions)} regions")


def rehearse_token(emulator: Emulator, env_name: str, regions: list[str]) -> None:
    """The public producer's token is one value in every region (the primary's secret and its replicas)."""
    key = f"burrow/{env_name}/producer"
    values = {region: emulator.client("secretsmanager", region).get_secret_value(SecretId=key)["SecretString"]
              for region in regions}
    if len(set(values.values())) != 1:
        raise RuntimeError(f"{key} differs between regions {sorted(values)}: clients could not use one token")
    step(f"token: {key} holds one value in {', '.join(regions)} (replicated by Secrets Manager)")


def rehearse_peering(emulator: Emulator, regions: list[str]) -> None:
    """Every pair of federated regions is peered (active) with routes on both sides."""
    for region in regions[1:]:
        ec2 = emulator.client("ec2", region)
        active = [p for p in ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
                  if p["Status"]["Code"] == "active"]
        if not active:
            raise RuntimeError(f"{region}: no active VPC peering to {regions[0]}")
        routes = [r for t in ec2.describe_route_tables()["RouteTables"] for r in t["Routes"]
                  if r.get("VpcPeeringConnectionId") in {p["VpcPeeringConnectionId"] for p in active}]
        if not routes:
            raise RuntimeError(f"{region}: the peering has no routes")
        step(f"peering: {region} <-> {active[0]['AccepterVpcInfo'].get('Region', regions[0])} active, "
             f"{len(routes)} routes in {region}")


def prepare(stacks: list[Path]) -> None:
    """Apply the emulator's gaps to each stack's synthesized JSON, printing every adjustment."""
    for stack in stacks:
        path = stack / "cdk.tf.json"
        config = json.loads(path.read_text())
        for note in apply_gaps(config):
            step(f"{stack.name}: {note}")
        path.write_text(json.dumps(config, indent=2))


def replan_empty(stacks: list[Path], tf_env: dict[str, str]) -> None:
    for stack in stacks:
        step(f"{stack.name}: re-plan must be empty")
        plan = terraform(["plan", "-detailed-exitcode"], stack, tf_env, "plan")
        if plan.returncode != 0:
            raise RuntimeError(f"{stack.name}: re-plan after apply is not empty:\n{plan.stdout[-4000:]}")


def new_since(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, list[str]]:
    """What the emulator holds now that it did not hold before, by kind (kinds with nothing new left out)."""
    return {kind: sorted(set(ids) - set(before[kind])) for kind, ids in after.items() if set(ids) - set(before[kind])}


def rehearse(env_name: str) -> None:
    """Apply, re-plan (must be empty) and destroy the environment's AWS stacks against moto, which
    answers as the environment's account: each region's common and cluster layers, the primary
    region first, with `<env>-global` after the primary's common layer when the producer is public."""
    from burrow.config.loader import load_environment  # noqa: PLC0415
    from burrow_tools.delivery.regions import region_stacks  # noqa: PLC0415

    _STARTED[0] = time.monotonic()
    config = load_environment(env_name, ROOT / "environments")
    region, state_bucket, account_id = config.primary_region, config.state.bucket, config.aws.account_id
    views = config.regional()
    emulator = Emulator(account_id)
    PRINTED.clear()
    try:
        with tempfile.TemporaryDirectory(prefix=f"burrow-e2e-{env_name}-") as tmp:
            outdir = Path(tmp)
            step(f"emulator on {emulator.url}; synthesizing {env_name} ({', '.join(config.region_names)})")
            for fix in FIXES:
                step(f"emulator corrected: {fix}")
            # The account's prerequisites (docs/iam.md): the EC2 Spot service-linked role, which
            # Burrow checks for and never creates.
            emulator.client("iam", region).create_service_linked_role(AWSServiceName="spot.amazonaws.com")
            step("account prerequisite: the EC2 Spot service-linked role exists")
            before = {view.aws.region: emulator.inventory(view.aws.region) for view in views}
            synthesize(env_name, outdir, emulator.url)
            tf_env = terraform_env(outdir, find_mirror())
            # The order `make deploy` runs them in (burrow_tools.delivery.regions), the AWS-only layers.
            names = [name for r in config.region_names for name in region_stacks(config, r)
                     if name.endswith(("-global", *(f"-{layer}" for layer in LAYERS)))]
            stacks = [outdir / "stacks" / name for name in names]
            prepare(stacks)
            for index, stack in enumerate(stacks):
                step(f"{stack.name}: init + apply")
                terraform(["init"], stack, tf_env, "init")
                terraform(["apply", "-auto-approve"], stack, tf_env, "apply")
                if stack.name == f"{env_name}-common" and state_bucket:
                    rehearse_bootstrap(stack, tf_env, emulator, state_bucket, region, account_id)
                # once everything the cluster reads exists (prod: common, then global)
                if stacks[index + 1 :][:1] and stacks[index + 1].name == f"{env_name}-cluster":
                    rehearse_review(outdir, env_name)
            replan_empty(stacks, tf_env)
            for view in views:
                rehearse_credentials(outdir, emulator, env_name, view.aws.region)
                rehearse_day2(emulator, view.stack_prefix, view.aws.region, account_id)
            if config.ingress.enabled:
                rehearse_dns(emulator, env_name, config.region_names, config.ingress.zone, config.ingress.host)
                if config.ingress.authentication == "token":
                    rehearse_token(emulator, env_name, config.region_names)
            if config.multi_region and config.federation.enabled:
                rehearse_peering(emulator, config.federated_regions)
            for stack in reversed(stacks):
                step(f"{stack.name}: destroy")
                terraform(["destroy", "-auto-approve"], stack, tf_env, "destroy")
            left = {f"{view.aws.region}:{kind}": ids for view in views
                    for kind, ids in new_since(before[view.aws.region], emulator.inventory(view.aws.region)).items()}
            if left:
                raise RuntimeError(f"destroy left resources behind in the emulator: {left}")
            step(f"{env_name}: apply -> empty re-plan -> destroy passed for {len(stacks)} stacks in "
                 f"{len(views)} region(s); emulator holds nothing of ours")
    finally:
        emulator.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m burrow_tools.terraform.emulator <env>", file=sys.stderr)
        return 2
    try:
        from burrow.config.loader import load_environment

        env = load_environment(argv[0], ROOT / "environments")
        if not env.on_aws:
            print(f"e2e-aws: environment {env.name} has no AWS layers", file=sys.stderr)
            return 2
        rehearse(env.name)
    except Exception as exc:  # noqa: BLE001 - report any failure as one clear message
        print(f"e2e-aws: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
