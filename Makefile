# The template's own tasks. The README's two commands are `make demo` and `make test`.
VENV := .venv
PYTHON := $(VENV)/bin/python
EMULATED_LOG := .cache/test-emulated.log
EMULATED_IN_TEST := python3.13-arm64

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

# Everything, as CI runs it. The arm64 pair of the default runtime (tests/test_runtimes.py, `-m emulated`: minutes of
# qemu emulation, mostly on one core) runs in a second pytest beside the rest, its log printed after it; the rest
# lists its 30 slowest steps. Both arm64 pairs do not fit in CI's 45 minutes on 2 cores: `make test-emulated` runs
# them. Then stop the Docker daemon that lambda-images started, if it did.
test: setup lambda-images
	mkdir -p .cache
	REQUIRE_DOCKER=1 $(PYTHON) -m pytest -m emulated -k $(EMULATED_IN_TEST) -p no:cacheprovider > $(EMULATED_LOG) 2>&1 & \
	emulated=$$!; \
	trap 'kill $$emulated 2>/dev/null' EXIT; \
	REQUIRE_DOCKER=1 $(PYTHON) -m pytest -m "not emulated" --durations=30; status=$$?; \
	wait $$emulated; emulated_status=$$?; \
	echo "===== $(EMULATED_IN_TEST), run beside the rest (pytest -m emulated -k $(EMULATED_IN_TEST)) ====="; \
	cat $(EMULATED_LOG); \
	$(MAKE) -C tests/lambda_images stop; \
	exit $$(( status != 0 || emulated_status != 0 ))

# Both arm64 pairs (python3.13 and python3.14), alone.
test-emulated: setup lambda-images
	REQUIRE_DOCKER=1 $(PYTHON) -m pytest -m emulated; status=$$?; $(MAKE) -C tests/lambda_images stop; exit $$status

# Lambda-like runtime and build images for `sam build --use-container` and `sam local` (no registry here), for every
# runtime and architecture the template offers; two at a time (arm64's, emulated, take minutes when first built).
lambda-images: setup
	$(MAKE) -C tests/lambda_images -j2 --output-sync=target --no-print-directory
