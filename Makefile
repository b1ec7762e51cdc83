# recon: every target does its own set-up on a fresh machine (uv is bootstrapped with pip).
SHELL := /bin/bash
UV := python3 -m uv
RUN := $(UV) run --locked --all-extras

.PHONY: setup demo test lint pytest bench chaos clean

setup:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --locked --all-extras --quiet

demo: setup
	$(RUN) recon demo

test: setup lint pytest

lint:
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy recon pipelines expectations
	@if ls models/**/*.sql models/*.sql >/dev/null 2>&1 || find models -name '*.sql' | grep -q .; then \
		$(RUN) sqlfluff lint models; \
	fi

pytest:
	$(RUN) pytest -n 2 --dist loadgroup

bench: setup
	$(RUN) recon bench --size S

clean:
	rm -rf target logs .pytest_cache .mypy_cache .ruff_cache recon.duckdb* worlds/
