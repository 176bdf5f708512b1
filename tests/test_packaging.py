"""`pip install .` alone gives a working package: every third-party module the package imports comes
from a distribution that setup.py requires, at the version requirements.txt pins."""

import ast
import importlib.metadata
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _imported_top_level_modules() -> tuple:
    """(modules imported at module level, modules imported only inside functions) by the package."""
    eager, lazy = set(), set()
    for folder, _, files in os.walk(os.path.join(REPO, "videofusion")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    tree = ast.parse(f.read())
                in_functions = {id(node) for function in ast.walk(tree)
                                if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                                for node in ast.walk(function)}
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        found = {alias.name.split(".")[0] for alias in node.names}
                    elif isinstance(node, ast.ImportFrom) and node.level == 0:
                        found = {node.module.split(".")[0]}
                    else:
                        continue
                    (lazy if id(node) in in_functions else eager).update(found)
    ignored = set(sys.stdlib_module_names) | {"videofusion"}
    return eager - ignored, lazy - eager - ignored


def _extras() -> dict:
    """`{extra: {distribution: version}}` of setup.py's extras_require."""
    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
        block = re.search(r"extras_require=\{(.*?)\n    \}", f.read(), re.S).group(1)
    return {extra: dict(re.findall(r'"([A-Za-z0-9_.\-]+)(?:\[[a-z0-9,]+\])?==([^"]+)"', pins))
            for extra, pins in re.findall(r'"([a-z]+)": \[((?:[^\[\]]|\[[^\]]*\])*)\]', block)}


def _install_requires() -> dict:
    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
        source = f.read()
    block = re.search(r"install_requires=\[(.*?)\]", source, re.S).group(1)
    return dict(re.findall(r'"([A-Za-z0-9_.\-]+)==([^"]+)"', block))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_distribution_is_required_and_pinned_as_in_requirements():
    required = {_normalise(name): version for name, version in _install_requires().items()}
    pinned = {}
    with open(os.path.join(REPO, "requirements.txt"), encoding="utf-8") as f:
        for line in f:
            if "==" in line and not line.startswith("#"):
                name, version = line.strip().split("==")
                pinned[_normalise(name)] = version
    distributions = importlib.metadata.packages_distributions()
    eager, lazy = _imported_top_level_modules()
    missing = {module: distributions.get(module) for module in eager
               if not any(_normalise(d) in required for d in distributions.get(module, []))}
    assert missing == {}, f"imported by videofusion but not in setup.py's install_requires: {missing}"
    assert {name: version for name, version in required.items() if pinned.get(name) != version} == {}


def _from_extra_named_after(module: str, extras: dict, distributions: dict) -> bool:
    """Whether an extra whose name is part of `module`'s pins its distribution (apache_beam: `beam`)."""
    names = {_normalise(d) for d in distributions.get(module, [module])}  # not installed: its own name
    return any(extra in module and names & {_normalise(d) for d in pins} for extra, pins in extras.items())


def test_a_module_imported_only_inside_functions_is_required_or_an_extra_named_after_it():
    """e.g. `jax`, imported only under the JAX backend: `pip install videofusion[jax]`; `apache_beam`, only
    by the Beam runner: `pip install videofusion[beam]`."""
    required = {_normalise(name) for name in _install_requires()}
    extras = _extras()
    distributions = importlib.metadata.packages_distributions()
    _, lazy = _imported_top_level_modules()
    unprovided = {module for module in lazy
                  if not any(_normalise(d) in required for d in distributions.get(module, []))
                  and not _from_extra_named_after(module, extras, distributions)}
    assert unprovided == set(), f"imported lazily but neither required nor an extra of its own: {unprovided}"
