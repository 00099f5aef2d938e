"""Upstream conformance of Burrow's controller IAM policies.

Compares what a controller's policy grants in Burrow's synthesized stack JSON with what its
upstream project publishes as the reference at the version Burrow pins, action by action:

- a *grant* is one (action, resource, conditions) of an Allow statement. Both sides are reduced
  to shapes first: the account, region and cluster name become `{account}`, `{region}`,
  `{cluster}`; a reference to another resource (`${aws_sqs_queue.<id>.arn}` in Terraform, a
  cross-stack output, `${KarpenterInterruptionQueue.Arn}` in CloudFormation) becomes
  `{<terraform type>.<attribute>}`;
- a Burrow grant is *covered* by a reference grant when the reference's resource pattern matches
  its resource and it carries every condition of the reference with the same or fewer allowed
  values;
- per action the verdict is `equivalent` (the same grants), `narrowed` (every Burrow grant is
  covered, the sets differ), `dropped` (Burrow grants nothing), `addition` (the reference grants
  nothing) or `broader` (some Burrow grant is covered by no reference grant).

Every verdict but `equivalent` must be declared, with its reason, in
`burrow_tools.iam_narrowings.DECLARED`, except `broader`, which is always an error. The
references are `../shared/upstream/` (the AWS Load Balancer Controller's `iam_policy.json`,
Karpenter's CloudFormation template) and, for Velero's AWS plugin and external-dns, whose
references are prose documentation, the action lists transcribed below with their provenance.

The function API (`check_all`, `check`, `reference_grants`, `burrow_grants`, `upstream_dir`) is
what the tests and the first-deploy rehearsal call; `python -m burrow_tools.iam_conformance
[cdktf.out]` checks a synthesized folder (exit 1 on a difference, 2 without stacks or references).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from burrow.addons import karpenter, velero
from burrow.pins import AWS_LOAD_BALANCER_CONTROLLER, EXTERNAL_DNS

UPSTREAM_README = "../shared/upstream/README.md"
Condition = tuple[str, str, frozenset[str]]


class UpstreamMissing(RuntimeError):
    """The upstream reference data is not where the tests look for it."""


@dataclass(frozen=True)
class Controller:
    """A controller whose IAM policy Burrow writes: the `name` of its `aws_iam_role_policy`,
    the version Burrow pins, and where its reference comes from."""

    policy_name: str
    pinned: str
    reference: str


def _plugin_version() -> str:
    return velero.PLUGIN_IMAGE.rsplit(":v", 1)[1]


CONTROLLERS = {
    "aws-load-balancer-controller": Controller(
        "aws-load-balancer-controller",
        AWS_LOAD_BALANCER_CONTROLLER.version,
        "kubernetes-sigs/aws-load-balancer-controller v{version}: docs/install/iam_policy.json",
    ),
    "karpenter": Controller(
        "karpenter-controller",
        karpenter.CHART_VERSION,
        "aws/karpenter-provider-aws v{version}: website/content/en/v{minor}/getting-started/"
        "getting-started-with-karpenter/cloudformation.yaml (the KarpenterController* policies)",
    ),
    "velero": Controller(
        "velero",
        _plugin_version(),
        "vmware-tanzu/velero-plugin-for-aws v{version}: README.md, 'Set permissions for Velero' (transcribed)",
    ),
    "external-dns": Controller(
        "external-dns",
        EXTERNAL_DNS.version,
        "kubernetes-sigs/external-dns external-dns-helm-chart-{version}: docs/tutorials/aws.md, 'IAM Policy' "
        "(transcribed)",
    ),
}

#: The reference policies published only as documentation, transcribed by hand (actions, resources
#: and conditions as printed there; the bucket `arn:aws:s3:::${BUCKET}` written as the bucket's
#: shape `{aws_s3_bucket.arn}`), by controller and version. A version bump needs a new transcription.
TRANSCRIBED: dict[str, dict[str, dict]] = {
    "velero": {
        "1.13.2": {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Resource": "*",
                    "Action": [
                        "ec2:DescribeVolumes",
                        "ec2:DescribeSnapshots",
                        "ec2:CreateTags",
                        "ec2:CreateVolume",
                        "ec2:CreateSnapshot",
                        "ec2:DeleteSnapshot",
                    ],
                },
                {
                    "Effect": "Allow",
                    "Resource": ["{aws_s3_bucket.arn}/*"],
                    "Action": [
                        "s3:GetObject",
                        "s3:DeleteObject",
                        "s3:PutObject",
                        "s3:PutObjectTagging",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                },
                {"Effect": "Allow", "Resource": ["{aws_s3_bucket.arn}"], "Action": ["s3:ListBucket"]},
            ]
        },
    },
    "external-dns": {
        "1.21.1": {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Resource": ["arn:aws:route53:::hostedzone/*"],
                    "Action": [
                        "route53:ChangeResourceRecordSets",
                        "route53:ListResourceRecordSets",
                        "route53:ListTagsForResources",
                    ],
                },
                {"Effect": "Allow", "Resource": ["*"], "Action": ["route53:ListHostedZones"]},
            ]
        },
    },
}

#: CloudFormation resource types the Karpenter template refers to, as the Terraform types Burrow uses.
_CFN_TYPES = {"AWS::SQS::Queue": "aws_sqs_queue", "AWS::IAM::Role": "aws_iam_role"}
#: Operators for which fewer allowed values is not narrower: they must match exactly.
_EXACT_OPERATORS = ("Null", "Bool")


@dataclass(frozen=True)
class Grant:
    """One action on one resource shape under a set of conditions (operator, key, values)."""

    action: str
    resource: str
    conditions: frozenset[Condition] = frozenset()

    def covers(self, other: Grant) -> bool:
        """Whether every request `other` allows is allowed by this grant."""
        if other.action != self.action or not _pattern(self.resource).fullmatch(other.resource):
            return False
        return all(any(_narrower(condition, mine) for mine in other.conditions) for condition in self.conditions)


def _narrower(reference: Condition, candidate: Condition) -> bool:
    operator, key, values = reference
    if candidate[:2] != (operator, key):
        return False
    if "Not" in operator or operator.startswith(_EXACT_OPERATORS):
        return candidate[2] == values
    return candidate[2] <= values


def _pattern(resource: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in resource.split("*")))


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def policy_grants(document: Mapping[str, Any], shape: Callable[[str], str]) -> list[Grant]:
    """The grants of a policy document's Allow statements, every string passed through `shape`."""
    grants = []
    for statement in document["Statement"]:
        if statement.get("Effect") != "Allow" or {"NotAction", "NotResource"} & set(statement):
            raise ValueError(f"only Allow statements with Action and Resource are compared: {statement}")
        conditions = frozenset(
            (
                operator,
                shape(key),
                frozenset(shape(str(v).lower() if isinstance(v, bool) else str(v)) for v in _listed(value)),
            )
            for operator, block in statement.get("Condition", {}).items()
            for key, value in block.items()
        )
        grants += [
            Grant(action, shape(resource), conditions)
            for action in _listed(statement["Action"])
            for resource in _listed(statement["Resource"])
        ]
    return grants


