"""Dataset recipes: a public dataset's official annotation files, as published, → manifest rows.

A recipe turns what the dataset's authors distribute (its videos as unpacked, its list or CSV files
byte for byte) into `manifest.Entry` rows (path, label, split, start, end; no captions) and the rows
it cannot use into `manifest.Problem`s, exactly as `manifest.read_manifest` does, and nothing else:
`prepare` does the rest. One module per dataset, each with a one-line `DESCRIPTION`, the official
split numbers it takes (`SPLIT_NUMBERS`, empty for datasets with one split) and
`read(root[, split]) -> (entries, problems)`. `datasets/README.md` says per dataset where it comes
from, its licence terms and its layout.

Example:

>>> names()
['ucf101', 'hmdb51', 'kinetics', 'vggsound', 'ave']
>>> entries, problems = read("ucf101", "/data/UCF101", split=2)  # doctest: +SKIP
"""

from typing import List, Optional, Tuple

from videofusion import fileio
from videofusion.ingest import manifest
from videofusion.ingest.recipes import ave, hmdb51, kinetics, ucf101, vggsound
from videofusion.ingest.recipes.common import RecipeError

RECIPES = {"ucf101": ucf101, "hmdb51": hmdb51, "kinetics": kinetics, "vggsound": vggsound, "ave": ave}
LIST = "list"  # `--recipe list` prints `describe()`


def names() -> List[str]:
    return list(RECIPES)


def describe() -> str:
    """One line per recipe: its name, then what it reads."""
    return "\n".join(f"{name:<10} {module.DESCRIPTION}" for name, module in RECIPES.items())


def read(name: str, root: Optional[str],
         split: Optional[int] = None) -> Tuple[List[manifest.Entry], List[manifest.Problem]]:
    """(entries, problems) of recipe `name` over the dataset at `root`, official split `split` where the
    dataset has several (its first by default).

    Raises:
      RecipeError: an unknown recipe, a missing root, a split the dataset does not have, or annotation
        files that are missing or malformed.
    """
    if name not in RECIPES:
        raise RecipeError(f"unknown recipe {name!r}; the recipes are {', '.join(RECIPES)} (--recipe {LIST})")
    if not root or not fileio.isdir(root):
        raise RecipeError(f"--recipe {name} needs --root, the folder holding the dataset"
                          + (f"; {root} is not a folder" if root else ""))
    module = RECIPES[name]
    if split is None:
        return module.read(root)
    if split not in module.SPLIT_NUMBERS:
        choices = ", ".join(map(str, module.SPLIT_NUMBERS))
        raise RecipeError(f"{name} has official splits {choices}, not {split}" if choices
                          else f"{name} has one official split: drop --split")
    return module.read(root, split=split)
