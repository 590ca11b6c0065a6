# The README's two commands: `make demo` and `make test`. Both do all set-up on a
# fresh machine: a .venv, torch first (pinned so no later install replaces it),
# tuneloop with its dependencies, and the embedded default model.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# Extra pip arguments for the torch install only, e.g. an index URL that serves
# CPU builds on a machine where plain PyPI would give a CUDA build.
TORCH_PIP_ARGS ?=
DEFAULT_MODEL ?= smollm2-135m-instruct
PYTEST_ARGS ?=
# llama-cpp-python builds from source. A native build (-march=native) crashed on
# quantized GGUFs on this machine kind (AMX / AVX-512 kernels in a VM); an AVX2 build
# is portable across x86-64 CPUs of the last decade and ran the q8_0 default model at
# ~80 tokens/s on 2 cores. Override for other CPUs (e.g. CMAKE_ARGS=-DGGML_NATIVE=ON).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF

.PHONY: setup demo test lint pull clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Torch goes in first, alone; its exact installed version then becomes a pip
# constraint for every later install, so nothing can swap it for another build.
$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)" $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip freeze | grep -iE '^torch==' > $(VENV)/constraints.txt
	@echo "torch pinned: $$(cat $(VENV)/constraints.txt)"
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" PIP_CONSTRAINT=$(VENV)/constraints.txt \
		$(BIN)/python -m pip install --quiet -e ".[dev,lmeval,llamacpp]"
	# llama.cpp's GGUF converter ships only in llama-cpp-python's source package: fetch
	# it once now, so exports never need the network.
	$(BIN)/python -m tuneloop.models.gguf_export
	touch $@

setup: $(VENV)/.installed

pull: setup
	$(BIN)/tuneloop models pull $(DEFAULT_MODEL)

# The main job: one turn of the loop on the default model (docs/loop.md), sized for about 30
# minutes on 2 CPU cores. --resume: a second `make demo` continues or skips what is done.
LOOP_CONFIG ?= configs/loop/demo.yaml
demo: pull
	$(BIN)/tuneloop loop $(LOOP_CONFIG) --resume

# The web UI tests drive a real headless Chromium (Debian's package; Playwright never
# downloads a browser of its own).
browser:
	command -v chromium >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: pull browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build src/*.egg-info
