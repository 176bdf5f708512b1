"""`pip install .` alone gives a working package: every third-party module the package imports comes
from a distribution that setup.py requires, at the version requirements.txt pins."""

import ast
import importlib.metadata
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _imported_top_level_modules() -> set:
    modules = set()
    for folder, _, files in os.walk(os.path.join(REPO, "videofusion")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    tree = ast.parse(f.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        modules.update(alias.name.split(".")[0] for alias in node.names)
                    elif isinstance(node, ast.ImportFrom) and node.level == 0:
                        modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"videofusion"}


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
    missing = {module: distributions.get(module) for module in _imported_top_level_modules()
               if not any(_normalise(d) in required for d in distributions.get(module, []))}
    assert missing == {}, f"imported by videofusion but not in setup.py's install_requires: {missing}"
    assert {name: version for name, version in required.items() if pinned.get(name) != version} == {}
