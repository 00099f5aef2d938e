"""Messages across regions, on purpose: RabbitMQ federation between an environment's regional
brokers (cells).

Each region runs its own RabbitMQ. With `federation.enabled`, every federated region's broker
has the federation plugin and loads, at every boot, definitions that Burrow renders here:

- one `federation-upstream` per other region: its broker's name (a record in the environment's
  zone, kept by that region's external-dns, resolving to an internal network load balancer that
  only the peered networks reach), logging in as the federation user;
- one policy: `queue` mode federates the work queue (messages move to a region whose consumers
  have capacity when the upstream region's consumers have none, so each message is still
  processed once); `exchange` mode federates the work exchange (every region gets a copy of
  every message: processed once per region);
- the federation user (`FEDERATION_USER`, no management tags) the other regions' links log in
  as, with read on the federated queue only (`queue` mode).

These are part of the definitions every broker loads (`burrow.app.broker_users`), beside its
users by role and the services' topology.

**The first deploy.** Regions are deployed one after another, the primary first, so a broker
must boot before any later region exists. Its definitions therefore read only secrets of its own
region: its users' passwords, and the federation password, one value for the whole environment
that the primary region's cluster stack generates and Secrets Manager replicates to the other
federated regions (`burrow.stacks.aws.environment_secrets`). An upstream whose region is not
deployed yet is simply a link that retries every `reconnect_delay_seconds` until that region's
broker answers; nothing waits for it. (Reading each peer's own broker secret from its region,
as before, made the primary's ExternalSecret fail until the last region existed: the broker never
started and the first deploy never got past the primary.)

**Links over TLS, the server verified.** Links dial the upstream's TLS port (`AMQPS_PORT`) with
`amqps` URIs that verify the upstream broker's certificate (`verify_peer`) against the CA in this
broker's own certificate Secret, and its name against the name dialled (`server_name_indication`:
the upstream's `broker_host`). Every federated region's cluster runs cert-manager with a CA
`ClusterIssuer` named `FEDERATION_ISSUER`, and all the regions of an environment share that one CA
(the add-ons layer distributes it), so each broker's `ca.crt` verifies every peer. Each broker gets
its certificate (`federation_certificate`: its `broker_host` and in-cluster names) into Secret
`FEDERATION_TLS_SECRET`, which the Bitnami chart mounts (`CERTS_DIR`) and serves on its TLS
listener. What TLS does not add: no client certificates (a link still logs in with the federation
user's password, now inside TLS); a broker asks for a client certificate but admits a connection
without one (`failIfNoPeerCert: false`).

Links acknowledge `on-confirm`: the upstream broker removes a message only after the downstream
broker has confirmed it durably, so a message is never acknowledged away in transit.

`federation_definitions` is pure, so the federation test on two real brokers loads exactly what
Burrow renders (with real credentials in place of the templates).

**Links that do not come back.** RabbitMQ 3.10 does not restart a quorum queue's federation links
after its node restarts (the federation test shows it: no link for minutes), while any change of
the federation policy starts them at once. Every broker pod therefore runs a small sidecar,
`federation-links` (`KEEPER_SCRIPT`, run by the test against real nodes too): every
`check_seconds` it compares the links this node runs (in any state, so an upstream region that is
down does not count as missing) with the federated queues it leads times the upstreams, and after
two checks short it re-applies the policy, which restarts the links. Nothing is lost meanwhile:
messages wait in their upstream queue and are consumed there or once the link runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal
from urllib.parse import quote, urlencode

from pydantic import Field

from burrow.addons.cert_manager import FEDERATION_ISSUER  # noqa: F401 - the brokers' issuer, importable here
from burrow.addons.edge import DNS_OPT_IN
from burrow.app.settings import MessagingConfig
from burrow.k8s import objects as k8s
from burrow.k8s.objects import MANAGED_BY
from burrow.settings import Model

AMQPS_PORT = 5671  # the Bitnami chart's TLS listener (service.ports.amqpTls): what links dial
HEALTH_CHECK_PORT = 9419  # the broker's Prometheus port: what the federation load balancer checks
POLICY = "burrow-federation"
DEFINITIONS_FILE = "load_definition.json"  # the Bitnami chart's default loadDefinition file name
PLUGIN = "rabbitmq_federation"
#: The user federation links log in as on the upstream broker (every region's broker has it).
FEDERATION_USER = "burrow-federation"
#: The DNS domains of a broker's in-cluster names on its certificate (`<release>.<ns>.svc[.cluster.local]`);
#: with the environment's zone, the names the federation CA may sign (its name constraints).
CLUSTER_DOMAINS = ("svc.cluster.local", "svc")
#: The Secret (cert-manager's: `ca.crt`, `tls.crt`, `tls.key`) with the broker's certificate.
FEDERATION_TLS_SECRET = "rabbitmq-federation-tls"
#: Where the Bitnami chart (16.0.14) mounts that Secret in the broker container, and its file names
#: there (`ca.crt` becomes `ca_certificate.pem`, `tls.crt` `server_certificate.pem`).
CERTS_DIR = "/opt/bitnami/rabbitmq/certs"
CA_FILE = f"{CERTS_DIR}/ca_certificate.pem"
#: The certificate's lifetime and when cert-manager renews it (a new key every time).
CERTIFICATE_DURATION = "2160h"  # 90 days
CERTIFICATE_RENEW_BEFORE = "720h"  # 30 days


class FederationUpstream(Model):
    """Another region's broker this one federates from."""

    region: str
    #: Its `broker_host`: the name dialled, and the name its certificate must carry.
    host: str
    #: Its TLS port. default: 5671
    port: int = AMQPS_PORT


