"""Pictures of a run: sample grids, scatter plots of toy data, loss curves."""
from .grid import save_samples
from .plots import plot_losses

__all__ = ["save_samples", "plot_losses"]
