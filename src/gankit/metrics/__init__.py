"""Sample-quality metrics computed from feature arrays.

Each function takes features as numpy arrays or torch tensors of shape (N, D) (any float
dtype, any device), works in float64, and returns Python floats or small named tuples:

    from gankit.metrics import fid, kid, inception_score, precision_recall, density_coverage
    fid(real_feats, fake_feats)                        # float
    kid(real_feats, fake_feats)                        # KIDResult(mean, std)
    inception_score(class_probs)                       # ISResult(mean, std)
    precision_recall(real_feats, fake_feats, k=3)      # PrecisionRecall(precision, recall)
    density_coverage(real_feats, fake_feats, k=5)      # DensityCoverage(density, coverage)

Bad input (NaN/inf, mismatched feature dimensions, too few samples, wrong shape) raises
``ValueError`` with a message saying what to change.
"""
from .fid import feature_stats, fid, fid_from_stats, trace_sqrt_product
from .inception_score import ISResult, inception_score
from .kid import KIDResult, kid, mmd2_unbiased
from .prdc import DensityCoverage, PrecisionRecall, density_coverage, knn_radii, precision_recall

__all__ = [
    "fid", "fid_from_stats", "feature_stats", "trace_sqrt_product",
    "kid", "mmd2_unbiased", "KIDResult",
    "inception_score", "ISResult",
    "precision_recall", "PrecisionRecall",
    "density_coverage", "DensityCoverage", "knn_radii",
]
