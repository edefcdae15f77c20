# Two commands for a newcomer: `make run` and `make test`. Both go through `make install`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run dev test test-fast bench clean system-deps mutate

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

system-deps:
	bash scripts/system-deps.sh

run: install
	$(BIN)/flask --app app crm init
	$(BIN)/flask --app app crm user create admin --password "$${ADMIN_PASSWORD:-admin-Passw0rd}" --role admin --if-missing
	$(BIN)/flask --app app crm demo --records 200 --if-empty
	@echo "Admin login: admin / $${ADMIN_PASSWORD:-admin-Passw0rd}"
	@echo "API token (Authorization: Bearer ...):"
	@$(BIN)/flask --app app crm token create --user admin | tail -n 1
	$(BIN)/gunicorn --bind 127.0.0.1:$${PORT:-5000} --workers $${WEB_WORKERS:-2} --threads 4 --timeout 120 \
		--access-logfile - "app:create_app()"

# The Flask development server with the reloader (developers; `make run` serves with gunicorn).
dev: install
	$(BIN)/flask --app app crm init
	$(BIN)/flask --app app run --host 127.0.0.1 --port $${PORT:-5000} --reload

test: install system-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: install
	$(BIN)/python -m pytest -q -x -m "not e2e"

# Mutation testing (docs/testing.md), not part of `make test`: one module, or every module listed in
# scripts/mutate.py. Reports: build/mutation/<module>.md. MUTATE_CHILDREN: parallel mutants (1 = share the machine).
mutate: install
	$(BIN)/pip install -q 'mutmut==3.8.1'
	$(BIN)/python scripts/mutate.py --max-children $${MUTATE_CHILDREN:-1} $(MODULE)

bench: install
	$(BIN)/python -m bench --records $${BENCH_RECORDS:-100000}

clean:
	rm -rf $(VENV) instance/*.db
