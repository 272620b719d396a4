# mailmig: `make demo` and `make test` are the two commands; each installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON    ?= $(shell command -v python3.11 || command -v python3)
VENV      := .venv
MAILMIG   := $(VENV)/bin/mailmig
EMAILS_DB ?= data/emails.db
AUTH_DB   ?= data/auth.db
# small: a quick demo dataset; seed: the seed plan's volume (261,000 emails, 250,000 accounts)
SCALE     ?= small
ifeq ($(SCALE),seed)
  DATA_ARGS := --emails 261000 --accounts 250000
else ifeq ($(SCALE),small)
  DATA_ARGS := --emails 5000 --accounts 4000
else
  $(error SCALE must be small or seed, not '$(SCALE)')
endif
DATA_DIR  ?= data
# The last day of the generated mail; fixed so that `make demo` on another day makes the
# same files (a re-run then adds nothing). DEMO_END=today for mail ending today.
DEMO_END  ?= 2026-11-01
ifeq ($(DEMO_END),today)
  DEMO_END := $(shell date -u +%F)
endif
# Extra arguments for `mailmig load` / `mailmig validate`, e.g. LOAD_ARGS='--loader copy'
LOAD_ARGS ?=
VALIDATE_ARGS ?=
# Extra arguments for `mailmig sync`, e.g. SYNC_ARGS='--batch-rows 1000'
SYNC_ARGS ?=
# Extra arguments for `mailmig bench`, e.g. BENCH_ARGS='--writers 1,10 --no-volume'
BENCH_ARGS ?=

.PHONY: help setup system venv demo demo-data db-up db-down db-status schema load validate \
        capture-install capture-status capture-uninstall sync sync-follow bench-sync \
        cron-install reverse-capture-install sync-reverse cutover rollback rehearse serve test test-unit test-func bench bench-quick bench-load bench-validate bench-retention fuzz bench-demo-data \
        clean distclean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: system venv ## install the Debian packages and the venv (idempotent, quick when done)

system: ## Debian packages: PostgreSQL server + pg_cron of the installed major, pgloader, sqlite3
	@bash scripts/install-system-packages.sh

venv: $(VENV)/.installed ## the .venv with mailmig (editable) and its test extras

$(VENV)/.installed: pyproject.toml | system
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test,bench]'
	@touch $@

demo: setup ## the main job end to end on the embedded default: data, cluster, schema, load, validate
	$(MAKE) --no-print-directory demo-data
	$(MAKE) --no-print-directory db-up schema
	$(MAKE) --no-print-directory load
	$(MAKE) --no-print-directory validate

demo-data: venv ## generate a legacy dataset into data/ (SCALE=small|seed, DEMO_END=YYYY-MM-DD|today)
	$(MAILMIG) demo-data $(DATA_ARGS) --end $(DEMO_END) --out $(DATA_DIR)

db-up: venv ## start the project-local cluster (.pgdata/), creating it on first use
	$(MAILMIG) db up

db-down: venv ## stop the project-local cluster
	$(MAILMIG) db down

db-status: venv ## state of the target server
	$(MAILMIG) db status

schema: db-up ## apply sql/: pending migrations, then new or changed definitions (migration.sql_ledger)
	$(MAILMIG) schema apply

load: schema ## migrate EMAILS_DB and AUTH_DB into PostgreSQL (LOAD_ARGS='--loader copy' for COPY)
	$(MAILMIG) load --emails-db $(EMAILS_DB) --auth-db $(AUTH_DB) $(LOAD_ARGS)

validate: db-up ## compare every row and column of the last load with its snapshot
	$(MAILMIG) validate $(VALIDATE_ARGS)

capture-install: venv ## change-capture triggers in EMAILS_DB and AUTH_DB (before `make load`; safe while the app writes)
	$(MAILMIG) capture install --emails-db $(EMAILS_DB) --auth-db $(AUTH_DB)

capture-status: venv ## capture installed or not, backlog, age of the oldest unapplied change
	$(MAILMIG) capture status --emails-db $(EMAILS_DB) --auth-db $(AUTH_DB)

capture-uninstall: venv ## remove the capture triggers and changelog from EMAILS_DB and AUTH_DB
	$(MAILMIG) capture uninstall --emails-db $(EMAILS_DB) --auth-db $(AUTH_DB)

sync: schema ## apply every captured change to PostgreSQL and exit (the position is the load's)
	$(MAILMIG) sync --emails-db $(EMAILS_DB) --auth-db $(AUTH_DB) $(SYNC_ARGS)

