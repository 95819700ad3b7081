# The two commands of the README: `make run` (the whole system on the embedded default) and
# `make test` (lint and the test suite against real Redis, FerretDB, a Celery worker and the model,
# the web page in Debian's Chromium).
.PHONY: setup test-setup run test lint mutation

setup:
	./scripts/setup.sh

test-setup:
	./scripts/setup.sh --test

run: setup
	.venv/bin/python -m embedded

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

test: test-setup lint
	.venv/bin/python -m pytest

# Mutation testing of the pure modules (the list is [tool.mutmut] in pyproject.toml); slow, not in `make test`.
mutation: setup
	.venv/bin/mutmut run
	.venv/bin/mutmut export-cicd-stats
	.venv/bin/mutmut results
	.venv/bin/python scripts/mutation_score.py
