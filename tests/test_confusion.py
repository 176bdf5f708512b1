"""The confusion matrix's picture (videofusion/evaluation/confusion.py): its cells, found from the pixels
alone, are shaded by the matrix's row shares."""

import numpy as np

from videofusion.evaluation import confusion

LABELS = ["cat", "dog", "bird", "fish"]
MATRIX = np.array([
    [4, 0, 0, 0],  # a perfect class
    [1, 2, 1, 0],
    [0, 0, 0, 0],  # no video of this class
    [0, 3, 0, 1],  # mostly taken for a dog: the confusion is not symmetric
])


def _cell_fills(image: np.ndarray, n: int) -> np.ndarray:
    """`[n, n, 3]`: the colour that covers most of each cell of the grid.

    The grid is where the cell shading is: blue at 255, red = green below it (the text is grey or
    white); its first and last cells must be shaded. The cells are squares with a 1-pixel gap.
    """
    shaded = (image[..., 2] == 255) & (image[..., 0] == image[..., 1]) & (image[..., 0] < 255)
    rows, columns = np.nonzero(shaded)
    top, left = rows.min(), columns.min()
    cell = (rows.max() - top + 2) // n
    assert cell == (columns.max() - left + 2) // n, "the grid is not made of square cells"
    fills = np.zeros((n, n, 3), np.int64)
    for i in range(n):
        for j in range(n):
            pixels = image[top + i * cell:top + (i + 1) * cell - 1, left + j * cell:left + (j + 1) * cell - 1]
            colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
            fills[i, j] = colours[counts.argmax()]
    return fills


def test_cells_are_shaded_by_their_share_of_the_row():
    image = confusion.render(MATRIX, LABELS)
    fills = _cell_fills(image, len(LABELS))
    assert (fills[..., 2] == 255).all() and (fills[..., 0] == fills[..., 1]).all()  # shades of blue
    shares = MATRIX / np.maximum(MATRIX.sum(axis=1, keepdims=True), 1)
    np.testing.assert_allclose((1 - fills[..., 0] / 255) / 0.8, shares, atol=0.01)  # white 0, darkest 1
    # The perfect class's diagonal cell has the darkest shade of the grid; the empty row is white.
    assert fills[0, 0].tolist() == fills.min(axis=(0, 1)).tolist() and fills[0, 0, 0] <= 51
    assert (fills[2] == 255).all()
