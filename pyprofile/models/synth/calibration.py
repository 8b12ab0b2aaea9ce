"""Category offsets: the discrete counterpart of the numeric quantile calibration.

The generator emits every categorical column as the argmax of its logits. After training,
:func:`category_offsets` finds one additive offset per category such that, on a large sample
of generated logits, each column's categories come out at their real frequencies. It is the
dual of a transport problem (assign generated rows to categories with fixed totals, keeping
each row's preference as far as possible), solved by Sinkhorn iterations on the softmax at a
temperature lowered step by step towards the argmax; with Gumbel draws the softmax at
temperature 1 *is* the sampling distribution, so no annealing is needed.
"""

from __future__ import annotations

import numpy as np
import torch

FLOOR = 1e-4  # frequencies are compared above this floor (categories absent from a sample)
TEMPERATURES = (1.0, 0.5, 0.25, 0.1, 0.05, 0.02)  # x the logits' spread
ITERATIONS = 12  # Sinkhorn updates per temperature


def category_offsets(
    logits: np.ndarray,
    forced: np.ndarray,
    widths: list[int],
    targets: list[np.ndarray | None],
    *,
    gumbel: bool = False,
) -> np.ndarray:
    """One offset per one-hot column (zero for blocks without a target).

    ``logits`` (rows, one-hot width) are generated logits, ``forced`` (rows, blocks) marks
    the blocks a row had fixed by its condition (left out of that block's fit), ``targets``
    the real frequencies per block."""
    offsets = np.zeros(logits.shape[1])
    start = 0
    for i, (width, target) in enumerate(zip(widths, targets, strict=True)):
        block = slice(start, start + width)
        start += width
        free = ~forced[:, i]
        if target is None or width < 2 or free.sum() < 10:
            continue
        offsets[block] = _block_offsets(logits[free, block], np.asarray(target), gumbel)
    return offsets


def _block_offsets(logits: np.ndarray, target: np.ndarray, gumbel: bool) -> np.ndarray:
    x = torch.as_tensor(logits, dtype=torch.float64)
    t = torch.as_tensor(target, dtype=torch.float64)
    spread = float(x.std()) or 1.0
    b = torch.zeros(x.shape[1], dtype=torch.float64)
    temperatures = (1.0,) if gumbel else tuple(spread * f for f in TEMPERATURES)
    for tau in temperatures:
        for _ in range(ITERATIONS):
            freq = torch.softmax((x + b) / tau, dim=1).mean(0)
            b += tau * (torch.log(t + FLOOR) - torch.log(freq + FLOOR))
    return (b - b.mean()).numpy()