class BrokerFederation(Model):
    """How one region's broker federates with the other regions' (props of `RabbitMqBroker`)."""

    mode: Literal["queue", "exchange"] = "queue"
    region: str
    upstreams: list[FederationUpstream] = Field(min_length=1)
    #: This region's broker name for the other regions (external-dns writes it for the internal NLB).
    broker_host: str
    #: This region's private subnets: the internal load balancer's addresses (its health checks).
    load_balancer_cidrs: list[str]
    #: The peer regions' private subnets, where their brokers run (the load balancer keeps their addresses).
    peer_cidrs: list[str]
    max_hops: int = 1
    prefetch: int = 100
    reconnect_delay_seconds: int = 5
    #: The secret holding this region's broker `password`.
    credentials_key: str
    #: The secret (in this region: generated here in the primary, a replica elsewhere) holding the
    #: federation user's `password`, the same in every region.
    federation_key: str


def upstream_uri(upstream: FederationUpstream, password: str, where: str, ca_file: str = CA_FILE) -> str:
    """The `amqps` URI of a link to `upstream` at `where` (`host:port`): the upstream's certificate
    verified against `ca_file` and its name against `upstream.host` (SNI, which the Erlang client's
    hostname check uses), whatever address `where` dials. Query values are percent-encoded (the
    Erlang client decodes them)."""
    query = urlencode({"cacertfile": ca_file, "verify": "verify_peer", "server_name_indication": upstream.host},
                      safe="/", quote_via=quote)
    return f"amqps://{FEDERATION_USER}:{password}@{where}/%2F?{query}"


def federation_definitions(
    federation: BrokerFederation, messaging: MessagingConfig, federation_password: str,
    host_of: Callable[[FederationUpstream], str] | None = None, ca_file: str = CA_FILE,
) -> dict[str, Any]:
    """Federation's part of a broker's definitions (`burrow.app.broker_users.broker_definitions`):
    the federation `user` and its `permissions`, the upstreams (`parameters`) and the `policies`.
    `federation_password` is the value or the External Secrets template that becomes it; `host_of`
    can replace an upstream's `host:port` and `ca_file` the CA bundle links trust (the federation
    test points them at a loopback TLS port and its own CA; the name verified stays the upstream's)."""
    where = host_of or (lambda upstream: f"{upstream.host}:{upstream.port}")
    upstreams = [
        {
            "vhost": "/",
            "component": "federation-upstream",
            "name": upstream.region,
            "value": {
                "uri": upstream_uri(upstream, federation_password, where(upstream), ca_file),
                "ack-mode": "on-confirm",
                "trust-user-id": False,
                "max-hops": federation.max_hops,
                "prefetch-count": federation.prefetch,
                "reconnect-delay": federation.reconnect_delay_seconds,
                # the upstream queue keeps its own name (the same in every region)
                **({"queue": messaging.queue} if federation.mode == "queue" else {"exchange": messaging.exchange}),
            },
        }
        for upstream in federation.upstreams
    ]
    return {
        "user": {"name": FEDERATION_USER, "password": federation_password, "tags": ""},
        "permissions": federation_permissions(federation, messaging),
        "parameters": upstreams,
        "policies": [federation_policy(federation, messaging)],
    }


