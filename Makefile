# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.wenda-installed
QUESTION ?= 安阳2022年老旧小区改造项目的开工率是多少？

.PHONY: demo test install browser clean

install: $(STAMP) browser

# The CPU build of torch goes in first, pinned, through pip (so this machine's pip settings, which say where the
# CPU build lies, apply), so sentence-transformers never pulls a CUDA build. The rest goes in through uv (compiled
# to bytecode, as pip does: without it every first import compiles, Ray's workers each on their own); uv keeps the
# installed torch. On a fresh clone uv took 10 s where pip took 99 s for the same packages (before bytecode was
# asked for), and the whole set-up ~1:10 instead of ~2:15. Where uv cannot be had, pip does it all.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	($(BIN)/pip install -q uv==0.13.8 && $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[st,test,ray]') \
		|| $(BIN)/pip install -q -e '.[st,test,ray]'
	$(BIN)/wenda prepare
	touch $(STAMP)

# The web page's test (tests/test_serve_page.py) drives Debian's Chromium and chromedriver through Selenium; both
# come from apt once, nothing is downloaded when the tests run. Without apt-get (or root or sudo) that test is skipped.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "no apt-get here: install Chromium and chromedriver at /usr/bin, else tests/test_serve_page.py is skipped"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	elif command -v sudo >/dev/null 2>&1; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	else \
		echo "not root and no sudo: apt-get install chromium chromium-driver, else tests/test_serve_page.py is skipped"; \
	fi

demo: $(STAMP)
	$(BIN)/wenda index
	$(BIN)/wenda ask -k 3 "$(QUESTION)"

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# the test files on three workers (each file's tests on one, so module fixtures are built once; a third worker
	# uses the CPU time the other two spend waiting on subprocesses and servers: 7:54 instead of 9:36), then the
	# tests that measure the free CPUs, or wait on a Ray cluster's start-up, alone; both runs share one folder
	# for the indexes every test only reads (tests/conftest.py, shared_root), built once
	shared=$$(mktemp -d) && trap 'rm -rf "$$shared"' EXIT && export WENDA_TEST_SHARED="$$shared" && \
		$(BIN)/python -m pytest -q -n 3 --dist loadfile -m "not serial" && \
		$(BIN)/python -m pytest -q -m serial

clean:
	rm -rf .wenda-index .pytest_cache
