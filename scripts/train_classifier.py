#!/usr/bin/env python
"""Train the small CNN behind gankit's ``fashion_mnist`` / ``mnist`` feature extractors.

    python scripts/train_classifier.py --data fashion_mnist --out src/gankit/assets/fashion_mnist_classifier.pt
    python scripts/train_classifier.py --data mnist --root DIR --out PATH

Prints the test accuracy and the sha256 of the written weights file (a state_dict saved
with torch.save). A file other than the shipped one is used through the extractor's
``weights`` parameter, e.g. features ``mnist`` with weights=PATH.
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=["fashion_mnist", "mnist"], default="fashion_mnist",
                        help="data set to train on (default: fashion_mnist)")
    parser.add_argument("--root", default=None,
                        help="folder holding the data set's four IDX files (default: gankit's usual search: "
                             "$GANKIT_DATA, the Debian package folder, the download cache)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", required=True, help="where to write the weights (.pt)")
    parser.add_argument("--batch-size", type=int, default=256, help="batch size (default: 256)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); 1 is often fastest on a busy machine")
    bf16 = parser.add_mutually_exclusive_group()
    bf16.add_argument("--bf16", dest="bf16", action="store_true", default=None,
                      help="train under bfloat16 autocast (default: when the CPU supports bf16 natively)")
    bf16.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in float32")
    args = parser.parse_args(argv)

    from gankit.errors import GankitError
    from gankit.metrics.classifier import train_classifier

    try:
        result = train_classifier(args.data, root=args.root, epochs=args.epochs, seed=args.seed, out=args.out,
                                  batch_size=args.batch_size, bf16=args.bf16, threads=args.threads)
    except GankitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"test accuracy: {result['test_accuracy']:.4f}")
    print(f"training time: {result['seconds']:.1f} s")
    print(f"sha256: {result['sha256']}")
    print(f"written: {result['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