def federation_permissions(federation: BrokerFederation, messaging: MessagingConfig) -> dict[str, Any]:
    """What the federation user may do on an upstream broker: in `queue` mode, consume the work
    queue only (RabbitMQ counts a purge as a read), declare and write nothing."""
    if federation.mode != "queue":
        # An exchange link declares and binds its own queue and exchange upstream; the narrow
        # rights it needs are not yet proven against a real broker, so it keeps the broad ones.
        return {"user": FEDERATION_USER, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
    queue = "^" + messaging.queue.replace(".", "\\.") + "$"
    return {"user": FEDERATION_USER, "vhost": "/", "configure": "^$", "write": "^$", "read": queue}


def federation_policy(federation: BrokerFederation, messaging: MessagingConfig) -> dict[str, Any]:
    """The policy that federates the work queue (`queue` mode) or the work exchange with every upstream."""
    name, apply_to = (messaging.queue, "queues") if federation.mode == "queue" else (messaging.exchange, "exchanges")
    return {"vhost": "/", "name": POLICY, "pattern": "^" + name.replace(".", "\\.") + "$", "apply-to": apply_to, "priority": 0,
            "definition": {"federation-upstream-set": "all"}}


def federation_certificate(federation: BrokerFederation, namespace: str, service_hosts: Sequence[str]) -> k8s.K8sObject:
    """The broker's certificate (cert-manager), issued by the environment's federation CA
    (`FEDERATION_ISSUER`) into `FEDERATION_TLS_SECRET`: for its `broker_host`, which the other
    regions dial, and its in-cluster names (`service_hosts`). A new ECDSA key at every renewal."""
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": k8s.metadata(FEDERATION_TLS_SECRET, namespace, MANAGED_BY),
        "spec": {
            "secretName": FEDERATION_TLS_SECRET,
            "secretTemplate": {"labels": dict(MANAGED_BY)},
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": FEDERATION_ISSUER},
            "dnsNames": list(dict.fromkeys([federation.broker_host, *service_hosts])),
            "duration": CERTIFICATE_DURATION,
            "renewBefore": CERTIFICATE_RENEW_BEFORE,
            "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8", "rotationPolicy": "Always"},
            "usages": ["digital signature", "server auth"],
        },
    }


def tls_values() -> dict[str, Any]:
    """The Bitnami chart's `auth.tls` for a federated broker: its TLS listener serves the
    certificate in `FEDERATION_TLS_SECRET` (the chart renders no certificate Secret of its own when
    `existingSecret` is set, and mounts that Secret's `ca.crt`, not `tls.crt`, as the CA:
    `existingSecretFullChain: false`). A client may present a certificate, which must then verify
    against the environment's CA; none is required (links log in with a password)."""
    return {"enabled": True, "autoGenerated": False, "existingSecret": FEDERATION_TLS_SECRET,
            "existingSecretFullChain": False, "failIfNoPeerCert": False, "sslOptionsVerify": "verify_peer"}


def federation_service(federation: BrokerFederation, namespace: str, release_name: str,
                       pod_labels: dict[str, str]) -> k8s.K8sObject:
    """The broker's TLS port (and only that) on an internal network load balancer (AWS Load
    Balancer Controller, IP targets), reachable only from the peer regions' broker subnets, named
    by external-dns. The load balancer keeps the client's address, so the brokers' NetworkPolicy
    sees the peer broker itself; it checks the targets on the metrics port (TCP), so its own
    addresses never need AMQP."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"{release_name}-federation",
            "namespace": namespace,
            "labels": dict(MANAGED_BY),
            "annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
                "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
                "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
                "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": "preserve_client_ip.enabled=true",
                "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol": "tcp",
                "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port": str(HEALTH_CHECK_PORT),
                "external-dns.alpha.kubernetes.io/hostname": federation.broker_host,
                DNS_OPT_IN: "true",
            },
        },
        "spec": {
            "type": "LoadBalancer",
            "loadBalancerClass": "service.k8s.aws/nlb",
            "loadBalancerSourceRanges": list(federation.peer_cidrs),
            "selector": dict(pod_labels),
            "ports": [{"name": "amqps", "protocol": "TCP", "port": AMQPS_PORT, "targetPort": AMQPS_PORT}],
        },
    }


def federation_rules(federation: BrokerFederation) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(ingress, egress) NetworkPolicy rules of the brokers for federation: AMQP over TLS in from the
    peer regions' broker subnets (client addresses preserved), the health check in from the load
    balancer's subnets, AMQP over TLS out to the other regions' load balancers (in their broker
    subnets). Plain AMQP stays for the namespace's labelled clients."""
    ingress = [{"from": [{"ipBlock": {"cidr": cidr}} for cidr in federation.peer_cidrs], "ports": k8s.tcp_ports(AMQPS_PORT)},
               {"from": [{"ipBlock": {"cidr": cidr}} for cidr in federation.load_balancer_cidrs],
                "ports": k8s.tcp_ports(HEALTH_CHECK_PORT)}]
    egress = [{"to": [{"ipBlock": {"cidr": cidr}} for cidr in federation.peer_cidrs], "ports": k8s.tcp_ports(AMQPS_PORT)}]
    return ingress, egress