# -- the references ---------------------------------------------------------------------------


def upstream_dir(root: Path) -> Path:
    """`../shared/upstream` beside the repository `root`, or an error saying what is missing."""
    folder = (root / ".." / "shared" / "upstream").resolve()
    if not (folder / "iam").is_dir():
        raise UpstreamMissing(
            f"the upstream reference data is missing: {folder}/iam does not exist; the IAM "
            f"conformance checks read it (see {UPSTREAM_README} for its files and provenance)"
        )
    return folder


def _reference_file(upstream: Path, name: str) -> Path:
    path = upstream / "iam" / name
    if not path.is_file():
        raise UpstreamMissing(f"{path} is missing: add it as {UPSTREAM_README} describes (file, tag, checksum)")
    return path


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form intrinsics (`!Sub`, `!GetAtt`, `!Ref`) as their argument."""


for _tag in ("!Sub", "!GetAtt", "!Ref"):
    _CloudFormationLoader.add_constructor(_tag, lambda loader, node: loader.construct_scalar(node))


def karpenter_template(version: str, upstream: Path) -> dict:
    """Karpenter's reference CloudFormation template at `version`."""
    path = _reference_file(upstream, f"karpenter-v{version}-cloudformation.yaml")
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass


def _cloudformation_shape(template: dict) -> Callable[[str], str]:
    types = {name: resource["Type"] for name, resource in template["Resources"].items()}
    fixed = {
        "AWS::Partition": "aws",
        "AWS::Region": "{region}",
        "AWS::AccountId": "{account}",
        "ClusterName": "{cluster}",
        "AWS::URLSuffix": "amazonaws.com",
    }

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in fixed:
            return fixed[name]
        logical, _, attribute = name.partition(".")
        return "{" + f"{_CFN_TYPES[types[logical]]}.{attribute.lower()}" + "}"

    return lambda text: re.sub(r"\$\{([^}]+)\}", substitute, text)


