"""The architecture, checked: no import loop in ``src/auditml``, one audit orchestrator, and an
audit that computes while its callers draw.

The import graph is built with ``ast`` from every ``import``/``from ... import`` in every module,
including imports inside functions (a lazy import still ties two modules together). An edge
goes to the module named; ``from package import name`` goes to the submodule when ``name`` is
one, else to the package.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "auditml"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    edges.add(child if child in modules else node.module)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_loop() -> None:
    graph = import_graph()
    assert len(graph) > 50 and graph["auditml.audit.runner"]  # the graph was really built
    cycle = find_cycle(graph)
    assert cycle is None, "import loop: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_planted_loop() -> None:
    graph = import_graph()
    assert "auditml.records" in graph["auditml.run_directory"]
    graph["auditml.records"] = graph["auditml.records"] | {"auditml.run_directory"}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert "auditml.records" in cycle and "auditml.run_directory" in cycle


def test_lower_layers_never_import_the_pipeline() -> None:
    graph = import_graph()
    lower = ("auditml.config", "auditml.records", "auditml.run_directory", "auditml.metrics",
             "auditml.data", "auditml.models", "auditml.training", "auditml.attacks",
             "auditml.figures", "auditml.figure_data")
    for module, edges in graph.items():
        if module.startswith(lower):
            wrong = sorted(e for e in edges if e.startswith(("auditml.audit", "auditml.api",
                                                             "auditml.cli", "auditml.reporting")))
            assert not wrong, f"{module} imports {wrong}"


def _external_imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``import a.b`` and ``from a.b import c`` give ``a.b``), at
    any level: a lazy import inside a function counts, as in :func:`import_graph`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _within(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def _module_names_in_strings(path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules ``path`` names in a string constant that is exactly a module's name: a lazy
    registry (``register_lazy``, ``lazy_attributes``) imports those by name."""
    return {node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value in modules}


def audit_imports_of_drawing_or_reporting(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} -> {edge}" for module, edges in graph.items()
                  if _within(module, "auditml.audit")
                  for edge in edges if _within(edge, "auditml.figures", "auditml.reporting"))


def test_the_audit_never_draws_nor_imports_reporting() -> None:
    # The audit computes and writes the run directory; reports read it; figures are drawn by
    # the audit's callers (the CLI, the API's save, the sweep) with what the audit computed
    # (auditml.figure_data). What the audit and the reports both need (the VIOLATION rule)
    # lives below both (auditml.metrics.dp.violation). A lazy import inside a function, or a
    # module named to a lazy registry, counts.
    modules = _modules()
    graph = {name: edges | _module_names_in_strings(modules[name], modules)
             for name, edges in import_graph().items()}
    assert not audit_imports_of_drawing_or_reporting(graph), (
        audit_imports_of_drawing_or_reporting(graph))
    graph["auditml.audit.results"] = graph["auditml.audit.results"] | {"auditml.reporting.verdict"}
    graph["auditml.audit.core"] = graph["auditml.audit.core"] | {"auditml.figures.plots"}
    assert audit_imports_of_drawing_or_reporting(graph) == [
        "auditml.audit.core -> auditml.figures.plots",
        "auditml.audit.results -> auditml.reporting.verdict"]


def test_a_lazy_import_inside_a_function_is_an_edge(tmp_path: Path) -> None:
    # The graph sees what a function imports when it runs, and names given to lazy registries.
    module = tmp_path / "lazy.py"
    module.write_text("def draw():\n    from auditml.figures.plots import png_bytes\n"
                      "REGISTRY = {'gallery': 'auditml.figures.inversion_gallery'}\n")
    modules = _modules()
    assert "auditml.figures.plots" in _external_imports(module)
    assert _module_names_in_strings(module, modules) == {"auditml.figures.inversion_gallery"}


def metrics_violations(graph: dict[str, set[str]], imports: dict[str, set[str]]) -> list[str]:
    """What a metrics module imports that it must not: torch, or the layers above it."""
    wrong = []
    for module, path in _modules().items():
        if not _within(module, "auditml.metrics"):
            continue
        for name in sorted(imports.get(module, _external_imports(path))):
            if _within(name, "torch"):
                wrong.append(f"{module} imports {name}")
        for edge in sorted(graph[module]):
            if _within(edge, "auditml.audit", "auditml.training", "auditml.reporting"):
                wrong.append(f"{module} imports {edge}")
    return wrong


def test_metrics_are_pure_numpy_and_scipy() -> None:
    # (scores, ...) -> numbers: no torch, nothing from the layers that train, audit or report.
    graph = import_graph()
    assert not metrics_violations(graph, {}), metrics_violations(graph, {})
    planted = {"auditml.metrics.roc": {"torch.nn"}}
    graph["auditml.metrics.dp.tradeoff"] = graph["auditml.metrics.dp.tradeoff"] | {
        "auditml.training.dp_sgd"}
    assert metrics_violations(graph, planted) == [
        "auditml.metrics.roc imports torch.nn",
        "auditml.metrics.dp.tradeoff imports auditml.training.dp_sgd"]


