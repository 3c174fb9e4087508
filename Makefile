# The template's own tasks. The README's two commands are `make demo` and `make test`.
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: setup demo test test-emulated lambda-images

# A virtual environment with the template's dev tools (cookiecutter, SAM CLI, pytest).
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet .
	touch $@

# Generate the default project, build it without Docker and print the prediction for the tutorial request.
demo: setup
	$(PYTHON) -m tools.demo

# Everything, as CI runs it (listing the 30 slowest steps, to keep CI in its budget); then stop the Docker daemon that lambda-images started (if it started one).
test: setup lambda-images
	REQUIRE_DOCKER=1 $(PYTHON) -m pytest -m "not emulated" --durations=30; status=$$?; $(MAKE) -C tests/lambda_images stop; exit $$status

# The arm64 pairs under qemu emulation (tests/test_runtimes.py): 8 to 15 minutes each here, so not in `make test`
# (CI's 45-minute budget) until they have passed there.
test-emulated: setup lambda-images
	REQUIRE_DOCKER=1 $(PYTHON) -m pytest -m emulated; status=$$?; $(MAKE) -C tests/lambda_images stop; exit $$status

# Lambda-like runtime and build images for `sam build --use-container` and `sam local` (no registry here), for every
# runtime and architecture the template offers; two at a time (arm64's, emulated, take minutes when first built).
lambda-images: setup
	$(MAKE) -C tests/lambda_images -j2 --output-sync=target --no-print-directory
