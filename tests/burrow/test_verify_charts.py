"""`make verify-charts` (burrow_tools.charts) finds what Helm would silently ignore or refuse.

The real third-party charts cannot be pulled here (no chart repository is reachable), so these
tests run the same code on a small chart written by the test, with the real Helm."""

from __future__ import annotations

import textwrap

import pytest

from burrow.pins import RABBITMQ, pin_of
from burrow_tools.charts import (
    ChartRelease,
    chart_releases,
    crd_schemas,
    custom_resource_problems,
    pin_problem,
    unknown_keys,
    verify,
)

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: demo\nversion: 1.2.3\n",
    "values.yaml": "replicas: 1\npodDisruptionBudget:\n  enabled: false\npodAnnotations: {}\n",
    "templates/deployment.yaml": textwrap.dedent(
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: demo}
        spec:
          replicas: {{ .Values.replicas }}
          selector: {matchLabels: {app: demo}}
          template:
            metadata: {labels: {app: demo}, annotations: {{ toJson .Values.podAnnotations }}}
            spec:
              containers:
                - name: demo
                  image: demo:1
        """
    ),
}


@pytest.fixture
def chart(tmp_path):
    for name, text in CHART.items():
        (tmp_path / "demo" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "demo" / name).write_text(text)
    return tmp_path / "demo"


def release(values: dict, namespace: str = "burrow-qa") -> ChartRelease:
    return ChartRelease("qa-addons", "demo", namespace, "https://charts.example", "demo", "1.2.3", [values])


def test_unknown_keys_are_found_and_free_form_maps_are_not(chart, helm, tmp_path):
    checked = release({"replica": 2, "podDisruptionBudget": {"enable": True}, "podAnnotations": {"a": "b"}}, "tools")
    verify(checked, chart, helm, tmp_path)
    assert checked.problems == ["values[0]: unknown key replica", "values[0]: unknown key podDisruptionBudget.enable"]


def test_pods_in_the_app_namespace_must_meet_restricted(chart, helm, tmp_path):
    checked = release({"replicas": 2})
    verify(checked, chart, helm, tmp_path)
    assert "Deployment/-/demo: container demo: set allowPrivilegeEscalation: false" in checked.problems


def test_a_render_error_is_reported(chart, helm, tmp_path):
    (chart / "templates" / "broken.yaml").write_text("{{ .Values.nothing.deeper }}\n")
    checked = release({}, "tools")
    verify(checked, chart, helm, tmp_path)
    assert checked.problems and checked.problems[0].startswith("helm template failed")


def test_every_third_party_release_is_found_with_its_pin(synthesized):
    found = {(r.chart, r.version) for r in chart_releases(synthesized.outdir)}
    assert {c for c, _ in found} == {"rabbitmq", "metrics-server", "keda", "kube-prometheus-stack", "loki", "alloy",
                                     "external-secrets", "karpenter-crd", "karpenter", "velero", "flux2",
                                     "aws-load-balancer-controller", "external-dns", "cert-manager"}
    assert ("rabbitmq", "16.0.14") in found
    for chart, version in found:  # every chart is installed at its pin in burrow.pins
        assert pin_of(chart) is not None and pin_of(chart).version == version, chart


def test_a_chart_without_a_pin_fails_and_an_overridden_pin_is_noted():
    unpinned = release({})
    pin_problem(unpinned)
    assert unpinned.problems == ["chart demo has no pin in constructs/burrow/pins.py"]
    broker = ChartRelease("qa-app", "rabbitmq", "burrow-qa", RABBITMQ.repository, "rabbitmq", "16.0.13", [])
    pin_problem(broker)
    assert broker.problems == [] and broker.notes == [f"the pin is {RABBITMQ.repository} 16.0.14; this release overrides it"]


def test_unknown_keys_walks_nested_mappings():
    assert unknown_keys({"a": {"b": 1, "c": {"d": 1}}}, {"a": {"b": 0, "c": {"e": 0}}}) == ["a.c.d"]
    assert unknown_keys({"free": {"anything": 1}}, {"free": {}}) == []


def test_an_undeclared_key_the_chart_reads_is_noted_not_failed(chart, helm, tmp_path):
    (chart / "values.yaml").write_text(CHART["values.yaml"] + "config:\n  level: info\n")
    (chart / "templates" / "config.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo}\ndata:\n  config.yaml: {{ toYaml .Values.config | quote }}\n"
    )
    checked = release({"config": {"retention": "7d", "levle": "debug"}}, "tools")
    verify(checked, chart, helm, tmp_path)
    # both keys reach the ConfigMap through toYaml, so neither is ignored by Helm
    assert checked.problems == []
    assert [n for n in checked.notes if "ChartKinds" not in n] == [
        "values[0]: config.retention is not in values.yaml but the chart reads it",
                             "values[0]: config.levle is not in values.yaml but the chart reads it"]


def test_a_generated_secret_does_not_hide_an_ignored_key(chart, helm, tmp_path):
    (chart / "templates" / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: demo}\nstringData: {password: {{ randAlphaNum 16 | quote }}}\n"
    )
    checked = release({"replica": 2}, "tools")
    verify(checked, chart, helm, tmp_path)
    assert checked.problems == ["values[0]: unknown key replica"]


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget", "plural": "widgets"},
        "scope": "Cluster",
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                "spec": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
                }},
            },
        }}}],
    },
}


def widget(spec: dict) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def test_custom_resources_are_checked_strictly_against_the_charts_crds(tmp_path):
    import yaml

    (tmp_path / "objects").mkdir()
    objects = [widget({"size": 2, "free": {"anything": 1}}), widget({"size": 0, "colour": "red"}),
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}]
    (tmp_path / "objects" / "qa.yaml").write_text(yaml.safe_dump_all(objects))
    checked, problems = custom_resource_problems(tmp_path, crd_schemas([WIDGET_CRD]))
    assert checked == 2  # the ConfigMap has no CRD here
    assert problems == [
        "objects/qa.yaml: Widget/-/w: spec: Additional properties are not allowed ('colour' was unexpected)",
        "objects/qa.yaml: Widget/-/w: spec.size: 0 is less than the minimum of 1",
    ]


def test_what_a_chart_renders_is_checked_against_its_declaration(chart, helm, tmp_path):
    from burrow.addons.kinds import ChartKinds

    (chart / "templates" / "monitor.yaml").write_text(
        "{{- if .Values.monitor }}\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: demo}\n"
        "{{- end }}\n"
    )
    (chart / "values.yaml").write_text(CHART["values.yaml"] + "monitor: false\n")
    right = ChartKinds(chart="demo", kinds=(("apps/v1", "Deployment"),),
                       when={"monitor": (("monitoring.coreos.com/v1", "ServiceMonitor"),)})
    for monitor in (False, True):
        checked = release({"monitor": monitor}, "tools")
        verify(checked, chart, helm, tmp_path, {"demo": right})
        assert checked.problems == []
    wrong = ChartKinds(chart="demo", kinds=(("apps/v1", "Deployment"), ("v1", "Service")))
    checked = release({"monitor": True}, "tools")
    verify(checked, chart, helm, tmp_path, {"demo": wrong})
    assert checked.problems == [
        "renders monitoring.coreos.com/v1 ServiceMonitor, which its ChartKinds declaration does not list",
        "its ChartKinds declaration lists v1 Service, which it does not render with these values",
    ]


def test_a_chart_without_a_declaration_is_noted(chart, helm, tmp_path):
    checked = release({}, "tools")
    verify(checked, chart, helm, tmp_path, {})
    assert checked.notes == ["no ChartKinds declaration for chart demo: `make rehearse` cannot judge it"]
