"""cert-manager and the environment's federation CA: the trust root the regions' brokers share for
federation over TLS (federated environments only).

One CA per environment, made in the cluster and never in Terraform: in the region that signs
(the primary) a namespaced self-signed `Issuer` makes the CA `Certificate` into Secret
`CA_SECRET` of cert-manager's namespace, and a `PushSecret` copies that Secret (`tls.crt`,
`tls.key`, `ca.crt`, one JSON value) into Secrets Manager secret `burrow/<env>/federation-ca`,
which Terraform made as an empty shell and Secrets Manager replicates to the other federated
regions. There an `ExternalSecret` reads the replica into the same Secret. Every federated region
then has the `ClusterIssuer` `FEDERATION_ISSUER` signing with that CA; the brokers' certificates
name it (`burrow.app`).

cert-manager's namespace is a secrets consumer like the app: its own store and IRSA role, which
may read only the CA's secret (and, in the signing region, write only that one;
`burrow.cluster.credentials`). The chart's ClusterRoles are not aggregated into `edit`/`view`/
`admin`: only cluster administrators and Burrow create Certificates, so nobody with `edit` in a
namespace can have the federation CA sign for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from burrow.addons import kinds as k
from burrow.addons.base import HelmAddOn, owned_namespace
from burrow.addons.external_secrets import external_secret, store_for, store_ready
from burrow.k8s.objects import MANAGED_BY, K8sObject
from burrow.k8s.release import KubernetesObjects
from burrow.pins import CERT_MANAGER
from burrow.spi import ClusterInfo
from constructs import Construct

NAMESPACE = "cert-manager"
#: The ClusterIssuer that signs with the environment's federation CA, in every federated region.
FEDERATION_ISSUER = "burrow-federation"
#: The Secret (in cert-manager's namespace) holding the CA: made here in the signing region, read
#: from Secrets Manager in the others. The ClusterIssuer reads it from cert-manager's namespace
#: (the chart's cluster resource namespace).
CA_SECRET = "burrow-federation-ca"
#: The key of the CA's secret in Secrets Manager (`<prefix>/federation-ca`).
CA_SECRET_KEY = "federation-ca"
#: The self-signed Issuer (namespaced: nothing outside cert-manager's namespace can use it).
SELF_SIGNED = "burrow-federation-self-signed"
#: The environment's root CA (Certificate, Secret and namespaced Issuer of that name), made in the
#: signing region only: its key never leaves that cluster. It signs `CA_SECRET`, the intermediate
#: CA the regions share, which carries the name constraints: Erlang (so the brokers) enforces an
#: intermediate's constraints but not a trust anchor's, so the root trusted by every broker
#: (`ca.crt`) is unconstrained and the CA under it is constrained.
ROOT = "burrow-federation-root"
#: EKS's control plane reaches admission webhooks on the nodes at 443 and 10250 (the ports a node
#: security group of its own admits from the control plane); the webhook serves on 10250.
WEBHOOK_PORT = 10250
PUSH_SECRET_API_VERSION = "external-secrets.io/v1alpha1"
CERT_MANAGER_API_VERSION = "cert-manager.io/v1"


def small() -> dict[str, Any]:
    """Requests and a memory limit for each of cert-manager's pods."""
    return {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}


def restricted() -> dict[str, Any]:
    """Pod Security `restricted`, stated although the chart's defaults say the same: a chart upgrade
    that loosened them would not loosen Burrow's (a fresh copy for each part: no YAML aliases)."""
    return {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containerSecurityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                     "readOnlyRootFilesystem": True},
    }


KINDS = k.ChartKinds(
    chart="cert-manager",
    kinds=(k.DEPLOYMENT, *k.CLUSTER_RBAC, *k.NAMESPACE_RBAC, *k.core("Service", "ServiceAccount"), *k.WEBHOOKS,
           ("batch/v1", "Job")),
    crds=(*k.group_kinds("cert-manager.io", "Certificate", "CertificateRequest", "Issuer", "ClusterIssuer"),
          *k.group_kinds("acme.cert-manager.io", "Order", "Challenge")),
)