KEEPER_SCRIPT = r"""set -u
ctl() { rabbitmqctl $RABBITMQCTL_ARGS -q "$@"; }
short=0
flip=1
while true; do
  sleep "$CHECK_SECONDS"
  mine=$(ctl list_queues --local name policy 2>/dev/null | awk -v p="$FEDERATION_POLICY" '$2 == p {n++} END {print n+0}') || continue
  links=$(ctl eval 'length(rabbit_federation_status:status()).' 2>/dev/null) || continue
  if [ "$links" -lt $((mine * UPSTREAMS)) ]; then short=$((short + 1)); else short=0; fi
  if [ "$short" -ge 2 ]; then
    if ctl set_policy --apply-to "$POLICY_APPLY_TO" --priority "$flip" "$FEDERATION_POLICY" "$POLICY_PATTERN" \
        "$POLICY_DEFINITION" >/dev/null; then
      echo "federation-links: $links of $((mine * UPSTREAMS)) links on this node; re-applied policy $FEDERATION_POLICY"
      flip=$((1 - flip))
    fi
    short=0
  fi
done
"""
#: The keeper sidecar's home for rabbitmqctl: where the chart's broker container keeps the Erlang cookie.
COOKIE_HOME = "/opt/bitnami/rabbitmq/.rabbitmq/"


def keeper_env(federation: BrokerFederation, messaging: MessagingConfig, check_seconds: int = 30) -> dict[str, str]:
    """What `KEEPER_SCRIPT` reads (besides `RABBITMQCTL_ARGS`): the policy exactly as the definitions
    declare it, and how many links each federated queue should have."""
    policy = federation_policy(federation, messaging)
    return {
        "CHECK_SECONDS": str(check_seconds),
        "FEDERATION_POLICY": policy["name"],
        "POLICY_PATTERN": policy["pattern"],
        "POLICY_APPLY_TO": policy["apply-to"],
        "POLICY_DEFINITION": json.dumps(policy["definition"]),
        "UPSTREAMS": str(len(federation.upstreams)),
    }


def keeper_sidecar(federation: BrokerFederation, messaging: MessagingConfig, image: str, release_name: str,
                   security_context: dict[str, Any]) -> dict[str, Any]:
    """The `federation-links` container beside each broker: the broker's image (its rabbitmqctl),
    the broker's Erlang cookie from the pod's shared folder, nothing else."""
    node = f"rabbit@$(MY_POD_NAME).{release_name}-headless.$(MY_POD_NAMESPACE).svc.cluster.local"
    field = {"MY_POD_NAME": "metadata.name", "MY_POD_NAMESPACE": "metadata.namespace"}
    return {
        "name": "federation-links",
        "image": image,
        "command": ["/bin/bash", "-c", KEEPER_SCRIPT],
        "env": [
            *({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}} for name, path in field.items()),
            {"name": "RABBITMQCTL_ARGS", "value": f"-l -n {node}"},
            *({"name": name, "value": value} for name, value in keeper_env(federation, messaging).items()),
        ],
        "volumeMounts": [{"name": "empty-dir", "mountPath": COOKIE_HOME, "subPath": "app-erlang-cookie"},
                         {"name": "empty-dir", "mountPath": "/tmp", "subPath": "tmp-dir"}],
        "securityContext": security_context,
        "resources": {"requests": {"cpu": "20m", "memory": "96Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}},
    }


def chart_values(sidecar: dict[str, Any]) -> dict[str, Any]:
    """The Bitnami chart's settings for federation: the plugin and the link keeper beside each
    broker (the definitions are every broker's: `burrow.app.broker_users.chart_values`)."""
    return {"extraPlugins": PLUGIN, "sidecars": [sidecar]}
