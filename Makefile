# Entry points: `make test` (what CI runs) and `make demo` (the upgrade run against the
# simulator). Both create their own virtual environment from the pinned requirements.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
COLLECTIONS := $(CURDIR)/.build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/ucops/webex
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(BIN):$(PATH)

.PHONY: conformance shellcheck sanity ansible-lint docs-check build-check changelog-lint
.PHONY: venv collection test unit integration lint demo molecule bench clean

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

test: venv collection lint conformance
	$(BIN)/pytest -n 2 tests/unit tests/integration

# Starts the simulator, upgrades the demo customers, prints the license report, checks that a
# second upgrade changes nothing, and stops the simulator (scripts/demo.sh).
demo: venv collection
	scripts/demo.sh

# The Molecule scenario of each role, on localhost against the simulator (no containers).
molecule: venv collection
	for role in license_defaults license_sync upgrade_21_1; do \
	  (cd roles/$$role && $(BIN)/molecule test) || exit 1; \
	done

# Benchmark against the simulator (not part of `make test`; about 13 minutes on a quiet
# machine with 2 CPUs).
# Writes bench/RESULTS.md and bench/results.json; BENCH_ARGS=--quick for a smoke run.
BENCH_VENV := $(CURDIR)/.build/bench-venv

$(BENCH_VENV)/.installed: bench/requirements.txt
	rm -rf $(BENCH_VENV)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements.txt
	touch $@

bench: venv collection $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/run.py $(BENCH_ARGS)

# --- Ansible conformance checks (part of `make test`) -----------------------------------
SANITY_ROOT := $(CURDIR)/.build/sanity/ansible_collections/ucops/webex
SANITY_PYTHON := 3.11
DIST := $(CURDIR)/.build/dist
INSTALL_VENV := $(CURDIR)/.build/install-venv
INSTALL_COLLECTIONS := $(CURDIR)/.build/install-collections
CONFORMANCE := sanity ansible-lint docs-check build-check changelog-lint

conformance: $(CONFORMANCE)

# ansible-test resolves symbolic links and needs the collection at a real
# .../ansible_collections/ucops/webex path, so it checks a copy of every file that git
# tracks or would track. The copy gets an empty git repository of its own: otherwise
# ansible-test uses the repository above it, where .build is ignored, and skips every file.
# The cached get-pip stand-in lets `--requirements` create its virtual environments
# without the download host that ansible-test would otherwise use.
# shellcheck comes from the system's packages; without it ansible-test skips the shell
# script check with a warning, so a failed install does not stop the build.
shellcheck:
	@command -v shellcheck >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq shellcheck >/dev/null 2>&1; } \
	  || echo "shellcheck is not installed: ansible-test sanity skips the shell script check"

sanity: venv shellcheck
	rm -rf $(dir $(SANITY_ROOT))
	mkdir -p $(SANITY_ROOT)
	git ls-files -z --cached --others --exclude-standard \
	  | xargs -0 sh -c 'for path; do if [ -e "$$path" ]; then printf "%s\0" "$$path"; fi; done' sh \
	  | xargs -0 cp --parents -t $(SANITY_ROOT)
	git -C $(SANITY_ROOT) init --quiet
	$(BIN)/python hacking/install_get_pip_offline.py
	cd $(SANITY_ROOT) && env -u ANSIBLE_COLLECTIONS_PATH \
	  $(BIN)/ansible-test sanity --python $(SANITY_PYTHON) --requirements $(SANITY_ARGS)

# Production profile on the roles and playbooks that exist (settings in .ansible-lint).
ansible-lint: venv collection
	@targets="$$(ls -d roles/*/ playbooks/*.yml 2>/dev/null)"; \
	if [ -z "$$targets" ]; then echo "ansible-lint: no roles or playbooks to lint"; \
	else echo ansible-lint $$targets; $(BIN)/ansible-lint --offline --nocolor $$targets; fi