sync-follow: schema ## keep applying captured changes until Ctrl-C, printing lag and rows/s
	$(MAILMIG) sync --follow --emails-db $(EMAILS_DB) --auth-db $(AUTH_DB) $(SYNC_ARGS)

cron-install: schema ## install the pg_cron maintenance jobs (not part of load)
	$(MAILMIG) cron install

reverse-capture-install: schema ## record PostgreSQL's changes for a rollback (before the cut-over)
	$(MAILMIG) reverse-capture install

sync-reverse: venv ## after a cut-over: keep carrying PostgreSQL's changes back into the SQLite files (--follow)
	$(MAILMIG) sync --reverse --follow

cutover: venv ## switch the service from SQLite to PostgreSQL in a measured write pause (pre-checks first)
	$(MAILMIG) cutover

rollback: venv ## switch the service back to SQLite, keeping every email PostgreSQL received
	$(MAILMIG) rollback

# The rehearsal: RATE emails/s over SMTP (default 28: 100x the seed's 1,000 an hour),
# TRAFFIC_SECONDS of traffic on PostgreSQL after each cut-over.
RATE ?= 28
TRAFFIC_SECONDS ?= 20
rehearse: setup ## the whole live migration end to end under SMTP traffic, measured (SCALE=small|seed)
	$(MAILMIG) rehearse --scale $(SCALE) --rate $(RATE) --traffic-seconds $(TRAFFIC_SECONDS)

serve: schema ## the reference mail service: SMTP 127.0.0.1:2525, HTTP 127.0.0.1:4000 (DB_MODE=sqlite|dual|postgres)
	@test -f $(EMAILS_DB) -a -f $(AUTH_DB) || $(MAKE) --no-print-directory demo-data
	EMAILS_DB=$(EMAILS_DB) AUTH_DB=$(AUTH_DB) $(MAILMIG) serve

test: setup ## every test that does not need seed-scale data (unit + functional, real servers)
	$(VENV)/bin/pytest

test-unit: setup ## unit tests only (no server)
	$(VENV)/bin/pytest tests/unit

test-func: setup ## functional tests only (real PostgreSQL, SQLite, pgloader)
	$(VENV)/bin/pytest tests/func

bench: setup ## SQLite against PostgreSQL through the store, side by side (SCALE=seed for the figures that count)
	$(MAILMIG) bench --scale $(SCALE) $(BENCH_ARGS)

bench-quick: setup ## the bench's smoke run, under two minutes (small data, short phases)
	$(MAILMIG) bench --quick $(BENCH_ARGS)

bench-demo-data: setup ## time the generator at SCALE
	$(VENV)/bin/python bench/bench_demo_data.py $(DATA_ARGS)

bench-load: setup ## the load benchmark at SCALE (use SCALE=seed for the issue's figures)
	$(VENV)/bin/python bench/bench_load.py --scale $(SCALE)

bench-validate: setup ## the validation benchmark at SCALE (use SCALE=seed)
	$(VENV)/bin/python bench/bench_validate.py --scale $(SCALE)

bench-sync: setup ## the live sync: capture overhead, sync throughput, --follow lag, side by side (SCALE=seed)
	$(VENV)/bin/python bench/bench_sync.py --scale $(SCALE)

bench-group-commit: setup ## the store's group commit settings at 100 writers, side by side (after `make bench` at the same SCALE)
	$(VENV)/bin/python bench/bench_group_commit.py --scale $(SCALE)

# Extra arguments for the retention benchmark, e.g. RETENTION_ARGS='--writers 20 --seconds 10'
RETENTION_ARGS ?=
bench-retention: setup ## retention under ingest: 50 writers + readers, a 30,000-row month dropped, stalls with and without
	$(VENV)/bin/python bench/bench_retention.py $(RETENTION_ARGS)

FUZZ_EXAMPLES ?= 200
fuzz: setup ## the property tests at length: FUZZ_EXAMPLES (200) random examples each, failures kept in .hypothesis/
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/pytest tests/func/test_rules_agree.py tests/func/test_property_load.py

clean: ## remove runs/ and generated data/ (keeps the cluster)
	rm -rf runs data

distclean: ## stop and remove the local cluster, the venv, runs and data
	-@test -x $(MAILMIG) && $(MAILMIG) db down
	rm -rf .pgdata $(VENV) runs data .pytest_cache