def reference_grants(controller: str, version: str, upstream: Path) -> list[Grant]:
    """What the upstream reference grants `controller` at `version`, as shapes."""
    if controller == "aws-load-balancer-controller":
        path = _reference_file(upstream, f"aws-load-balancer-controller-v{version}-iam_policy.json")
        return policy_grants(json.loads(path.read_text()), str)
    if controller == "karpenter":
        template = karpenter_template(version, upstream)
        shape = _cloudformation_shape(template)
        grants = []
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::IAM::ManagedPolicy":
                grants += policy_grants(json.loads(shape(resource["Properties"]["PolicyDocument"])), str)
        if not grants:
            raise ValueError(f"karpenter v{version}: the template holds no controller policy")
        return grants
    transcribed = TRANSCRIBED[controller]
    if version not in transcribed:
        raise UpstreamMissing(
            f"{controller} {version}: no transcribed reference (have {sorted(transcribed)}); "
            f"transcribe {CONTROLLERS[controller].reference.format(version=version)} into "
            f"burrow_tools.iam_conformance.TRANSCRIBED"
        )
    return policy_grants(transcribed[version], str)


def karpenter_interruption_events(version: str, upstream: Path) -> list[dict]:
    """The event patterns of the reference's EventBridge rules for the interruption queue."""
    template = karpenter_template(version, upstream)
    return [
        resource["Properties"]["EventPattern"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Events::Rule"
    ]


def karpenter_node_policies(version: str, upstream: Path) -> set[str]:
    """The names of the AWS managed policies of the reference's node role."""
    template = karpenter_template(version, upstream)
    arns = template["Resources"]["KarpenterNodeRole"]["Properties"]["ManagedPolicyArns"]
    return {arn.rsplit("/", 1)[1] for arn in arns}


# -- Burrow's side ----------------------------------------------------------------------------


def _outputs(stacks: Mapping[str, dict]) -> dict[str, str]:
    return {name: output["value"] for stack in stacks.values() for name, output in stack.get("output", {}).items()}


def _burrow_shape(stacks: Mapping[str, dict], stack: str) -> Callable[[str], str]:
    """Literal account, region and cluster name to placeholders; Terraform references to
    `{<type>.<attribute>}`, cross-stack outputs followed to the resource they export."""
    config = stacks[stack]
    provider = config["provider"]["aws"][0]
    literals = [
        (next(iter(config["resource"]["aws_eks_cluster"].values()))["name"], "{cluster}"),
        (provider["region"], "{region}"),
        *((account, "{account}") for account in provider["allowed_account_ids"]),
    ]
    outputs = _outputs(stacks)

    def reference(match: re.Match[str]) -> str:
        parts = match.group(1).split(".")
        if parts[:2] == ["data", "terraform_remote_state"] and parts[3] == "outputs":
            return shape(outputs[parts[4]])
        if len(parts) == 3 and parts[0].startswith("aws_"):
            return "{" + f"{parts[0]}.{parts[2]}" + "}"
        raise ValueError(f"{stack}: cannot reduce ${{{match.group(1)}}} to a shape")

    def shape(text: str) -> str:
        text = re.sub(r"\$\{([^{}]+)\}", reference, text)
        for literal, placeholder in literals:
            text = text.replace(literal, placeholder)
        return text

    return shape


def burrow_policy(stacks: Mapping[str, dict], stack: str, controller: str) -> dict | None:
    """The policy document of `controller`'s role in `stack`'s synthesized JSON (None without one)."""
    policy_name = CONTROLLERS[controller].policy_name
    found = [
        resource["policy"]
        for resource in stacks[stack].get("resource", {}).get("aws_iam_role_policy", {}).values()
        if resource.get("name") == policy_name
    ]
    if len(found) > 1:
        raise ValueError(f"{stack}: {len(found)} role policies named {policy_name}")
    return json.loads(found[0]) if found else None


def burrow_grants(stacks: Mapping[str, dict], stack: str, controller: str) -> list[Grant]:
    """What Burrow grants `controller` in `stack`, as shapes (empty when the stack has no such role)."""
    document = burrow_policy(stacks, stack, controller)
    return policy_grants(document, _burrow_shape(stacks, stack)) if document else []


# -- the comparison ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """The verdict for one action: `kind` and the resource shapes on each side."""

    controller: str
    action: str
    kind: str
    reference: tuple[str, ...]
    burrow: tuple[str, ...]

    def message(self) -> str:
        where = (
            f"the reference grants it on {', '.join(self.reference) or 'nothing'}, "
            f"Burrow on {', '.join(self.burrow) or 'nothing'}"
        )
        if self.kind == "broader":
            return (
                f"{self.controller}: {self.action} is broader than the reference ({where}; a Burrow grant that no "
                f"reference grant covers, by resource or by conditions): narrow Burrow's policy"
            )
        return (
            f"{self.controller}: {self.action} is {self.kind} and not declared ({where}): conform to the "
            f"reference, or declare it with its reason in burrow_tools.iam_narrowings.DECLARED and docs/iam.md"
        )


@dataclass(frozen=True)
class Declared:
    """A deliberate difference from the reference: the actions, what the reference grants them on,
    what Burrow grants them on (nothing for `dropped`), and why."""

    controller: str
    kind: str
    actions: tuple[str, ...]
    reference: tuple[str, ...]
    burrow: tuple[str, ...]
    reason: str

    def matches(self, finding: Finding) -> bool:
        return (finding.controller, finding.kind, finding.reference, finding.burrow) == (
            self.controller,
            self.kind,
            self.reference,
            self.burrow,
        ) and finding.action in self.actions


def _resources(grants: Iterable[Grant]) -> tuple[str, ...]:
    return tuple(sorted({grant.resource for grant in grants}))


def compare(controller: str, reference: Sequence[Grant], burrow: Sequence[Grant]) -> list[Finding]:
    """One finding per action either side grants."""
    findings = []
    for action in sorted({grant.action for grant in [*reference, *burrow]}):
        theirs = {grant for grant in reference if grant.action == action}
        ours = {grant for grant in burrow if grant.action == action}
        if not theirs:
            kind = "addition"
        elif not ours:
            kind = "dropped"
        elif not all(any(r.covers(b) for r in theirs) for b in ours):
            kind = "broader"
        else:
            kind = "equivalent" if ours == theirs else "narrowed"
        findings.append(Finding(controller, action, kind, _resources(theirs), _resources(ours)))
    return findings


@dataclass
class Conformance:
    """The result of one controller's check against one reference version."""

    controller: str
    version: str
    stack: str
    findings: list[Finding]
    declared: list[Declared] = field(default_factory=list)
    undeclared: list[Finding] = field(default_factory=list)
    stale: list[Declared] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.undeclared or self.stale)

    def count(self, kind: str) -> int:
        return sum(finding.kind == kind for finding in self.findings)

    def summary(self) -> str:
        kinds = ("equivalent", "narrowed", "dropped", "addition", "broader")
        counts = ", ".join(f"{self.count(kind)} {kind}" for kind in kinds if self.count(kind))
        return (
            f"{self.controller} v{self.version} in {self.stack}: {len(self.findings)} actions compared "
            f"({counts}); {len(self.declared)} declared differences"
        )

    def problems(self) -> list[str]:
        return [finding.message() for finding in self.undeclared] + [
            f"{row.controller}: declared {row.kind} of {', '.join(row.actions)} (reference "
            f"{', '.join(row.reference) or 'nothing'}, Burrow {', '.join(row.burrow) or 'nothing'}) matches no "
            f"difference any more: update or remove it in burrow_tools.iam_narrowings.DECLARED"
            for row in self.stale
        ]


