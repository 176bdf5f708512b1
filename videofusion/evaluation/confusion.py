"""Confusion matrices: counted from labels and predictions, and drawn as an RGB image (OpenCV).

The same picture goes to `WORKDIR/eval/<split>/confusion_matrix.png` (`videofusion evaluate`) and to
TensorBoard's image tab at each validation (`dashboards.py`). Rows are true classes, columns predicted
ones; each cell is shaded by its share of the row (recall), with its count written in it.

Example:

>>> matrix = confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), num_classes=2)
>>> matrix.tolist()
[[1, 0], [1, 1]]
>>> render(matrix, ["cat", "dog"]).dtype
dtype('uint8')
"""

from typing import Sequence

import cv2
import numpy as np

_CELL = 28  # pixels per cell, at least (wider when a count needs it)
_SCALE = 0.35  # font scale of class names and counts
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_HEADER, _HEADER_SCALE = "true \\ predicted", 0.4
_HEADER_HEIGHT = 20  # the header line, above the column names


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """`[num_classes, num_classes]` int64 counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return matrix


def _width(text: str, scale: float = _SCALE) -> int:
    return cv2.getTextSize(text, _FONT, scale, 1)[0][0]


def _text(image, text: str, origin, scale: float, colour) -> None:
    cv2.putText(image, text, origin, _FONT, scale, colour, 1, cv2.LINE_AA)


def render(matrix: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """`matrix` as an RGB uint8 image: a blue-shaded grid with counts, class names on both axes.

    The sizes follow the text: the margins fit the longest class name, a cell fits the largest count.
    """
    n = len(labels)
    margin = 12 + max((_width(label) for label in labels), default=0)  # room for the longest class name
    cell = max(_CELL, 6 + max((_width(str(int(count))) for count in np.ravel(matrix)), default=0))
    top = _HEADER_HEIGHT + margin  # the header, then the column names written upwards, then the grid
    width = max(margin + n * cell + 8, 8 + _width(_HEADER, _HEADER_SCALE))
    image = np.full((top + n * cell + 8, width, 3), 255, np.uint8)
    _text(image, _HEADER, (4, 14), _HEADER_SCALE, (0, 0, 0))
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    for i in range(n):
        _text(image, labels[i], (4, top + i * cell + cell // 2 + 4), _SCALE, (0, 0, 0))
        strip = np.full((cell, margin - 8, 3), 255, np.uint8)  # the column's name, written, then turned upright
        _text(strip, labels[i], (2, cell // 2 + 4), _SCALE, (0, 0, 0))
        image[_HEADER_HEIGHT:top - 8, margin + i * cell:margin + (i + 1) * cell] = np.rot90(strip)
        for j in range(n):
            shade = int(255 * (1 - 0.8 * share[i, j]))
            y, x = top + i * cell, margin + j * cell
            image[y:y + cell - 1, x:x + cell - 1] = (shade, shade, 255)
            count = str(int(matrix[i, j]))
            colour = (255, 255, 255) if share[i, j] > 0.6 else (0, 0, 0)
            _text(image, count, (x + (cell - 1 - _width(count)) // 2, y + cell // 2 + 4), _SCALE, colour)
    return image


def write_png(path: str, image: np.ndarray) -> None:
    """Writes an RGB image to `path` as PNG."""
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
