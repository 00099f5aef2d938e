"""Each default has one home: the props and schema models hold the defaults, `environments/default.yaml`
only what they require or what Burrow's environments choose differently, each choice with its reason."""

from __future__ import annotations

import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticUndefined

from burrow.config.schema import ConsumerConfig, EnvironmentConfig, ProducerConfig, RabbitMqConfig
from tests.support.services import ROOT

#: Where `default.yaml` deliberately differs from the model's default, and why.
APPLICATION_CHOICES = {
    "cluster.api_access.deploy_from": "deploys run on GitHub-hosted runners, outside the VPC",
    "cluster.api_access.public_cidrs": "those runners' addresses are not fixed",
    "cluster.eks.karpenter.enabled": "Burrow's workloads run on Karpenter's nodes",
    "aws.github_repository": "the repository whose workflows get the delivery roles",
    "monitoring.enabled": "every shipped environment but dev is monitored",
    "backups.enabled": "every EKS environment is backed up",
    "backups.schedules": "a daily backup kept a week",
}

#: Fields of an environment section that the library's props repeat with a default of their own,
#: as `<section>.<field>`. The list may only shrink: the props hold the default and the schema
#: takes it from them (QueueWorkerProps lives in burrow.app.worker, which loads cdktf; the schema
#: can take its defaults once the props live in a module of their own).
TWO_HOMES = {
    "apps.producer.replicas",
    "apps.producer.autoscaling",
    "apps.consumer.replicas",
    "apps.consumer.autoscaling",
}


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds (`Model`, `Model | None`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next((m for a in typing.get_args(annotation) if (m := model_of(a))), None)
    return None


def entries_model(annotation: Any) -> type[BaseModel] | None:
    """`Model` of a `dict[str, Model]` field (node groups, backup schedules), if it is one."""
    if typing.get_origin(annotation) is dict:
        return model_of(typing.get_args(annotation)[1])
    return None


def field_default(model: type[BaseModel], key: str, parent_default: BaseModel | None) -> Any:
    if parent_default is not None:
        return getattr(parent_default, key)
    field = model.model_fields[key]
    if field.default_factory is not None:
        return field.default_factory()
    return field.default


def compare(model: type[BaseModel], data: dict, path: str, parent_default: BaseModel | None = None):
    """(path, "repeats" | "differs") for every key of `data` that has a default in `model`."""
    for key, value in data.items():
        here = f"{path}{key}"
        field = model.model_fields[key]
        default = field_default(model, key, parent_default)
        sub, entries = model_of(field.annotation), entries_model(field.annotation)
        if isinstance(value, dict) and sub is not None:
            yield from compare(sub, value, f"{here}.", default if isinstance(default, BaseModel) else None)
            continue
        if isinstance(value, dict) and entries is not None:
            given = {} if default is PydanticUndefined else default
            for name, entry in value.items():
                yield from compare(entries, entry, f"{here}.{name}.", given.get(name))
            if set(value) != set(given) and default is not PydanticUndefined:
                yield here, "differs"
            continue
        if default is PydanticUndefined:
            continue
        adapter = TypeAdapter(field.annotation)
        same = adapter.dump_python(adapter.validate_python(value), mode="json") == adapter.dump_python(
            default, mode="json"
        )
        yield here, "repeats" if same else "differs"


def findings() -> dict[str, str]:
    defaults = yaml.safe_load((ROOT / "environments" / "default.yaml").read_text())
    return dict(compare(EnvironmentConfig, defaults, ""))


def test_default_yaml_repeats_no_default_of_the_schema():
    repeated = sorted(path for path, kind in findings().items() if kind == "repeats")
    assert not repeated, f"environments/default.yaml repeats the schema's defaults (remove them): {repeated}"


def test_default_yaml_differs_from_the_schema_only_where_burrow_chooses_so():
    differs = {path for path, kind in findings().items() if kind == "differs"}
    assert differs - set(APPLICATION_CHOICES) == set(), (
        "environments/default.yaml contradicts the schema's default: move the value into the model "
        "(one home), or list it in APPLICATION_CHOICES with the reason Burrow's environments differ"
    )
    assert set(APPLICATION_CHOICES) - differs == set(), "no longer a choice of default.yaml: remove it from the list"


def test_the_comparison_sees_repeats_and_differences_at_any_depth():
    sample = {
        "cluster": {
            "eks": {
                "node_groups": {
                    "core": {
                        "instance_types": ["m6i.large"],
                        "disk_size_gib": 50,
                        "min_size": 1,
                        "max_size": 1,
                        "desired_size": 1,
                    }
                },
                "karpenter": {"consolidate_after": "1m", "expire_after": "Never"},
            }
        },
        "rabbitmq": {"persistence": {"enabled": False}, "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
        "tier": "staging",
    }
    assert dict(compare(EnvironmentConfig, sample, "")) == {
        "cluster.eks.node_groups.core.disk_size_gib": "repeats",
        "cluster.eks.karpenter.consolidate_after": "repeats",
        "cluster.eks.karpenter.expire_after": "differs",
        "rabbitmq.persistence.enabled": "differs",
    }


def two_homes() -> dict[str, tuple[Any, Any]]:
    """`<section>.<field>`: (the schema's default, the props' default) where both define one."""
    from burrow.app.rabbitmq import RabbitMqBrokerProps
    from burrow.app.worker import QueueWorkerProps

    sections = {
        "apps.producer": (ProducerConfig, QueueWorkerProps),
        "apps.consumer": (ConsumerConfig, QueueWorkerProps),
        "rabbitmq": (RabbitMqConfig, RabbitMqBrokerProps),
    }
    found = {}
    for section, (config, props) in sections.items():
        for name, field in config.model_fields.items():
            own = props.model_fields.get(name)
            inherited = issubclass(props, config)
            if own is None or inherited or field.is_required() or own.is_required():
                continue
            found[f"{section}.{name}"] = (
                field.get_default(call_default_factory=True),
                own.get_default(call_default_factory=True),
            )
    return found


def test_the_library_props_and_the_schema_share_no_new_default():
    found = two_homes()
    assert set(found) - TWO_HOMES == set(), f"a default held by both the schema and the props: {found}"
    assert TWO_HOMES - set(found) == set(), "one home now: remove it from TWO_HOMES"
