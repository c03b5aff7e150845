# The README's two commands: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash

.PHONY: install run test catalog bench bench-call-book infra-up infra-down infra-status

install:
	@deploy/bootstrap.sh

run: install
	@deploy/run.sh

test: install
	@deploy/with-infra.sh .venv/bin/python -m pytest $(PYTEST_ARGS)

# The event catalog (docs/asyncapi.yaml, the copy every service serves) and the schema of every
# event version (docs/schemas/), from the code; refuses a backward-incompatible change to a version.
catalog: install
	@.venv/bin/python -m cx_shared.catalog docs

# Figures, not pass/fail: whole exchanges over HTTP and Kafka (throughput, latencies, time to rest,
# CPU at rest) against a bare aiokafka + PyMongo pipeline. BENCH_APPLICATIONS (200), BENCH_CONCURRENCY (10).
bench: install
	@BENCH_APPLICATIONS=$(or $(BENCH_APPLICATIONS),200) BENCH_CONCURRENCY=$(or $(BENCH_CONCURRENCY),10) \
	  deploy/with-infra.sh .venv/bin/python benchmarks/lifecycle.py

# How assessment's call book grows with its applications (BENCH_APPLICATIONS, default 300).
bench-call-book: install
	@deploy/with-infra.sh .venv/bin/python benchmarks/call_book_growth.py $(or $(BENCH_APPLICATIONS),300)

infra-up: install
	@deploy/infra.sh up

infra-down:
	@deploy/infra.sh down

infra-status:
	@deploy/infra.sh status