def test_importing_the_metrics_loads_no_torch() -> None:
    # Transitively too (a metrics module importing a module that imports torch): only the
    # accounting module's calls load Opacus, and with it torch.
    import subprocess
    import sys

    names = sorted(name for name in _modules() if _within(name, "auditml.metrics"))
    code = (f"import importlib, sys\nfor name in {names!r}: importlib.import_module(name)\n"
            "print(sorted(m for m in ('torch', 'opacus') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]", result.stdout


ACCOUNTING = "auditml.metrics.dp.accounting"


def accountant_importers(imports: dict[str, set[str]]) -> list[str]:
    return sorted(module for module, names in imports.items()
                  if module != ACCOUNTING and any(_within(name, "opacus.accountants")
                                                  for name in names))


def test_one_module_computes_epsilon() -> None:
    # Every ε (and Opacus' private PRV API) goes through auditml.metrics.dp.accounting: no other
    # module imports Opacus' accountants, lazily or not.
    imports = {module: _external_imports(path) for module, path in _modules().items()}
    assert any(_within(name, "opacus.accountants") for name in imports[ACCOUNTING])
    assert accountant_importers(imports) == []
    imports["auditml.training.dp_sgd"] = imports["auditml.training.dp_sgd"] | {
        "opacus.accountants.analysis.rdp"}
    assert accountant_importers(imports) == ["auditml.training.dp_sgd"]
    # Opacus' private names appear in that module alone.
    private = re.compile(r"\._get_dprv\b|\._get_domain\b")
    users = sorted(module for module, path in _modules().items()
                   if private.search(path.read_text(encoding="utf-8")))
    assert users == [ACCOUNTING]


def _files_calling(pattern: str) -> list[str]:
    """The source and benchmark files in which ``pattern`` (a call) occurs."""
    calls = re.compile(pattern)
    roots = [PACKAGE, SOURCE.parent / "benchmarks"]
    return sorted(
        str(path.relative_to(SOURCE.parent))
        for root in roots for path in root.rglob("*.py")
        if calls.search(path.read_text(encoding="utf-8"))
    )


def test_attacks_are_fitted_in_one_place() -> None:
    # The audit core is the only code that fits and scores attacks: the CLI, the Python API and
    # the benchmarks all go through it (no second orchestrator).
    assert _files_calling(r"\battack\w*\.fit\(|\.fit\(target\)") == [
        "src/auditml/audit/core.py"]


def test_every_kind_of_audit_runs_in_one_place() -> None:
    # Canary audits and the audits beyond membership run in the audit core too (run_plan):
    # `auditml audit` and auditml.audit(...) have no loop of their own over any kind.
    assert _files_calling(r"\b\w*audit\w*\.run\(") == ["src/auditml/audit/core.py"]


def test_starting_an_audit_imports_none_of_the_heavy_libraries() -> None:
    # Each of these costs an `auditml audit` 0.3-1 s before any work (issue 11: fixed costs);
    # they are imported where they are used (figures, DP training, canary audits).
    import subprocess
    import sys

    heavy = ("matplotlib", "opacus", "scipy.stats", "scipy.optimize", "sklearn")
    code = (
        "import sys, auditml.cli, auditml.audit.runner; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]", result.stdout


def _plain_digits_config(tmp_path: Path) -> Path:
    """A one-epoch digits run without DP, written to ``tmp_path/config.yaml``."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"experiment_name: plain\noutput_dir: {tmp_path}\n"
        "data: {dataset: digits, train_size: 100, batch_size: 50}\n"
        "training: {epochs: 1, device: cpu}\n"
    )
    return config


def _packages_loaded_by(arguments: list[str], package: str) -> list[str]:
    """The first few modules of ``package`` that ``auditml <arguments>`` loads, in a fresh
    process (asserting that importing the CLI alone loads none)."""
    import subprocess
    import sys

    code = (
        "import sys, auditml.cli\n"
        f"loaded = lambda: [m for m in sys.modules if m.split('.')[0] == {package!r}][:3]\n"
        "assert not loaded(), 'on import'\n"
        f"auditml.cli.main({arguments!r})\n"
        "print(loaded())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_training_without_dp_never_imports_opacus(tmp_path: Path) -> None:
    # Importing Opacus costs ~2 s (issue 11: fixed costs); a run without DP-SGD does not need it.
    config = _plain_digits_config(tmp_path)
    assert _packages_loaded_by(["train", "--config", str(config)], "opacus") == []
    versions = json.loads((tmp_path / "plain" / "metrics.json").read_text())["versions"]
    assert versions["opacus"] == importlib.metadata.version("opacus")


def test_a_threshold_audit_of_a_trained_run_never_imports_torch(tmp_path: Path) -> None:
    # Importing torch is most of an audit's fixed cost (issue 11: <= 2 s); the threshold attack
    # needs only the target's outputs, which training keeps (target_outputs.npz).
    config = _plain_digits_config(tmp_path)
    assert _packages_loaded_by(["train", "--config", str(config)], "torch")  # it trains with it
    audit = ["audit", "--config", str(config), "--attack", "mia_threshold"]
    assert _packages_loaded_by(audit, "torch") == []
    assert (tmp_path / "plain" / "audit" / "mia_threshold.json").is_file()
