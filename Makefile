# Entry points: `make test` (what CI runs) and `make demo` (the upgrade run against the
# simulator). Both create their own virtual environment from the pinned requirements.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
COLLECTIONS := $(CURDIR)/.build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/ucops/webex
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(BIN):$(PATH)

.PHONY: venv collection test unit integration lint demo bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Ansible finds the collection through ANSIBLE_COLLECTIONS_PATH; a symbolic link keeps
# the working tree as the single copy.
collection:
	mkdir -p $(dir $(COLLECTION_LINK))
	ln -sfn $(CURDIR) $(COLLECTION_LINK)

unit: venv collection
	$(BIN)/pytest tests/unit

integration: venv collection
	$(BIN)/pytest -n 2 tests/integration

lint: venv
	$(BIN)/ruff check plugins tests

test: venv collection lint
	$(BIN)/pytest -n 2 tests/unit tests/integration

clean:
	rm -rf $(VENV) .build .pytest_cache
