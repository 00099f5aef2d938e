"""Field types for the names and addresses constructs take: each follows the rule AWS (or the
IP standard) sets, so a construct refuses a bad one when its props are built, with Burrow's one
line, instead of AWS refusing it in the middle of an apply.

Where a value is usually another resource's attribute (an ARN, a zone id), a cdktf reference
(an unresolved token) is accepted as it is: Terraform resolves it, and AWS made it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable
from typing import Annotated

from cdktf import Token
from pydantic import AfterValidator, StringConstraints

from burrow.settings import (  # noqa: F401 - the field types of account, host and region, here too
    AccountId,
    Hostname,
    RegionName,
)

#: IAM's longest role name, EventBridge's longest rule name, SQS's longest queue name.
IAM_ROLE_NAME_MAX = 64
EVENT_RULE_NAME_MAX = 64
SQS_QUEUE_NAME_MAX = 80


def fitted(base: str, suffix: str, limit: int = IAM_ROLE_NAME_MAX) -> str:
    """`<base><suffix>`, the name of a resource derived from `base` (a cluster's name), when it
    fits in `limit` characters; otherwise `base` cut short, a dash and 8 hex digits of its sha256,
    then `suffix`: still unique per base, still starting with what an operator searches for, and
    never refused by AWS halfway through an apply. Names that fit keep the plain form, so a
    resource is never renamed (replaced) because this rule exists."""
    name = f"{base}{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    keep = limit - len(suffix) - len(digest) - 1
    if keep < 1:
        raise ValueError(f"the suffix {suffix!r} leaves no room for a name within {limit} characters")
    return f"{base[:keep].rstrip('-_')}-{digest}{suffix}"


#: An EKS cluster's name (EKS's rule): letters, digits, `-` and `_`, starting with a letter or digit,
#: up to 100 characters.
EksClusterName = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z_-]{0,99}$")]

_ARN = re.compile(r"^arn:aws(-cn|-us-gov|-iso[a-z-]*)?:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12})?:.+$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: Prefixes and suffixes S3 keeps for its own names (access points, Object Lambda, directory buckets).
_BUCKET_RESERVED = (("xn--", "sthree-", "amzn-s3-demo-"), ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))


def _or_reference(pattern: re.Pattern[str], allowed: str) -> Callable[[str], str]:
    """A check that `pattern` matches a literal value; a cdktf reference is passed as it is."""

    def check(value: str) -> str:
        if not Token.is_unresolved(value) and not pattern.fullmatch(value):
            raise ValueError(f"{allowed}, or a reference to one")
        return value

    return check


#: An ARN (`arn:<partition>:<service>:<region>:<account>:<resource>`), or a reference to one.
Arn = Annotated[
    str, AfterValidator(_or_reference(_ARN, "an ARN (arn:<partition>:<service>:<region>:<account>:<resource>)"))
]
#: A Route 53 hosted zone id (`Z` and up to 31 capitals and digits), or a reference to one.
ZoneId = Annotated[str, AfterValidator(_or_reference(_ZONE_ID, "a Route 53 hosted zone id (Z0123456789ABCDEFGHIJ)"))]


def check_bucket_name(value: str) -> str:
    """`value` if it is a valid S3 bucket name, else a ValueError saying what is allowed."""
    prefixes, suffixes = _BUCKET_RESERVED
    if not _BUCKET.fullmatch(value) or ".." in value or value.startswith(prefixes) or value.endswith(suffixes):
        raise ValueError(
            "an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or "
            f"digit, no '..', not starting with {', '.join(prefixes)} nor ending with {', '.join(suffixes)}"
        )
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return value
    raise ValueError("an S3 bucket name, which may not look like an IP address")


#: An S3 bucket's name, by S3's naming rules.
BucketName = Annotated[str, AfterValidator(check_bucket_name)]


def _ipv4_network(value: str) -> str:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"an IPv4 network in CIDR notation with its host bits zero, like 10.0.0.0/16 ({exc})"
        ) from None
    return value


#: An IPv4 network in CIDR notation (`10.0.0.0/16`; host bits zero), kept as the text given.
Ipv4Cidr = Annotated[str, AfterValidator(_ipv4_network)]
