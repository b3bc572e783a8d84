# django-transactional-mail
#
#   make demo    the example shop: web + Celery worker + beat on SQLite and a file broker
#   make test    everything: ruff, docs, tests on SQLite, PostgreSQL (when TM_TEST_POSTGRES
#                is set, with the integration tests), Django 4.2 and Django 6.0 (Python 3.12)
#
# Both create the virtualenvs they need. .ci/run is `make test` with the services set.

SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
VENV_DJ42 := .venv-dj42
PY_DJ42 := $(VENV_DJ42)/bin/python
# Django 6.0 needs Python >= 3.12: python3.12 when it runs, else the newest 3.12 that
# pyenv has installed (pyenv's python3.12 shim fails while another version is active).
ifndef PYTHON_DJ6
PYTHON_DJ6 := $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || \
  ls -d "$$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -n 1)
endif
VENV_DJ6 := .venv-dj6
PY_DJ6 := $(VENV_DJ6)/bin/python
BUILD := build
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help demo venv venv-dj42 venv-dj6 chromium test test-unit lint docs clean distclean

help:
	@echo "make demo        run the example shop (admin URL and login are printed)"
	@echo "make test        every step below, each logged to build/test-<step>.log, then a summary:"
	@echo "                   ruff      ruff check ."
	@echo "                   docs      mkdocs build --strict"
	@echo "                   sqlite    the tests on SQLite (only the unit tests when TM_TEST_POSTGRES is set)"
	@echo "                   postgres  every test, integration included (needs TM_TEST_POSTGRES, TM_TEST_REDIS,"
	@echo "                             TM_TEST_RABBITMQ; .ci/run sets them)"
	@echo "                   django42  the tests with Django 4.2 (.venv-dj42)"
	@echo "                   django60  the tests with Django 6.0 on Python 3.12 (.venv-dj6; PYTHON_DJ6=$(or $(PYTHON_DJ6),not found))"
	@echo "make test-unit   the unit tests on SQLite only (quick)"
	@echo "make lint        ruff check ."
	@echo "make docs        build the documentation into build/site"
	@echo "make venv        create .venv (also venv-dj42, venv-dj6)"
	@echo "make chromium    install Debian's chromium for the browser tests when missing (apt, as root or with sudo)"
	@echo "make clean       remove build/ and caches; make distclean also removes the virtualenvs"
	@echo "PYTEST_ARGS='-k claims -x' make test-unit   passes arguments to pytest"

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test,browser]'
	touch $@

venv-dj42: $(VENV_DJ42)/.installed

$(VENV_DJ42)/.installed: pyproject.toml
	[ -x $(PY_DJ42) ] || $(PYTHON) -m venv $(VENV_DJ42)
	$(PY_DJ42) -m pip install --quiet -e '.[test,browser]' 'Django>=4.2,<5.0'
	touch $@

venv-dj6: $(VENV_DJ6)/.installed

$(VENV_DJ6)/.installed: pyproject.toml
	[ -x $(PY_DJ6) ] || $(PYTHON_DJ6) -m venv $(VENV_DJ6)
	$(PY_DJ6) -m pip install --quiet -e '.[test,browser]' 'Django>=6.0,<6.1'
	touch $@

# The browser tests drive the system's Chromium (Playwright's own download is never used).
# Installed with apt when missing, as root or through passwordless sudo; when it cannot be,
# the browser tests skip with the reason (and fail under CI=true, where they must run).
chromium:
	if [ -n "$${TM_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
	  exit 0
	fi
	if [ "$$(id -u)" = 0 ]; then sudo=""
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"
	else echo "chromium is missing and this user cannot install it (not root, no sudo): the browser tests will not run"; exit 0
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
	  echo "chromium is missing and there is no apt-get: install Chromium and set TM_CHROMIUM=/path/to/it"; exit 0
	fi
	echo "Installing chromium for the browser tests (apt-get)..."
	$$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null

demo: venv
	$(PY) example_project/manage.py demo

lint: venv
	$(PY) -m ruff check .

docs: venv
	if [ -f mkdocs.yml ]; then $(PY) -m mkdocs build --strict --site-dir $(BUILD)/site; \
	else echo "no mkdocs.yml: nothing to build"; fi

test-unit: venv
	env -u TM_TEST_POSTGRES $(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

# Every step runs even when an earlier one fails; the summary says which failed.
test: venv venv-dj42 chromium
	@mkdir -p $(BUILD)
	summary=$(BUILD)/test-summary.txt
	: > "$$summary"
	failed=()
	step() {
	  local name=$$1; shift
	  local log=$(BUILD)/test-$$name.log
	  local started=$$SECONDS result figures
	  echo; echo "=== $$name: $$*"
	  if "$$@" 2>&1 | tee "$$log"; then result=ok; else result=FAILED; failed+=("$$name"); fi
	  figures=$$(grep -E '^(=+ )?([0-9]+ (passed|failed|skipped|errors?|deselected|xfailed|xpassed)|no tests ran)' "$$log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$$//' || true)
	  printf '%-10s %-7s %4ss  %s\n' "$$name" "$$result" "$$((SECONDS - started))" "$$figures" >> "$$summary"
	}
	step ruff $(PY) -m ruff check .
	if [ -f mkdocs.yml ]; then
	  step docs $(PY) -m mkdocs build --strict --site-dir $(BUILD)/site
	else
	  printf '%-10s %-7s\n' docs "skipped (no mkdocs.yml)" >> "$$summary"
	fi
	if [ -n "$${TM_TEST_POSTGRES:-}" ]; then
	  # Unit tests on SQLite; the integration tests need PostgreSQL (next step).
	  step sqlite env -u TM_TEST_POSTGRES $(PY) -m pytest -m "not integration" $(PYTEST_ARGS)
	  step postgres $(PY) -m pytest $(PYTEST_ARGS)
	else
	  step sqlite $(PY) -m pytest $(PYTEST_ARGS)
	  printf '%-10s %-7s\n' postgres "skipped (TM_TEST_POSTGRES not set)" >> "$$summary"
	fi
	step django42 $(PY_DJ42) -m pytest $(PYTEST_ARGS)
	if [ -n "$(PYTHON_DJ6)" ] && $(PYTHON_DJ6) -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
	  $(MAKE) --no-print-directory venv-dj6
	  step django60 $(PY_DJ6) -m pytest $(PYTEST_ARGS)
	elif [ "$${CI:-}" = true ]; then
	  printf '%-10s %-7s\n' django60 "FAILED (no Python >= 3.12 found: python3.12 does not run and pyenv has no 3.12; set PYTHON_DJ6)" >> "$$summary"
	  failed+=(django60)
	else
	  printf '%-10s %-7s\n' django60 "skipped (no Python >= 3.12 found: python3.12 does not run and pyenv has no 3.12; make PYTHON_DJ6=/path/to/python3.12)" >> "$$summary"
	fi
	echo
	echo "==================== make test: summary ===================="
	cat "$$summary"
	if [ $${#failed[@]} -eq 0 ]; then
	  echo "RESULT: all steps passed"
	else
	  echo "RESULT: FAILED: $${failed[*]}"
	  exit 1
	fi

clean:
	rm -rf $(BUILD) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './.venv*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(VENV_DJ42) $(VENV_DJ6)
