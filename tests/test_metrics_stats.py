"""gankit.metrics on feature arrays: closed forms, parity with reference libraries, bad input.

The reference implementations (torch-fidelity, pytorch-fid, clean-fid, torchmetrics) are
test-only dependencies; each parity test is skipped, with the reason, when its library is
not installed.
"""
import math
import warnings

import numpy as np
import pytest
import torch

from gankit.metrics import (density_coverage, feature_stats, fid, fid_from_stats, inception_score, kid,
                            knn_radii, mmd2_unbiased, precision_recall)

REL = 1e-6  # parity tolerance (relative); observed differences are ~1e-13


def rel_diff(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


@pytest.fixture(scope="module")
def feats():
    """Two Gaussian feature sets (2000 x 64 and 2200 x 64) with different means and covariances."""
    rng = np.random.default_rng(0)
    d = 64
    a = rng.standard_normal((d, d)) / math.sqrt(d)
    b = rng.standard_normal((d, d)) / math.sqrt(d)
    real = rng.standard_normal((2000, d)) @ a + 0.3
    fake = rng.standard_normal((2200, d)) @ (b + 0.5 * a) + 0.2 * rng.standard_normal(d)
    return real, fake


@pytest.fixture(scope="module")
def small():
    """Small sets for brute-force references and batch-size checks (300 x 8, 350 x 8)."""
    rng = np.random.default_rng(1)
    real = rng.standard_normal((300, 8))
    fake = 0.8 * rng.standard_normal((350, 8)) + 0.4
    return real, fake


def brute_sqdist(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


# ---------------------------------------------------------------------------- FID closed forms


def test_feature_stats_match_numpy(feats):
    real, _ = feats
    mu, sigma = feature_stats(real.astype(np.float32))
    assert mu.dtype == sigma.dtype == np.float64
    x = real.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(mu, x.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=0, atol=1e-12)
    assert np.array_equal(sigma, sigma.T)


def test_fid_equal_covariances_is_squared_mean_distance():
    rng = np.random.default_rng(2)
    # dyadic values and N = 512: sums, means and the shift are exact, so the centred sets and
    # hence the sample covariances are bit-for-bit equal
    x = rng.integers(-64, 64, size=(512, 16)) / 8.0
    shift = rng.integers(-8, 8, size=16) / 4.0
    y = x + shift
    _, s1 = feature_stats(x)
    _, s2 = feature_stats(y)
    assert np.array_equal(s1, s2)
    expected = float(shift @ shift)
    assert fid(x, y) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_fid_of_a_set_with_itself_is_zero(feats):
    real, fake = feats
    assert abs(fid(real, real)) < 1e-6
    assert abs(fid(fake, fake.copy())) < 1e-6


def test_fid_from_diagonal_gaussian_stats_closed_form():
    rng = np.random.default_rng(3)
    d = 50
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    expected = float(((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum())
    assert fid_from_stats(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    # singular covariances (both), as with fewer samples than dimensions: eigh fallback
    s1[::3] = 0.0
    s2[::2] = 0.0
    expected = float(((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum())
    assert fid_from_stats(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_fid_rotated_gaussians_closed_form():
    """Non-diagonal stats: S2 = S1^2 commutes with S1, so tr sqrt(S1 S2) = tr S1^(3/2)."""
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    w = rng.uniform(0.2, 2.0, 30)
    s1 = (q * w) @ q.T
    s2 = (q * w ** 2) @ q.T
    mu = np.zeros(30)
    expected = float((w + w ** 2 - 2 * w ** 1.5).sum())
    assert fid_from_stats(mu, s1, mu, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_accepts_torch_tensors_of_any_float_dtype(feats):
    real, fake = feats
    r32, f32 = real.astype(np.float32), fake.astype(np.float32)
    expected = fid(r32, f32)
    assert isinstance(expected, float)
    assert fid(torch.from_numpy(r32), torch.from_numpy(f32)) == expected
    r16 = torch.from_numpy(r32).half()
    assert fid(r16, r16.float().numpy().astype(np.float16)) == pytest.approx(0.0, abs=1e-6)
    assert fid(torch.from_numpy(r32).bfloat16(), f32) > 0


# ---------------------------------------------------------------------------- FID parity


def _stats(feats):
    real, fake = feats
    return feature_stats(real) + feature_stats(fake)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # scipy sqrtm(disp=) inside the reference
def test_fid_parity_pytorch_fid(feats):
    fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid not installed")
    mu1, s1, mu2, s2 = _stats(feats)
    ref = fid_score.calculate_frechet_distance(mu1, s1, mu2, s2)
    assert rel_diff(fid(*feats), ref) <= REL
    assert rel_diff(fid_from_stats(mu1, s1, mu2, s2), ref) <= REL


def test_fid_parity_torch_fidelity(feats):
    metric_fid = pytest.importorskip("torch_fidelity.metric_fid", reason="torch-fidelity not installed")
    mu1, s1, mu2, s2 = _stats(feats)
    # torch-fidelity's own statistics, from the same features
    st1 = metric_fid.fid_features_to_statistics(torch.from_numpy(feats[0]))
    st2 = metric_fid.fid_features_to_statistics(torch.from_numpy(feats[1]))
    ref = metric_fid.fid_statistics_to_metric(st1, st2, False)[metric_fid.KEY_METRIC_FID]
    assert rel_diff(fid(*feats), ref) <= REL


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # scipy sqrtm(disp=) inside the reference
def test_fid_parity_clean_fid(feats):
    cleanfid = pytest.importorskip("cleanfid.fid", reason="clean-fid not installed")
    mu1, s1, mu2, s2 = _stats(feats)
    ref = cleanfid.frechet_distance(mu1, s1, mu2, s2)
    assert rel_diff(fid_from_stats(mu1, s1, mu2, s2), ref) <= REL


def test_fid_parity_torchmetrics(feats):
    tm_fid = pytest.importorskip("torchmetrics.image.fid", reason="torchmetrics not installed")
    mu1, s1, mu2, s2 = _stats(feats)
    ref = float(tm_fid._compute_fid(*(torch.from_numpy(a) for a in (mu1, s1, mu2, s2))))
    assert rel_diff(fid_from_stats(mu1, s1, mu2, s2), ref) <= REL


# ---------------------------------------------------------------------------- KID


def test_mmd2_unbiased_matches_the_definition():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((12, 3)), rng.standard_normal((12, 3)) + 0.5
    m, d = 12, 3

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    expected = (xx + yy) / (m * (m - 1)) - 2 * xy / m ** 2
    assert mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-12)


def test_kid_of_identical_sets_is_zero_up_to_its_known_bias(feats):
    """KID of a set against itself is ~0: exactly its known O(1/N) bias, not a distance.

    Both subsets are drawn from the same N samples, so they share samples: with a the mean
    kernel value over distinct pairs and b the mean of k(x, x), the expected estimate is
    2 (a - b) / N (slightly negative), and exactly that when subset_size = N.
    """
    x = feats[0][:1000]
    n = len(x)
    gram = (x @ x.T / x.shape[1] + 1.0) ** 3
    b = np.trace(gram) / n
    a = (gram.sum() - np.trace(gram)) / (n * (n - 1))
    bias = 2 * (a - b) / n
    different = kid(x, feats[1], subsets=10, subset_size=500).mean
    same = kid(x, x, subsets=50, subset_size=500)
    assert abs(same.mean) < 0.05 * different
    assert abs(same.mean - bias) < 4 * same.std / math.sqrt(50)
    full = kid(x, x, subsets=3, subset_size=n)  # every subset is the whole set
    assert full.mean == pytest.approx(bias, rel=1e-9)
    assert full.std < 1e-12


def test_kid_parity_torch_fidelity(feats):
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid", reason="torch-fidelity not installed")
    real, fake = feats
    ours = kid(real, fake, subsets=20, subset_size=500, seed=7)
    # torch-fidelity's convention: input1 is the generated set
    ref = metric_kid.kid_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=20,
                                            kid_subset_size=500, rng_seed=7, verbose=False)
    assert rel_diff(ours.mean, ref[metric_kid.KEY_METRIC_KID_MEAN]) <= REL
    assert rel_diff(ours.std, ref[metric_kid.KEY_METRIC_KID_STD]) <= REL
    # non-default kernel parameters are passed through the same way
    ours = kid(real, fake, subsets=5, subset_size=300, degree=2, gamma=0.5, coef0=0.25, seed=1)
    ref = metric_kid.kid_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=5,
                                            kid_subset_size=300, kid_kernel_poly_degree=2,
                                            kid_kernel_poly_gamma=0.5, kid_kernel_poly_coef0=0.25,
                                            rng_seed=1, verbose=False)
    assert rel_diff(ours.mean, ref[metric_kid.KEY_METRIC_KID_MEAN]) <= REL


def test_kid_defaults_and_result_type(small):
    real, fake = small
    out = kid(real, fake, subsets=4, subset_size=100)
    mean, std = out
    assert (mean, std) == (out.mean, out.std)
    assert isinstance(mean, float) and isinstance(std, float)
    assert kid(real, fake, subsets=4, subset_size=100) == out  # deterministic for a seed
    assert kid(real, fake, subsets=4, subset_size=100, seed=1) != out


# ---------------------------------------------------------------------------- Inception Score


def test_is_of_uniform_probabilities_is_one():
    p = np.full((100, 10), 0.1)
    mean, std = inception_score(p)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_is_of_evenly_spread_one_hot_is_number_of_classes():
    k = 7
    p = np.tile(np.eye(k), (30, 1))  # 210 rows; each split of 21 contiguous rows holds every class 3 times
    mean, std = inception_score(p, splits=10)
    assert mean == pytest.approx(k, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_is_parity_torch_fidelity():
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc", reason="torch-fidelity not installed")
    rng = np.random.default_rng(6)
    logits = torch.from_numpy(3.0 * rng.standard_normal((5000, 100)))
    probs = logits.softmax(dim=1).numpy()
    ours = inception_score(probs, splits=10)
    ref = metric_isc.isc_features_to_metric(logits, splits=10, shuffle=False)
    assert rel_diff(ours.mean, ref[metric_isc.KEY_METRIC_ISC_MEAN]) <= REL
    assert rel_diff(ours.std, ref[metric_isc.KEY_METRIC_ISC_STD]) <= REL
    # float32 tensor input gives the same score to float32 precision
    assert inception_score(torch.from_numpy(probs).float()).mean == pytest.approx(ours.mean, rel=1e-5)


def test_is_parity_torchmetrics():
    pytest.importorskip("torchmetrics", reason="torchmetrics not installed")
    from torchmetrics.image.inception import InceptionScore

    rng = np.random.default_rng(7)
    n, splits = 1000, 10
    logits = torch.from_numpy(2.0 * rng.standard_normal((n, 20)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = InceptionScore(feature=torch.nn.Identity(), splits=splits)
        metric.update(logits)
        torch.manual_seed(0)
        perm = torch.randperm(n)
        torch.manual_seed(0)  # torchmetrics shuffles with torch.randperm: replay that permutation
        ref_mean, ref_std = (float(v) for v in metric.compute())
    ours = inception_score(logits.softmax(dim=1)[perm].numpy(), splits=splits)
    assert rel_diff(ours.mean, ref_mean) <= REL
    # torchmetrics reports the sample (ddof=1) standard deviation, we the population one
    assert rel_diff(ours.std * math.sqrt(splits / (splits - 1)), ref_std) <= REL


# ---------------------------------------------------------------------------- precision / recall


def test_precision_recall_of_a_set_with_itself_is_one(small):
    real, _ = small
    assert precision_recall(real, real) == (1.0, 1.0)
    assert precision_recall(real, real.copy(), k=1) == (1.0, 1.0)


def test_disjoint_far_apart_sets_score_zero(small):
    real, fake = small
    far = fake + 1e3
    assert precision_recall(real, far) == (0.0, 0.0)
    density, coverage = density_coverage(real, far)
    assert density == 0.0 and coverage == 0.0


def test_precision_recall_parity_torch_fidelity(feats):
    metric_prc = pytest.importorskip("torch_fidelity.metric_prc", reason="torch-fidelity not installed")
    real, fake = feats
    ours = precision_recall(real, fake, k=3)
    # input1 (features_1) is the generated set in torch-fidelity
    ref = metric_prc.prc_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), prc_neighborhood=3,
                                            prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    assert 0 < ours.precision < 1 and 0 < ours.recall < 1
    assert ours.precision == pytest.approx(ref[metric_prc.KEY_METRIC_PRECISION], abs=1e-7)
    assert ours.recall == pytest.approx(ref[metric_prc.KEY_METRIC_RECALL], abs=1e-7)


def test_precision_recall_matches_brute_force(small):
    real, fake = small
    k = 4
    rr = np.sort(np.sqrt(brute_sqdist(real, real)), axis=1)[:, k]  # column 0 is the sample itself
    rf = np.sort(np.sqrt(brute_sqdist(fake, fake)), axis=1)[:, k]
    d = np.sqrt(brute_sqdist(real, fake))
    precision = (d <= rr[:, None]).any(axis=0).mean()
    recall = (d <= rf[None, :]).any(axis=1).mean()
    assert precision_recall(real, fake, k=k) == (precision, recall)
    assert precision_recall(real, fake, k=k, batch_size=50) == (precision, recall)
    for bs in (50, 1024):
        np.testing.assert_allclose(knn_radii(real, k=k, batch_size=bs), rr, rtol=1e-10)


# ---------------------------------------------------------------------------- density / coverage


def brute_density_coverage(real, fake, k):
    """Naeem et al. 2020 on full distance matrices (as in the authors' prdc package)."""
    radii = np.sort(np.sqrt(brute_sqdist(real, real)), axis=1)[:, k]
    d = np.sqrt(brute_sqdist(real, fake))
    inside = d < radii[:, None]
    return inside.sum(axis=0).mean() / k, inside.any(axis=1).mean()


def test_density_coverage_match_brute_force(small):
    real, fake = small
    for k in (1, 5):
        expected = brute_density_coverage(real, fake, k)
        got = density_coverage(real, fake, k=k)
        assert got.density == pytest.approx(expected[0], rel=1e-12)
        assert got.coverage == pytest.approx(expected[1], rel=1e-12)


def test_density_coverage_of_identical_sets(feats):
    # strict <: each real ball holds its own sample and its k-1 nearest neighbours, not the
    # k-th (the tie at the radius).  Exactly 1 needs every real-fake distance to be the very
    # same float as the within-set distance it mirrors, for any batch size (with a naive
    # tiling ~0.1% of the ties flip on these 64-d features).
    x = feats[0][:1000]
    for bs in (128, 333, 1024):
        assert density_coverage(x, x.copy(), k=5, batch_size=bs) == (1.0, 1.0)
    assert density_coverage(x, x, k=2) == (1.0, 1.0)


# ---------------------------------------------------------------------------- batch-size invariance


def test_results_do_not_depend_on_batch_size(feats):
    real, fake = feats
    real, fake = real[:900], fake[:800]
    pr = {bs: precision_recall(real, fake, batch_size=bs) for bs in (97, 333, 4096)}
    dc = {bs: density_coverage(real, fake, batch_size=bs) for bs in (97, 333, 4096)}
    assert len(set(pr.values())) == 1, pr
    assert len(set(dc.values())) == 1, dc
    radii = [knn_radii(real, k=3, batch_size=bs) for bs in (64, 900)]
    np.testing.assert_allclose(radii[0], radii[1], rtol=1e-12)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_rejected(small, bad):
    real, fake = small
    real = real.copy()
    real[3, 2] = bad
    for fn in (fid, kid, precision_recall, density_coverage):
        with pytest.raises(ValueError, match="features contain NaN"):
            fn(real, fake) if fn is not kid else fn(real, fake, subset_size=10)
    with pytest.raises(ValueError, match="features contain NaN"):
        feature_stats(torch.from_numpy(real))
    with pytest.raises(ValueError, match="NaN or infinite"):
        fid_from_stats(real[0], np.eye(8), real[3], np.eye(8))


def test_mismatched_feature_dimensions_are_rejected(small):
    real, fake = small
    for fn in (fid, precision_recall, density_coverage):
        with pytest.raises(ValueError, match="feature dimensions differ"):
            fn(real, fake[:, :5])
    with pytest.raises(ValueError, match="feature dimensions differ"):
        kid(real, fake[:, :5], subset_size=10)
    with pytest.raises(ValueError, match="feature dimensions differ"):
        fid_from_stats(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="covariance"):
        fid_from_stats(np.zeros(3), np.eye(4), np.zeros(3), np.eye(3))


def test_too_few_samples_are_rejected(small):
    real, fake = small
    with pytest.raises(ValueError, match="at least 2"):
        fid(real[:1], fake)
    with pytest.raises(ValueError, match="at least 2"):
        feature_stats(real[:1])
    with pytest.raises(ValueError, match="lower subset_size.*or provide more samples"):
        kid(real, fake)  # default subset_size=1000 > 300 samples
    with pytest.raises(ValueError, match="lower k or provide more samples"):
        precision_recall(real[:3], fake, k=3)
    with pytest.raises(ValueError, match="lower k or provide more samples"):
        density_coverage(real, fake[:5], k=5)
    with pytest.raises(ValueError, match="at least one sample per split"):
        inception_score(np.full((5, 3), 1 / 3), splits=10)


def test_wrong_ndim_and_bad_arguments_are_rejected(small):
    real, fake = small
    for bad in (real[0], real[None], np.float64(1.0)):
        with pytest.raises(ValueError, match="2-D array"):
            fid(bad, fake)
    with pytest.raises(ValueError, match="2-D array"):
        precision_recall(torch.zeros(10, 2, 2), fake)
    with pytest.raises(ValueError, match="real numbers"):
        fid(real.astype(complex), fake)
    with pytest.raises(ValueError, match="k must be an integer"):
        precision_recall(real, fake, k=0)
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        density_coverage(real, fake, batch_size=0)
    with pytest.raises(ValueError, match="subsets must be an integer"):
        kid(real, fake, subsets=0, subset_size=10)


def test_inception_score_rejects_logits_and_bad_rows():
    rng = np.random.default_rng(8)
    logits = rng.standard_normal((100, 10))
    with pytest.raises(ValueError, match="negative"):
        inception_score(logits)
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.abs(logits))
    p = np.full((100, 10), 0.1)
    p[0, 0] = np.nan
    with pytest.raises(ValueError, match="features contain NaN"):
        inception_score(p)
