"""The folder tree is the architecture: one folder per stage, imports one way (../shared/GUIDE.md §1).

Units are the stage folders and the package root's modules. An import from one unit into another is an
edge (imports inside functions count: they run too); the edges form no circle, `contract` imports no
other stage, `ingest` only `contract`, and every test-covered module is imported by a test.
"""

import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "videofusion")
STAGES = ("contract", "ingest", "data", "models", "training", "evaluation", "serving")
# Package-root modules beneath every stage: config, file and progress helpers, the run folder, the version.
ROOT_UTILITIES = ("videofusion", "config", "fileio", "progress", "run_folder")


def _modules() -> dict:
    """{dotted module name: path} of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
                found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: str, modules) -> set:
    """The package's modules that the file at `path` imports (at module level or inside functions)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.startswith("videofusion"):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("videofusion")}
    return found


def unit(module: str) -> str:
    """`videofusion.ingest.recipes.ucf101` → `ingest`; `videofusion.config` → `config`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def unit_edges() -> dict:
    """{unit: the other units it imports}."""
    modules = _modules()
    edges = {unit(m): set() for m in modules}
    for module, path in modules.items():
        edges[unit(module)] |= {unit(t) for t in _imports(path, modules)} - {unit(module)}
    return edges


def layers(edges: dict) -> dict:
    """{unit: 1 + the highest layer it imports} (0 for a unit that imports none); raises on a circle."""
    found = {}

    def layer(name, path=()):
        if name in path:
            raise AssertionError(f"import circle: {' → '.join(path + (name,))}")
        if name not in found:
            found[name] = 1 + max((layer(t, path + (name,)) for t in edges[name]), default=-1)
        return found[name]

    for name in edges:
        layer(name)
    return found


def test_units_are_the_stages_and_the_root_modules():
    assert set(unit_edges()) == set(STAGES) | set(ROOT_UTILITIES) | {"cli"}


def test_imports_between_units_form_no_circle_and_follow_the_stages():
    edges = unit_edges()
    depth = layers(edges)
    assert edges["contract"] <= {"fileio"}
    assert edges["ingest"] <= {"contract", "fileio", "progress", "videofusion"}
    for name in ROOT_UTILITIES:
        assert edges[name] <= set(ROOT_UTILITIES) | {"contract"}, f"{name} imports {edges[name]}"
    # A stage sits above what it reads: data above contract, models above data's contract, and so on.
    assert depth["contract"] < depth["ingest"] < depth["serving"]
    assert depth["data"] < depth["training"] and depth["models"] < depth["evaluation"] < depth["training"]
    assert depth["cli"] == max(depth.values())


def test_every_stage_says_what_it_takes_in_and_gives_out():
    for stage in STAGES:
        with open(os.path.join(PACKAGE, stage, "__init__.py"), encoding="utf-8") as f:
            doc = ast.get_docstring(ast.parse(f.read())) or ""
        assert "In:" in doc and "Out:" in doc, f"videofusion/{stage}/__init__.py's docstring"


@pytest.mark.parametrize("module", ["videofusion.models", "videofusion.ingest.prepare",
                                    "videofusion.training.compilation_cache"])
def test_models_and_ingest_load_without_tensorflow(module):
    """Models run under JAX on machines without TensorFlow (bench_accelerator's GPU rows, with the
    compilation cache); prepare's workers start without it."""
    code = f"import sys, {module}; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.stdout.strip() == "False"


def test_every_module_is_imported_by_a_test():
    modules = _modules()
    tests = os.path.dirname(os.path.abspath(__file__))
    imported = set()
    for name in os.listdir(tests):
        if name.endswith(".py"):
            imported |= _imports(os.path.join(tests, name), modules)
    packages = {m for m, path in modules.items() if path.endswith("__init__.py")}
    untested = sorted(set(modules) - packages - imported)
    assert not untested, f"no test imports {untested}"
