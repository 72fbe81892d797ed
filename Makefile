# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.wenda-installed
QUESTION ?= 安阳2022年老旧小区改造项目的开工率是多少？

.PHONY: demo test install clean

install: $(STAMP)

# The CPU build of torch goes in first, pinned, so sentence-transformers never pulls a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[st,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/wenda index
	$(BIN)/wenda ask -k 3 "$(QUESTION)"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf .wenda-index .pytest_cache
