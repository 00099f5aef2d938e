"""The shape of the `burrow` package, read from its source (nothing is imported): no import cycles, and
dependencies that point from the application to the library, never back.

The library is what another team builds a stack from: constructs, their props, policy, objects. The
application is what turns Burrow's own environment files into those constructs: the environment
schema and loader (`burrow.config`), the stacks bound to an environment (`burrow.stacks`), the build
of an environment (`burrow.environment`), `main.py`'s synth (`burrow.synth`), previews and the GitOps
export. Today's library modules that still import the application are listed below, name by name;
the list may only shrink.
"""

from __future__ import annotations

import textwrap

from tests.support.imports import cycles, graph, imports, packages, tangles

APPLICATION = (
    "burrow.config",
    "burrow.environment",
    "burrow.synth",
    "burrow.previews",
    "burrow.gitops",
    "burrow.stacks",
)

#: What each library module still imports from the application: `module.name`, or a whole module.
#: Remove an entry when its import goes (the test says so); never add one: give the library the type
#: (or the parameter) instead.
LIBRARY_IMPORTS_OF_THE_APPLICATION = {
    # The lazy exports: the application's names are exported beside the library's.
    "burrow": {
        "burrow.config.loader",
        "burrow.config.schema",
        "burrow.environment",
        "burrow.stacks.addons",
        "burrow.stacks.app",
        "burrow.stacks.aws",
        "burrow.stacks.base",
        "burrow.stacks.global_",
    },
    # Props types that live in the environment schema: move each to the library, the schema imports it.
    "burrow.addons.flux": {"burrow.config.schema.GitOpsConfig"},
    "burrow.addons.karpenter": {"burrow.config.schema.KarpenterConfig"},
    "burrow.addons.monitoring": {"burrow.config.schema.MonitoringConfig"},
    "burrow.addons.storage": {"burrow.config.checks.GP3"},
    "burrow.addons.velero": {"burrow.config.schema.BackupScheduleConfig", "burrow.config.schema.BackupsConfig"},
    "burrow.app.broker_users": {"burrow.config.schema.MessagingConfig"},
    "burrow.app.federation": {"burrow.config.schema.MessagingConfig", "burrow.config.schema.Model"},
    "burrow.app.namespace": {"burrow.config.schema.NamespaceQuota"},
    "burrow.app.rabbitmq": {"burrow.config.schema.MessagingConfig", "burrow.config.schema.RabbitMqConfig"},
    "burrow.app.worker": {
        "burrow.config.schema.AlertThresholds",
        "burrow.config.schema.CpuAutoscalingConfig",
        "burrow.config.schema.Image",
        "burrow.config.schema.MessagingConfig",
        "burrow.config.schema.QueueAutoscalingConfig",
        "burrow.config.schema.Resources",
    },
    "burrow.cluster.eks": {"burrow.config.schema.ApiAccessConfig", "burrow.config.schema.EksClusterConfig"},
    "burrow.common.network": {"burrow.config.schema.NetworkConfig"},
    "burrow.monitoring.objects": {"burrow.config.schema.AlertReceiver"},
    "burrow.monitoring.rules": {"burrow.config.schema.AlertThresholds"},
    "burrow.policy.guardrails": {"burrow.config.schema.Tier"},
}


def is_application(module: str) -> bool:
    return any(module == part or module.startswith(f"{part}.") for part in APPLICATION)


def library_imports_of_the_application() -> dict[str, set[str]]:
    found = {}
    for module, imported in imports().items():
        names = {f"{target}.{name}" if name else target for target, name in imported if is_application(target)}
        if names and not is_application(module):
            found[module] = names
    return found


def show(edges: dict[str, set[str]]) -> str:
    """One line per tangle: a cycle through it, and the other members tangled in."""
    lines = []
    for cycle, group in zip(cycles(edges), tangles(edges), strict=True):
        others = sorted(group - set(cycle))
        lines.append(" -> ".join(cycle) + (f" (tangled with it: {', '.join(others)})" if others else ""))
    return "\n".join(lines)


def test_no_module_of_burrow_imports_itself_back():
    """Deferred imports (inside a function) and `TYPE_CHECKING` imports count: they still tie the modules."""
    edges = graph()
    assert not tangles(edges), f"import cycles between modules:\n{show(edges)}"


def test_no_part_of_burrow_imports_itself_back():
    """Between the package's parts (`burrow.common` and `burrow.cluster`, `burrow.config` and
    `burrow.k8s`, ...): the common layer never reaches into the cluster layer for a helper."""
    edges = packages(graph())
    assert not tangles(edges), f"import cycles between parts of the package:\n{show(edges)}"


def test_the_library_imports_nothing_new_from_the_application():
    found = library_imports_of_the_application()
    new = {
        module: sorted(names - LIBRARY_IMPORTS_OF_THE_APPLICATION.get(module, set()))
        for module, names in found.items()
        if names - LIBRARY_IMPORTS_OF_THE_APPLICATION.get(module, set())
    }
    assert not new, (
        "library modules import the application (environment schema, loader, stacks bound to an "
        f"environment, synth): {new}; pass the library what it needs as props instead"
    )
    gone = {
        module: sorted(names - found.get(module, set()))
        for module, names in LIBRARY_IMPORTS_OF_THE_APPLICATION.items()
        if names - found.get(module, set())
    }
    assert not gone, f"these imports are gone: remove them from LIBRARY_IMPORTS_OF_THE_APPLICATION: {gone}"


def test_no_library_module_takes_the_whole_environment():
    found = [
        module
        for module, names in library_imports_of_the_application().items()
        if "burrow.config.schema.EnvironmentConfig" in names
    ]
    assert found == []


def test_the_graph_counts_deferred_relative_typing_and_lazy_imports(tmp_path):
    package = tmp_path / "pkg"
    files = {
        "__init__.py": """
            import importlib
            _EXPORTS = {"Thing": "pkg.sub.b"}
            def __getattr__(name):
                return importlib.import_module(_EXPORTS[name])
        """,
        "a.py": "def later():\n    from pkg.sub import b\n",
        "sub/__init__.py": "",
        "sub/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..c import C\n",
        "c.py": "from pkg.a import later\n",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(textwrap.dedent(text))
    edges = graph(package)
    assert edges["pkg"] == {"pkg.sub", "pkg.sub.b"}
    assert cycles(edges) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    assert cycles(packages(edges)) == [["pkg.a", "pkg.sub", "pkg.c", "pkg.a"]]