#: The controller's controllers: its defaults without the Ingress and Gateway shims. With them, any
#: Ingress (or Gateway) annotated `cert-manager.io/cluster-issuer: burrow-federation` would get a
#: certificate from the federation CA, for any name: anyone who may create an Ingress could then
#: pose as a peer region's broker. Burrow's Certificates are objects of their own.
CONTROLLERS = "--controllers=*,-ingress-shim,-gateway-shim"
#: Every IPv4 and IPv6 address: excluded from what the federation CA may sign.
ALL_ADDRESSES = ("0.0.0.0/0", "::/0")


def chart_values() -> dict[str, Any]:
    """CRDs templated and kept on uninstall, RBAC not aggregated into the built-in roles, no
    Ingress or Gateway shim (`CONTROLLERS`), leader election in cert-manager's own namespace
    (nothing in kube-system), the CA injector limited to cert-manager's namespace (it only fills
    the webhook's CA bundle), restricted pods, small requests."""
    return {
        "crds": {"enabled": True, "keep": True},
        "extraArgs": [CONTROLLERS],
        "global": {"rbac": {"aggregateClusterRoles": False}, "leaderElection": {"namespace": NAMESPACE}},
        **restricted(),
        "resources": small(),
        "webhook": {**restricted(), "resources": small(), "securePort": WEBHOOK_PORT},
        "cainjector": {**restricted(), "resources": small(), "extraArgs": [f"--namespace={NAMESPACE}"]},
        "startupapicheck": {**restricted(), "resources": small()},
    }


@dataclass(frozen=True)
class FederationCa:
    """The environment's federation CA on one cluster: made here and pushed to Secrets Manager
    (`signs`, the primary region), or read from Secrets Manager's replica (the other regions)."""

    #: The CA's Secrets Manager secret (`burrow/<env>/federation-ca`), an empty shell until pushed.
    secret_key: str
    #: Make the CA here and push it (one region per environment). default: read it
    signs: bool = False
    common_name: str = "Burrow federation CA"
    #: The shared (intermediate) CA certificate's lifetime. default: 10 years
    duration: str = "87600h"
    #: Renewed this long before it expires, with the same key (`rotationPolicy: Never`), so the
    #: brokers' certificates stay valid across a renewal. default: 1 year
    renew_before: str = "8760h"
    #: The root CA's lifetime (renewed with the same key, `renew_before` ahead). default: 20 years
    root_duration: str = "175200h"
    #: The DNS domains the CA may sign names in (critical X.509 name constraints; IP addresses are
    #: excluded altogether, since a DNS-only constraint leaves them free). Verifiers that apply a
    #: root's constraints refuse a certificate for any other name; Erlang, and so the brokers, do
    #: not (docs/federation-ca.md). default: unconstrained
    permitted_domains: tuple[str, ...] = ()


def _issuer(kind: str, name: str, spec: Mapping[str, Any], namespace: str | None = None) -> K8sObject:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {}), "labels": dict(MANAGED_BY)}
    return {"apiVersion": CERT_MANAGER_API_VERSION, "kind": kind, "metadata": metadata, "spec": dict(spec)}


def _ca(name: str, common_name: str, duration: str, renew_before: str, issuer: str,
        extra: Mapping[str, Any]) -> K8sObject:
    """A CA Certificate in cert-manager's namespace, into the Secret `name`, renewed with its key."""
    return {
        "apiVersion": CERT_MANAGER_API_VERSION,
        "kind": "Certificate",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": dict(MANAGED_BY)},
        "spec": {
            "isCA": True,
            "commonName": common_name,
            "secretName": name,
            "duration": duration,
            "renewBefore": renew_before,
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Never"},
            "issuerRef": {"group": "cert-manager.io", "kind": "Issuer", "name": issuer},
            **extra,
        },
    }


