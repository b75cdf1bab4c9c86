PYTHON ?= python3

.PHONY: setup run test

setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

# set up, then train the default model (DCGAN, non-saturating loss, Fashion-MNIST)
run: setup
	$(PYTHON) -m gankit train

# set up, then run the test suite
test: setup
	$(PYTHON) -m pytest -q
