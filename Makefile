# PYTHON: the interpreter the project environment is made from (a distribution's Python,
# pyenv or conda all work); VENV: where that environment lives. Everything is installed
# into VENV, nothing into PYTHON itself.
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python

.PHONY: setup run test

setup:
	PYTHON="$(PYTHON)" VENV="$(VENV)" bash scripts/setup.sh

# set up, then train the default model (DCGAN, non-saturating loss, Fashion-MNIST)
run: setup
	$(VPY) -m gankit train

# set up (with the browser the report tests drive), then run the test suite
test: setup
	bash scripts/setup_browser.sh
	$(VPY) -m pytest -q
