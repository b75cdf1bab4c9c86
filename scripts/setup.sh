#!/usr/bin/env bash
# Set up gankit on a fresh machine: the pinned PyTorch pair, gankit itself, and
# Fashion-MNIST from Debian's package where apt is available. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1; then
    echo "setup: installed Fashion-MNIST to /usr/share/datasets/fashion-mnist"
  else
    echo "setup: could not install dataset-fashion-mnist with apt; see README (Data) for other ways"
  fi
fi

# torch first and pinned: an unpinned torch requirement can pull a multi-GB build.
if ! "$PY" -c 'import torch, torchvision, sys; sys.exit(0 if (torch.__version__.startswith("2.14.1") and torchvision.__version__.startswith("0.29.1")) else 1)' 2>/dev/null; then
  "$PY" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
fi
"$PY" -m pip install -q -e ".[test,tensorboard]"
# Reference implementations the metric tests compare against, and pytorch-fid's Inception
# network for `--features inception`: --no-deps, so that none of them can touch torch.
"$PY" -m pip install -q --no-deps "torch-fidelity==0.4.0" "torchmetrics==1.9.0" "pytorch-fid==0.3.0" \
  "clean-fid==0.1.35" "lightning-utilities==0.15.3"
echo "setup: done ($("$PY" -c 'import gankit, torch; print("gankit", gankit.__version__, "torch", torch.__version__)'))"
