"""PNG figures written next to results (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_action_space(space, coords: np.ndarray, groups: list[str], path: Path) -> None:
    """Explained-variance curve per slot (each up to its own K), and slot 0's phrases on the first two components
    coloured by group."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    ks = space.slot_components
    for slot, (evr, k) in enumerate(zip(space.explained_variance_ratio.numpy(), ks)):
        ax1.plot(np.arange(1, k + 1), np.cumsum(evr[:k]), marker="." if k <= 40 else None,
                 label=f"slot {slot}: K={k}")
    ax1.set(xlabel="components", ylabel="cumulative explained variance",
            title=f"Common action space (K per slot = {ks})", ylim=(0, 1.02))
    ax1.legend()
    for group in sorted(set(groups)):
        mask = np.array([g == group for g in groups])
        ax2.scatter(coords[mask, 0], coords[mask, 1], s=8, alpha=0.7, label=group)
    ax2.set(xlabel="PC 1", ylabel="PC 2", title="Phrases (slot 0 word piece)")
    ax2.legend(markerscale=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
