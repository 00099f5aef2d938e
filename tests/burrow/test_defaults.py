"""Each default has one home: the props and schema models hold the defaults, `environments/default.yaml`
only what they require or what Burrow's environments choose differently, each choice with its reason."""

from __future__ import annotations

import inspect
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


def declared_by(model: type[BaseModel], name: str) -> type:
    """The class of `model`'s hierarchy that declares field `name`."""
    return next(klass for klass in model.__mro__ if name in inspect.get_annotations(klass))


def shared_defaults() -> dict[str, str]:
    """`<section>.<field>`: where the default lives, for every field that both an environment section
    and the library's props of its construct give a default: "library" when the schema takes the
    field from a library model the props derive from too, "preset" when the schema's default is the
    very object Burrow's preset passes, "two homes" otherwise."""
    from burrow.app.rabbitmq import RabbitMqBrokerProps
    from burrow.app.worker import CONSUMER, PRODUCER, QueueWorkerProps

    sections = {
        "apps.producer": (ProducerConfig, QueueWorkerProps, PRODUCER),
        "apps.consumer": (ConsumerConfig, QueueWorkerProps, CONSUMER),
        "rabbitmq": (RabbitMqConfig, RabbitMqBrokerProps, {}),
    }
    found = {}
    for section, (config, props, preset) in sections.items():
        for name, field in config.model_fields.items():
            own = props.model_fields.get(name)
            if own is None or field.is_required() or own.is_required():
                continue
            if declared_by(config, name) is declared_by(props, name):
                found[f"{section}.{name}"] = "library"
            elif name in preset and field.default is preset[name]:
                found[f"{section}.{name}"] = "preset"
            else:
                found[f"{section}.{name}"] = "two homes"
    return found


def test_each_default_the_schema_shares_with_the_props_has_its_home_in_the_library():
    """The schema declares no default of its own for a field the props have: it inherits the field
    from the library's model (`WorkerScaling`, `RabbitMqConfig`) that the props inherit without
    redeclaring, or takes the preset's own object, so the two cannot disagree."""
    found = shared_defaults()
    assert {path for path, home in found.items() if home == "two homes"} == set(), found
    assert {"apps.producer.replicas", "apps.consumer.replicas"} <= {p for p, h in found.items() if h == "library"}
    assert {p for p, h in found.items() if h == "preset"} == {"apps.producer.autoscaling", "apps.consumer.autoscaling"}


def test_an_environment_worker_and_the_preset_get_the_same_defaults():
    """What an environment leaves unset is what the library's preset would do anyway."""
    from burrow.app.worker import CONSUMER, PRODUCER, QueueWorkerProps

    required = {
        "image": {"registry": "ghcr.io", "repository": "burrow/worker", "tag": "1.0.0"},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    }
    binding = {"messaging": {"exchange": "e", "queue": "q", "routing_key": "k"}}
    for config, preset in ((ProducerConfig, PRODUCER), (ConsumerConfig, CONSUMER)):
        environment = config.model_validate(required)
        library = QueueWorkerProps.model_validate({**preset, **required, **binding})
        assert (environment.replicas, environment.autoscaling) == (library.replicas, library.autoscaling)