# ansible-doc of every module and role; a warning or error on stderr fails the check.
docs-check: venv collection
	@set -e; \
	for path in plugins/modules/*.py roles/*/; do \
	  case "$$path" in \
	    plugins/modules/_*|plugins/modules/\**|roles/\**) continue ;; \
	    roles/*) kind=role; name=$$(basename "$$path") ;; \
	    *) kind=module; name=$$(basename "$$path" .py) ;; \
	  esac; \
	  echo "ansible-doc -t $$kind ucops.webex.$$name"; \
	  $(BIN)/ansible-doc -t $$kind ucops.webex.$$name > .build/ansible-doc.out 2> .build/ansible-doc.err \
	    || { cat .build/ansible-doc.err; exit 1; }; \
	  if [ -s .build/ansible-doc.err ]; then cat .build/ansible-doc.err; exit 1; fi; \
	done

# Build the collection tarball and install it into an empty collections path, with
# ansible-core (with its cryptography) and requests at the pinned versions in a virtual
# environment of its own.
# Every module and role must be listed from the installed copy.
$(INSTALL_VENV)/.installed: requirements-dev.txt
	rm -rf $(INSTALL_VENV)
	$(PYTHON) -m venv $(INSTALL_VENV)
	$(INSTALL_VENV)/bin/pip install --quiet $$(grep -E '^(ansible-core|cryptography|requests)==' requirements-dev.txt)
	touch $@

build-check: venv $(INSTALL_VENV)/.installed
	rm -rf $(DIST) $(INSTALL_COLLECTIONS)
	$(BIN)/ansible-galaxy collection build --output-path $(DIST) .
	cd $(DIST) && ANSIBLE_COLLECTIONS_PATH=$(INSTALL_COLLECTIONS) \
	  $(INSTALL_VENV)/bin/ansible-galaxy collection install --offline $(DIST)/ucops-webex-*.tar.gz
	cd $(DIST) && ANSIBLE_COLLECTIONS_PATH=$(INSTALL_COLLECTIONS) ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
	  $(INSTALL_VENV)/bin/ansible-doc -l ucops.webex > $(DIST)/modules.txt
	cd $(DIST) && ANSIBLE_COLLECTIONS_PATH=$(INSTALL_COLLECTIONS) ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
	  $(INSTALL_VENV)/bin/ansible-doc -t role -l ucops.webex > $(DIST)/roles.txt
	@set -e; missing=0; \
	for path in plugins/modules/*.py roles/*/; do \
	  case "$$path" in \
	    plugins/modules/_*|plugins/modules/\**|roles/\**) continue ;; \
	    roles/*) list=roles.txt; name=$$(basename "$$path") ;; \
	    *) list=modules.txt; name=$$(basename "$$path" .py) ;; \
	  esac; \
	  if ! grep -q "^ucops\.webex\.$$name[[:space:]:]" $(DIST)/$$list; then \
	    echo "ucops.webex.$$name is missing from the installed collection ($$list)"; missing=1; \
	  fi; \
	done; \
	[ $$missing -eq 0 ] && echo "build-check: every module and role is listed from $$(ls $(DIST)/*.tar.gz)"
	# The demo again, with ansible-playbook, roles and playbooks of the installed copy only.
	DEMO_ANSIBLE_BIN_DIR=$(INSTALL_VENV)/bin DEMO_COLLECTIONS_PATH=$(INSTALL_COLLECTIONS) \
	  DEMO_PLAYBOOK_DIR=$(INSTALL_COLLECTIONS)/ansible_collections/ucops/webex/playbooks \
	  DEMO_DIR=$(CURDIR)/.build/demo-installed scripts/demo.sh > $(DIST)/demo.log 2>&1 \
	  || { tail -n 40 $(DIST)/demo.log; exit 1; }
	@echo "build-check: the demo ran from the installed collection (log: $(DIST)/demo.log)"

changelog-lint: venv
	$(BIN)/antsibull-changelog lint

clean:
	rm -rf $(VENV) .build .pytest_cache
