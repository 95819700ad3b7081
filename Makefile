# The two commands of the README: `make run` (the whole system on the embedded default) and
# `make test` (lint and the test suite against real Redis, FerretDB, a Celery worker and the model).
.PHONY: setup run test lint

setup:
	./scripts/setup.sh

run: setup
	.venv/bin/python -m embedded

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

test: lint
	.venv/bin/python -m pytest
