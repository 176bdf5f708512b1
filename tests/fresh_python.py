"""Runs a script in a fresh Python that can import TensorFlow but none of our packages — as in TF
Serving, whose model server has TensorFlow's core ops and no Python: `videofusion`, `keras`,
`keras_hub`/`keras_nlp` and `tensorflow_text` are not on its `sys.path` at all. The process starts with
`python -I -S` (no PYTHONPATH, no current folder, no site-packages, no `.pth` files) and gets a folder of
links to every installed package except those; the script fails if any of them got imported anyway."""

import os
import re
import subprocess
import sys
import sysconfig
import textwrap

BLOCKED = ("videofusion", "keras", "keras_hub", "keras_nlp", "tensorflow_text", "tf_keras")
_BLOCKED_ENTRY = re.compile(r"^(__editable__[._])?(" + "|".join(BLOCKED) + r")([-_.].*)?$", re.IGNORECASE)

_EPILOGUE = textwrap.dedent(
    f"""
    imported = sorted({{name.split(".")[0] for name in sys.modules}} & set({BLOCKED!r}))
    assert not imported, f"imported: {{imported}}"
    """
)


def tensorflow_only_site(folder: str) -> str:
    """`folder`, filled with links to the site-packages entries of this Python except the blocked ones."""
    site_packages = sysconfig.get_paths()["purelib"]
    os.makedirs(folder, exist_ok=True)
    for entry in os.listdir(site_packages):
        target = os.path.join(folder, entry)
        if not _BLOCKED_ENTRY.match(entry) and not entry.endswith(".pth") and not os.path.lexists(target):
            os.symlink(os.path.join(site_packages, entry), target)
    return folder


def run_with_tensorflow_only(script: str, *args: str, cwd: str) -> subprocess.CompletedProcess:
    """Runs `script` (Python source; `sys.argv[1:]` = `args`) in such a process, in `cwd`."""
    site = tensorflow_only_site(os.path.join(cwd, ".tensorflow_only_site"))
    source = f"import sys\nsys.path.append({site!r})\n" + textwrap.dedent(script) + _EPILOGUE
    return subprocess.run([sys.executable, "-I", "-S", "-c", source, *args], cwd=cwd, capture_output=True, text=True)
