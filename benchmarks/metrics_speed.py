"""Time gankit.metrics on Inception-sized features, beside torch-fidelity on the same features.

    python benchmarks/metrics_speed.py                 # FID, KID, precision/recall at 10,000 x 2,048
    python benchmarks/metrics_speed.py --n 2000 --only fid kid

Prints a markdown table (seconds, best of --repeats, and the values each side computed) with
the machine, library versions and date.  A reference that is not installed is reported as
skipped.  The features are synthetic float32, non-negative and correlated like Inception
pool features (a ReLU of a random linear map of 512 latent factors plus noise); the fake set
uses a perturbed map so the metrics are far from 0.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout
from gankit.metrics import fid, kid, precision_recall  # noqa: E402
from gankit.hardware import cpu_name  # noqa: E402


def make_features(n: int, dim: int, seed: int):
    rng = np.random.default_rng(seed)
    latent = 512
    w = rng.standard_normal((latent, dim), dtype=np.float32) / np.float32(np.sqrt(latent))
    w_fake = w + np.float32(0.3) * rng.standard_normal((latent, dim), dtype=np.float32) / np.float32(np.sqrt(latent))

    def draw(mapping):
        z = rng.standard_normal((n, latent), dtype=np.float32)
        x = z @ mapping + np.float32(0.5) * rng.standard_normal((n, dim), dtype=np.float32)
        return np.maximum(x, 0, out=x)

    return draw(w), draw(w_fake)


def best_time(fn, repeats: int):
    best, value = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value




def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="samples per set (default 10000)")
    ap.add_argument("--dim", type=int, default=2048, help="feature dimension (default 2048)")
    ap.add_argument("--kid-subsets", type=int, default=100)
    ap.add_argument("--kid-subset-size", type=int, default=1000)
    ap.add_argument("--k", type=int, default=3, help="neighbourhood size for precision/recall")
    ap.add_argument("--repeats", type=int, default=1, help="report the best of this many runs")
    ap.add_argument("--only", nargs="+", choices=["fid", "kid", "prc"], default=["fid", "kid", "prc"])
    ap.add_argument("--no-reference", action="store_true", help="time gankit only")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    real, fake = make_features(args.n, args.dim, args.seed)
    real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)
    tf = None
    if not args.no_reference:
        try:
            import torch_fidelity
            from torch_fidelity import metric_fid, metric_kid, metric_prc
            tf = (torch_fidelity.__version__, metric_fid, metric_kid, metric_prc)
        except ImportError:
            tf = None

    rows = []

    def add(name, size, ours, ref):
        t_ours, v_ours = ours
        if ref is None:
            rows.append((name, size, f"{t_ours:.2f}", "skipped", v_ours, "-"))
        else:
            t_ref, v_ref = ref
            rows.append((name, size, f"{t_ours:.2f}", f"{t_ref:.2f}", v_ours, v_ref))

    n, d = args.n, args.dim
    if "fid" in args.only:
        ours = best_time(lambda: f"{fid(real, fake):.6f}", args.repeats)
        ref = None
        if tf:
            m = tf[1]

            def tf_fid():
                s1 = m.fid_features_to_statistics(fake_t)
                s2 = m.fid_features_to_statistics(real_t)
                return f"{m.fid_statistics_to_metric(s1, s2, False)[m.KEY_METRIC_FID]:.6f}"
            ref = best_time(tf_fid, args.repeats)
        add("FID (from features)", f"2 x {n:,} x {d:,}", ours, ref)

    if "kid" in args.only:
        s, m_ = args.kid_subsets, args.kid_subset_size

        def ours_kid():
            r = kid(real, fake, subsets=s, subset_size=m_)
            return f"{r.mean:.6f} ± {r.std:.6f}"
        ours = best_time(ours_kid, args.repeats)
        ref = None
        if tf:
            m = tf[2]

            def tf_kid():
                r = m.kid_features_to_metric(fake_t, real_t, kid_subsets=s, kid_subset_size=m_, verbose=False)
                return f"{r[m.KEY_METRIC_KID_MEAN]:.6f} ± {r[m.KEY_METRIC_KID_STD]:.6f}"
            ref = best_time(tf_kid, args.repeats)
        add(f"KID ({s} subsets of {m_:,})", f"2 x {n:,} x {d:,}", ours, ref)

    if "prc" in args.only:
        k = args.k

        def ours_prc():
            p, r = precision_recall(real, fake, k=k)
            return f"P={p:.4f} R={r:.4f}"
        ours = best_time(ours_prc, args.repeats)
        ref = None
        if tf:
            m = tf[3]

            def tf_prc():
                r = m.prc_features_to_metric(fake_t, real_t, prc_neighborhood=k, prc_batch_size=10000,
                                             save_cpu_ram=False, verbose=False)
                return f"P={r[m.KEY_METRIC_PRECISION]:.4f} R={r[m.KEY_METRIC_RECALL]:.4f}"
            ref = best_time(tf_prc, args.repeats)
        add(f"precision/recall (k={k})", f"2 x {n:,} x {d:,}", ours, ref)

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"gankit.metrics speed, {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print()
    print(f"- machine: {cpu_name()}, {os.cpu_count()} CPUs (torch threads: {torch.get_num_threads()}), "
          f"load average at end {load}")
    print(f"- python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
          f"torch-fidelity {tf[0] if tf else 'not installed'}")
    print(f"- features: synthetic float32; gankit works in float64, torch-fidelity in the input dtype "
          f"(float32) except FID statistics; best of {args.repeats} run(s)")
    print()
    print("| metric | features | gankit (s) | torch-fidelity (s) | gankit value | torch-fidelity value |")
    print("| --- | --- | ---: | ---: | --- | --- |")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
