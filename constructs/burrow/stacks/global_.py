"""`<env>-global`: what an environment's regions share in DNS (an environment with `ingress`).

- The Route 53 public zone (`ingress.zone`): created here (`create_zone`), or looked up.
- Per region, a health check of `https://<region>.<host>/health` through that region's load
  balancer (so it fails when the region's load balancer, every producer pod behind it, or the
  region itself is down).
- Per region, a latency-routed record of the public name `<host>`: a CNAME to `<region>.<host>`
  with the region as set identifier and latency region, tied to that region's health check. A
  client resolves the nearest healthy region; when every region is unhealthy Route 53 answers
  with all of them.

One owner per record: this stack owns `<host>` (the routing policy, which no single region may
decide); each region's external-dns owns `<region>.<host>` (an alias to the load balancer that
only the region's controller knows, and replaces at will). A CNAME, not an alias, joins them,
because Route 53 refuses an alias to a name that does not exist yet and the regional names
appear only after each region's first deploy.

A zone it creates logs every DNS query to CloudWatch Logs (Route 53 writes query logs only to
us-east-1): a log group `/aws/route53/<zone>` kept a year and encrypted with a KMS key of its
own, and the resource policy that lets Route 53 write there and nowhere else.

This stack is deployed first: the regions' certificates are validated with records in its zone.
"""

from __future__ import annotations

import json

from cdktf import TerraformOutput
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.cloudwatch_log_resource_policy import CloudwatchLogResourcePolicy
from cdktf_cdktf_provider_aws.data_aws_route53_zone import DataAwsRoute53Zone
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.route53_health_check import Route53HealthCheck
from cdktf_cdktf_provider_aws.route53_query_log import Route53QueryLog
from cdktf_cdktf_provider_aws.route53_record import Route53Record, Route53RecordLatencyRoutingPolicy
from cdktf_cdktf_provider_aws.route53_zone import Route53Zone

from burrow.common.access import key_policy
from burrow.config.schema import EnvironmentConfig
from burrow.stacks.aws import AwsStack
from constructs import Construct

HEALTH_PATH = "/health"
RECORD_TTL = 60
QUERY_LOG_REGION = "us-east-1"  # the only region Route 53 writes query logs to
QUERY_LOG_DAYS = 365


class GlobalLayer(AwsStack):
    """`<env>-global`: the zone, a health check per region and the latency-routed public name.

    Escape hatches: `zone` (route53_zone, or the data source looking it up), `health_checks` and
    `records` (by region). `zone_id` and `zone_name` are what the regions' stacks read."""

    def __init__(self, scope: Construct, env: EnvironmentConfig) -> None:
        super().__init__(scope, env, "global")
        ingress = env.ingress
        assert ingress.host is not None and ingress.zone is not None  # required when enabled (schema)
        self.query_log: Route53QueryLog | None = None
        if ingress.create_zone:
            self.zone = Route53Zone(self, "zone", name=ingress.zone, comment=f"burrow {env.name}: public names",
                                    force_destroy=False)
        else:
            self.zone = DataAwsRoute53Zone(self, "zone", name=ingress.zone, private_zone=False)
        self.zone_id: str = self.zone.zone_id
        self.zone_name = ingress.zone
        if ingress.create_zone:  # a zone it owns logs its queries (an existing zone's owner decides that)
            self.query_log = self._query_log(env, ingress.zone)
        self.health_checks: dict[str, Route53HealthCheck] = {}
        self.records: dict[str, Route53Record] = {}
        for region in env.region_names:
            region_host = f"{region}.{ingress.host}"
            self.health_checks[region] = Route53HealthCheck(
                self, f"health-{region}", fqdn=region_host, type="HTTPS" if ingress.tls else "HTTP",
                port=443 if ingress.tls else 80, resource_path=HEALTH_PATH, enable_sni=ingress.tls or None,
                request_interval=ingress.health_check_interval, failure_threshold=ingress.health_check_failures,
                measure_latency=True, tags={"Name": f"burrow-{env.name}-{region}"},
            )
            self.records[region] = Route53Record(
                self, f"latency-{region}", zone_id=self.zone_id, name=ingress.host, type="CNAME", ttl=RECORD_TTL,
                records=[region_host], set_identifier=region,
                latency_routing_policy=Route53RecordLatencyRoutingPolicy(region=region),
                health_check_id=self.health_checks[region].id,
            )
        TerraformOutput(self, "zone-id", value=self.zone_id)
        if ingress.create_zone:
            TerraformOutput(self, "name-servers", value=self.zone.name_servers,
                            description="delegate the zone to these name servers in its parent zone")
        TerraformOutput(self, "public-name", value=ingress.host)

    def _query_log(self, env: EnvironmentConfig, zone: str) -> Route53QueryLog:
        """The zone's query log: a year in a KMS-encrypted log group in us-east-1 that only Route 53
        (for this account) may write."""
        assert env.aws.account_id is not None  # required for EKS environments by the configuration checks
        account = env.aws.account_id
        logs = self.aws if env.aws.region == QUERY_LOG_REGION else self.provider_in(QUERY_LOG_REGION, alias="query-logs")
        group_arn = f"arn:aws:logs:{QUERY_LOG_REGION}:{account}:log-group:/aws/route53/{zone}"
        key = KmsKey(
            self, "query-log-key", description=f"Encrypts the DNS query log of {zone}", enable_key_rotation=True,
            deletion_window_in_days=30, provider=logs,
            policy=key_policy(account, {
                "Sid": "CloudWatchLogsUsesIt", "Effect": "Allow",
                "Principal": {"Service": f"logs.{QUERY_LOG_REGION}.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group_arn}},
            }),
        )
        group = CloudwatchLogGroup(self, "query-log", name=f"/aws/route53/{zone}", retention_in_days=QUERY_LOG_DAYS,
                                   kms_key_id=key.arn, provider=logs)
        policy = CloudwatchLogResourcePolicy(
            self, "query-log-policy", policy_name=f"burrow-{env.name}-route53-query-logs", provider=logs,
            policy_document=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Sid": "Route53WritesQueryLogs", "Effect": "Allow", "Principal": {"Service": "route53.amazonaws.com"},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{group_arn}:*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }]}),
        )
        return Route53QueryLog(self, "query-logging", zone_id=self.zone_id, cloudwatch_log_group_arn=group.arn,
                               depends_on=[policy])
