# recon: every target does its own set-up on a fresh machine (uv is bootstrapped with pip).
# setup compiles the dependencies' bytecode when it installs them: with PYTHONDONTWRITEBYTECODE
# set (as on the CI image) Python would otherwise compile dbt, dlt and GX again in every
# process, about 8 s before `recon build` or a test's subprocess does anything.
SHELL := /bin/bash
UV := python3 -m uv
RUN := $(UV) run --locked --all-extras

.PHONY: setup demo test test-deps lint pytest bench chaos clean

setup:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --locked --all-extras --quiet --compile-bytecode

demo: setup
	$(RUN) recon demo

test: setup test-deps lint pytest

# What the tests need beyond Python: Debian's Chromium for the report's browser test and
# PostgreSQL 15 for the parity test (the tests start a throwaway server themselves).
test-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	test -x /usr/lib/postgresql/15/bin/initdb || missing="$$missing postgresql-15"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (Debian) for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

lint:
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy recon pipelines expectations
	$(RUN) sqlfluff lint models

pytest:
	$(RUN) pytest -n 2 --dist loadgroup

bench: setup
	$(RUN) recon bench --size S

# Crash and fault the whole pipeline (SIGKILLs in ingest, build and sync; 5xx, dropped
# connections, timeouts, slow answers, 429 storms) and check it converges to a clean run.
chaos: setup
	$(RUN) recon chaos

clean:
	rm -rf target logs .pytest_cache .mypy_cache .ruff_cache recon.duckdb* worlds/
