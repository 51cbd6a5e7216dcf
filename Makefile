# Tablao: `make run` starts the all-in-one farm, `make test` runs the checks and the test suite.
# Both create .venv on first use. HEADLESS=1 runs the farm without the desktop window; PORT=N puts its Server on
# port N and its Manager on N+1 (default: 8470, or the desktop app's setting).

# The first Python 3.11+ on PATH (a Mac's /usr/bin/python3 is 3.9); PYTHON=... chooses another
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in python3 python3.14 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
endif
VENV := .venv
UV := $(VENV)/bin/uv
PY := $(VENV)/bin/python
HEADLESS ?=
# := rather than ?=: a PORT exported for other programs (web apps use it) must not move the farm
PORT :=
WORKERS ?= 2
PORT_ARG := $(if $(PORT), --port $(PORT))
STAMP := $(VENV)/.synced

.PHONY: run test lint check venv system-deps bench bench-peers screenshots package clean

$(UV):
	@$(if $(PYTHON),,echo "Tablao needs Python 3.11 or newer, and none of python3, python3.11 - 3.14 is (macOS: brew install\
	 python@3.12; Debian/Ubuntu: apt-get install python3 python3-venv). Or give one: make $(or $(MAKECMDGOALS),run)\
	 PYTHON=/path/to/python3.12" >&2; exit 1)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv

# uv.lock pins every dependency; a changed lock or pyproject re-syncs the venv.
$(STAMP): $(UV) uv.lock pyproject.toml
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --inexact --all-extras --group package --quiet
	touch $(STAMP)

venv: $(STAMP)

# Blender and ffmpeg for the end-to-end tests, Qt's X11 libraries for the desktop app.
system-deps:
	@bash scripts/system-deps.sh

run: venv
# HEADLESS=true or yes too: anything else started the desktop app, which on a server says there is no display
ifneq ($(filter 1 true yes on TRUE YES ON True Yes On,$(HEADLESS)),)
	$(VENV)/bin/tablao all-in-one --headless --demo --workers $(WORKERS)$(PORT_ARG)
else
	@bash scripts/system-deps.sh --gui-only
	$(VENV)/bin/tablao all-in-one --demo --workers $(WORKERS)$(PORT_ARG)
endif

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@# the Windows and macOS paths of the local farm's lifelines are type-checked as those platforms see them
	$(VENV)/bin/mypy --platform win32 services/localfarm services/worker/runners/process.py
	$(VENV)/bin/mypy --platform darwin services/localfarm services/worker/runners/process.py
	$(VENV)/bin/lint-imports

test: venv system-deps lint
	$(VENV)/bin/pytest -m "not bench" tests

bench: venv system-deps
	$(VENV)/bin/pytest -m bench -s -p no:randomly tests/bench

# Celery (Redis on loopback, installed under ~/.cache/peerbench) beside Tablao in one run; prints the ratios
bench-peers: venv system-deps
	$(VENV)/bin/python scripts/bench_peers.py

screenshots: venv
	QT_QPA_PLATFORM=offscreen $(PY) -m app.screenshots docs/screenshots
	QT_QPA_PLATFORM=offscreen $(PY) -m app.tray.screenshots docs/screenshots
	QT_QPA_PLATFORM=offscreen $(PY) -m app.admin_screenshots docs/screenshots

# The one-folder bundle in dist/tablao/ (tablao, tablao-desktop, tablao-tray); on Linux also the release tarball
# dist/tablao-VERSION-linux-ARCH.tar.gz. Windows installer: packaging/windows/build_installer.py (see
# docs/operations.md); macOS: dist/Tablao.app, made by the same spec on a Mac.
package: venv
	cd packaging && ../$(VENV)/bin/pyinstaller --noconfirm --distpath ../dist --workpath ../build tablao.spec
	@if [ "$$(uname)" = Linux ]; then $(PY) packaging/linux/make_tarball.py dist/tablao dist; fi

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache
