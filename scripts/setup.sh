#!/usr/bin/env bash
# Set up gankit on a fresh machine, inside a project virtual environment: the pinned
# PyTorch pair, gankit itself, the reference implementations the tests compare against,
# and, where apt is available, Fashion-MNIST and the photographs of the `photos` data set
# from Debian's packages.
#
#   PYTHON  the interpreter the environment is made from (default python3): a
#           distribution's Python (PEP 668 "externally managed"), pyenv, conda ...
#   VENV    where the environment lives (default .venv, ignored by git)
#
# Nothing is installed into the interpreter itself. Safe and fast to run again: when the
# environment was made from the same interpreter and nothing it installs from changed,
# it does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

say() { echo "setup: $*"; }

as_root() {  # run a command as root: directly, or through sudo when there is one
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi
}

if ! command -v "$PY" >/dev/null 2>&1; then
  say "no interpreter '$PY'; pass one with PYTHON=/path/to/python3 (3.10 or newer)"; exit 2
fi
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
  say "$PY is Python $("$PY" -c 'import platform; print(platform.python_version())'); gankit needs 3.10 or newer"; exit 2
fi

# The interpreter's identity: a different one asks for a new environment.
ident=$("$PY" -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version.split()[0])')
# What the installed packages come from: a change to either file asks for a new install.
inputs=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
stamp="$VENV/.gankit-setup"

if [ -f "$stamp" ] && [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp")" = "$ident $inputs" ]; then
  say "up to date ($VENV, from $ident)"; exit 0
fi

# Fashion-MNIST, where apt can install it (the embedded default run trains on it).
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  if { as_root apt-get update -qq && as_root apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1; then
    say "installed Fashion-MNIST to /usr/share/datasets/fashion-mnist"
  else
    say "could not install dataset-fashion-mnist with apt; see README (Data) for other ways"
  fi
fi

# The photographs of the `photos` data set, where apt can install them: mate-backgrounds
# (46 MB download) and plasma-workspace-wallpapers (94 MB; ten of its wallpapers are
# photographs). The rest of its photographs come with the `photos` extra below.
photo_pkgs=""
[ -d /usr/share/backgrounds/mate/nature ] || photo_pkgs="mate-backgrounds"
[ -d /usr/share/wallpapers/EveningGlow ] || photo_pkgs="$photo_pkgs plasma-workspace-wallpapers"
photo_pkgs=${photo_pkgs# }
if [ -n "$photo_pkgs" ] && command -v apt-get >/dev/null 2>&1; then
  # shellcheck disable=SC2086  # the list splits into package names on purpose
  if { as_root apt-get update -qq && as_root apt-get install -y -qq $photo_pkgs; } >/dev/null 2>&1; then
    say "installed the photographs of the photos data set ($photo_pkgs)"
  else
    say "could not install $photo_pkgs with apt; the photos data set needs them (or data.root); see README (Data)"
  fi
fi

# The text of the sequence data sets, where apt can install it: fortunes (English quotations,
# data set `quotes`) and fortunes-zh (Tang poems and Song ci, data set `poems`).
text_pkgs=""
[ -f /usr/share/games/fortunes/wisdom ] || text_pkgs="fortunes"
[ -f /usr/share/games/fortunes/tang300 ] || text_pkgs="$text_pkgs fortunes-zh"
# German fortunes and the FreeDict English-German dictionary: the corpora and the test
# dictionary of word translation by aligned embeddings
[ -d /usr/share/games/fortunes/de ] || text_pkgs="$text_pkgs fortunes-de"
[ -f /usr/share/dictd/freedict-eng-deu.index ] || text_pkgs="$text_pkgs dict-freedict-eng-deu"
text_pkgs=${text_pkgs# }
if [ -n "$text_pkgs" ] && command -v apt-get >/dev/null 2>&1; then
  # shellcheck disable=SC2086  # the list splits into package names on purpose
  if { as_root apt-get update -qq && as_root apt-get install -y -qq $text_pkgs; } >/dev/null 2>&1; then
    say "installed the text of the sequence data sets ($text_pkgs)"
  else
    say "could not install $text_pkgs with apt; the poems, quotes and translation data need them; see README (Sequences)"
  fi
fi

# The speech of the speech and voices data sets, where apt can install it: espeak-ng speaks
# the sentences in several voices, sox reads and writes audio files.
speech_pkgs=""
command -v espeak-ng >/dev/null 2>&1 || speech_pkgs="espeak-ng"
command -v sox >/dev/null 2>&1 || speech_pkgs="$speech_pkgs sox"
speech_pkgs=${speech_pkgs# }
if [ -n "$speech_pkgs" ] && command -v apt-get >/dev/null 2>&1; then
  # shellcheck disable=SC2086  # the list splits into package names on purpose
  if { as_root apt-get update -qq && as_root apt-get install -y -qq $speech_pkgs; } >/dev/null 2>&1; then
    say "installed the voices of the speech data sets ($speech_pkgs)"
  else
    say "could not install $speech_pkgs with apt; the speech and voices data sets need them; see README (Sound and motion)"
  fi
fi

# The environment itself, made anew when it was made from another interpreter.
if [ -d "$VENV" ] && { [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.gankit-python" 2>/dev/null)" != "$ident" ]; }; then
  say "$VENV was made from another interpreter (or is broken); making it again from $ident"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    # Debian and Ubuntu ship venv (ensurepip) in a package of its own.
    rm -rf "$VENV"
    ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    if command -v apt-get >/dev/null 2>&1 && { as_root apt-get update -qq && \
         as_root apt-get install -y -qq python3-venv "python$ver-venv"; } >/dev/null 2>&1; then
      say "installed python3-venv with apt"
    fi
    if ! "$PY" -m venv "$VENV"; then
      rm -rf "$VENV"
      say "$PY cannot make a virtual environment; install its venv module (Debian/Ubuntu: apt-get install python3-venv)"
      exit 2
    fi
  fi
  echo "$ident" > "$VENV/.gankit-python"
  say "made $VENV from $ident"
fi
VPY="$VENV/bin/python"
pipq() { PIP_DISABLE_PIP_VERSION_CHECK=1 "$VPY" -m pip install -q "$@"; }

# torch first and pinned: an unpinned torch requirement can pull a multi-GB build.
if ! "$VPY" -c 'import torch, torchvision, sys; sys.exit(0 if (torch.__version__.startswith("2.14.1") and torchvision.__version__.startswith("0.29.1")) else 1)' 2>/dev/null; then
  pipq "torch==2.14.1" "torchvision==0.29.1"
fi
# pesq (of the speech extra) compiles C where no wheel fits: without a compiler or Python's
# headers, everything else is installed and the speech metrics leave PESQ out, saying so.
if ! pipq -e ".[test,tensorboard,photos,speech,text]"; then
  say "could not install the speech extra whole (pesq needs a C compiler and Python's headers); without pesq"
  pipq -e ".[test,tensorboard,photos,text]" "soundfile>=0.12" "pystoi>=0.3"
fi
# Reference implementations the metric tests compare against, and pytorch-fid's Inception
# network for `--features inception`: --no-deps, so that none of them can touch torch.
pipq --no-deps "torch-fidelity==0.4.0" "torchmetrics==1.9.0" "pytorch-fid==0.3.0" \
  "clean-fid==0.1.35" "lightning-utilities==0.15.3"
echo "$ident $inputs" > "$stamp"
say "done ($("$VPY" -c 'import gankit, torch; print("gankit", gankit.__version__, "torch", torch.__version__)') in $VENV)"
say "to use the gankit command: source $VENV/bin/activate"