def root_certificate(ca: FederationCa) -> K8sObject:
    """The environment's root CA, self-signed, into `ROOT` (it stays in this cluster)."""
    return _ca(ROOT, f"{ca.common_name} root", ca.root_duration, ca.renew_before, SELF_SIGNED, {})


def ca_certificate(ca: FederationCa) -> K8sObject:
    """The shared CA, signed by the root, into `CA_SECRET` (its `ca.crt` is the root's certificate),
    with the name constraints."""
    constraints = ({"nameConstraints": {"critical": True, "permitted": {"dnsDomains": list(ca.permitted_domains)},
                                        "excluded": {"ipRanges": list(ALL_ADDRESSES)}}}
                   if ca.permitted_domains else {})
    return _ca(CA_SECRET, ca.common_name, ca.duration, ca.renew_before, ROOT, constraints)


def ca_push(ca: FederationCa) -> K8sObject:
    """The PushSecret that writes `CA_SECRET` (all its keys, one JSON string) into the CA's Secrets
    Manager secret through cert-manager's store, again whenever it changes. Deleting it leaves the
    secret alone (Terraform owns the shell)."""
    return {
        "apiVersion": PUSH_SECRET_API_VERSION,
        "kind": "PushSecret",
        "metadata": {"name": CA_SECRET, "namespace": NAMESPACE, "labels": dict(MANAGED_BY)},
        "spec": {
            "refreshInterval": "1h",
            "updatePolicy": "Replace",
            "deletionPolicy": "None",
            "secretStoreRefs": [{"kind": "ClusterSecretStore", "name": store_for(NAMESPACE)}],
            "selector": {"secret": {"name": CA_SECRET}},
            "data": [{
                "match": {"remoteRef": {"remoteKey": ca.secret_key}},
                "metadata": {"apiVersion": "kubernetes.external-secrets.io/v1alpha1", "kind": "PushSecretMetadata",
                             "spec": {"secretPushFormat": "string"}},
            }],
        },
    }


def ca_replica(ca: FederationCa) -> K8sObject:
    """The ExternalSecret that reads the pushed CA (the region's replica) into `CA_SECRET`."""
    keys = ("tls.crt", "tls.key", "ca.crt")
    return external_secret(CA_SECRET, NAMESPACE, ca.secret_key, {key: f'{{{{ index . "{key}" }}}}' for key in keys},
                           secret_type="kubernetes.io/tls")


def ca_objects(ca: FederationCa) -> list[K8sObject]:
    """The CA Secret's source (made and pushed, or read), then the ClusterIssuer that signs with it."""
    if ca.signs:
        source = [_issuer("Issuer", SELF_SIGNED, {"selfSigned": {}}, NAMESPACE), root_certificate(ca),
                  _issuer("Issuer", ROOT, {"ca": {"secretName": ROOT}}, NAMESPACE), ca_certificate(ca), ca_push(ca)]
    else:
        source = [ca_replica(ca)]
    return [*source, _issuer("ClusterIssuer", FEDERATION_ISSUER, {"ca": {"secretName": CA_SECRET}})]


@dataclass(frozen=True)
class CertManagerAddOn(HelmAddOn):
    """cert-manager's chart (pinned), then, once its CRDs and the secret store exist, the
    federation CA's objects (`ca`; none: cert-manager alone)."""

    name: str = "cert-manager"
    repository: str = CERT_MANAGER.repository
    chart: str = CERT_MANAGER.chart
    version: str = CERT_MANAGER.version
    namespace: str = NAMESPACE
    values: Mapping[str, Any] = field(default_factory=chart_values)
    ca: FederationCa | None = None

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        holder = Construct(scope, self.name)
        release = self.release(holder, ClusterInfo.providers_of(scope).helm)
        if self.ca is not None:
            KubernetesObjects(
                holder,
                "federation-ca",
                {"release_name": "burrow-federation-ca", "namespace": self.namespace, "objects": ca_objects(self.ca)},
                depends_on=[*filter(None, [owned_namespace(scope, self.namespace)]), release, *store_ready(scope)],
            )
        return holder
