"""Sample-quality metrics computed from feature arrays.

Each function takes features as numpy arrays or torch tensors of shape (N, D) (any float
dtype, any device), works in float64, and returns Python floats or small named tuples:

    from gankit.metrics import fid, kid, inception_score, precision_recall, density_coverage
    fid(real_feats, fake_feats)                        # float
    kid(real_feats, fake_feats)                        # KIDResult(mean, std)
    inception_score(class_probs)                       # ISResult(mean, std)
    precision_recall(real_feats, fake_feats, k=3)      # PrecisionRecall(precision, recall)
    density_coverage(real_feats, fake_feats, k=5)      # DensityCoverage(density, coverage)

The lecture's other evaluation ideas live beside them: Parzen-window likelihood
(``parzen``), toy and stacked mode counting (``modes``), memorisation checks
(``memorization``) and the birthday-paradox support estimate (``birthday``); feature
extractors are in ``features`` and ``gankit eval`` glue in ``evaluate``.

Bad input (NaN/inf, mismatched feature dimensions, too few samples, wrong shape) raises
``ValueError`` with a message saying what to change.
"""
from .fid import feature_stats, fid, fid_from_stats, trace_sqrt_product
from .inception_score import ISResult, inception_score
from .kid import KIDResult, kid, mmd2_unbiased
from .prdc import DensityCoverage, PrecisionRecall, density_coverage, knn_radii, precision_recall
from .parzen import parzen_evaluate, parzen_log_likelihood, parzen_select_sigma
from .modes import conditional_accuracy, stack_images, stacked_labels, stacked_modes, toy_mode_stats
from .memorization import memorization_report, nearest_neighbours, save_neighbours_figure
from .birthday import birthday_test

__all__ = [
    "fid", "fid_from_stats", "feature_stats", "trace_sqrt_product",
    "kid", "mmd2_unbiased", "KIDResult",
    "inception_score", "ISResult",
    "precision_recall", "PrecisionRecall",
    "density_coverage", "DensityCoverage", "knn_radii",
    "parzen_evaluate", "parzen_log_likelihood", "parzen_select_sigma",
    "toy_mode_stats", "stacked_modes", "stack_images", "stacked_labels", "conditional_accuracy",
    "nearest_neighbours", "memorization_report", "save_neighbours_figure", "birthday_test",
]