def check(
    controller: str,
    version: str,
    stacks: Mapping[str, dict],
    stack: str,
    upstream: Path,
    declared: Sequence[Declared] | None = None,
) -> Conformance:
    """Compare `controller`'s policy in `stack` with its reference at `version`, against the
    declared differences (default: `burrow_tools.iam_narrowings.DECLARED`)."""
    if declared is None:
        from burrow_tools.iam_narrowings import DECLARED  # noqa: PLC0415 - the table imports this module

        declared = DECLARED
    ours = burrow_grants(stacks, stack, controller)
    if not ours:
        raise ValueError(f"{stack} has no role policy named {CONTROLLERS[controller].policy_name}")
    findings = compare(controller, reference_grants(controller, version, upstream), ours)
    rows = [row for row in declared if row.controller == controller]
    result = Conformance(controller, version, stack, findings)
    for finding in findings:
        if finding.kind == "equivalent":
            continue
        match = next((row for row in rows if finding.kind != "broader" and row.matches(finding)), None)
        if match is None:
            result.undeclared.append(finding)
        elif match not in result.declared:
            result.declared.append(match)
    result.stale = [row for row in rows if row not in result.declared]
    return result


def declared_markdown(declared: Sequence[Declared], controller: str) -> str:
    """The declared differences of one controller as the Markdown table docs/iam.md shows."""
    lines = ["| actions | kind | reference resource | Burrow resource | reason |", "|---|---|---|---|---|"]
    lines += [
        f"| {'<br>'.join(f'`{a}`' for a in row.actions)} | {row.kind} | "
        f"{'<br>'.join(f'`{r}`' for r in row.reference) or '—'} | "
        f"{'<br>'.join(f'`{r}`' for r in row.burrow) or '—'} | {row.reason} |"
        for row in declared
        if row.controller == controller
    ]
    return "\n".join(lines)


def check_all(stacks: Mapping[str, dict], upstream: Path) -> list[Conformance]:
    """Every controller's policy in every stack that has it, against its reference at the pinned version."""
    return [
        check(controller, spec.pinned, stacks, stack, upstream)
        for controller, spec in CONTROLLERS.items()
        for stack in stacks
        if burrow_policy(stacks, stack, controller)
    ]


def main(argv: Sequence[str]) -> int:
    """`python -m burrow_tools.iam_conformance [cdktf.out]`: check a synthesized output folder."""
    outdir = Path(argv[0] if argv else "cdktf.out")
    stacks = {path.parent.name: json.loads(path.read_text()) for path in sorted(outdir.glob("stacks/*/cdk.tf.json"))}
    if not stacks:
        print(f"iam-conformance: no synthesized stacks in {outdir}/stacks (run make synth first)")
        return 2
    try:
        results = check_all(stacks, upstream_dir(Path(__file__).resolve().parents[2]))
    except UpstreamMissing as error:
        print(f"iam-conformance: {error}")
        return 2
    for result in results:
        print(result.summary())
        for problem in result.problems():
            print(f"  {problem}")
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
