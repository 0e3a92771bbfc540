# Two entry points for a fresh Debian machine (run as root):
#   make demo   installs what is needed and runs a local compose into ./out
#   make test   installs the test dependencies and runs the whole test suite

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
SYSTEM_PACKAGES = qemu-utils xz-utils e2fsprogs fdisk tar gnupg oz libkrb5-dev openssl redis-server postgresql rabbitmq-server chromium chromium-driver qemu-system-x86 debootstrap genisoimage grub-pc-bin grub-efi-amd64-bin ovmf dosfstools mtools openssh-client binutils socat

.PHONY: demo demo-boot test deps system-deps services clean

system-deps:
	@bash .ci/system-deps.sh $(SYSTEM_PACKAGES)

# The message schemas are their own small package (messages/): installed first, so that
# rel-eng's dependency on it is met from this tree.
$(VENV)/.installed: pyproject.toml messages/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./messages
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

deps: system-deps $(VENV)/.installed

services:
	@bash .ci/services.sh

demo: deps
	$(VENV)/bin/rel-eng validate
	$(VENV)/bin/rel-eng compose --release 19 --milestone Alpha --output out
	$(VENV)/bin/rel-eng compose --release rawhide --weekly --output out
	@find out/mirror -maxdepth 6 | sort
	@echo "next: 'make demo-boot' boots a real (Debian-based) test appliance through rel-eng boot-test"

# Builds the Debian-based test appliance once (a few minutes; cached in ~/.cache/rel-eng/fixtures)
# and boots it through the gate: one line per check and a verdict.
demo-boot: deps
	$(PY) -m rel_eng.boottest.fixture amd64 > out-fixture.path
	$(VENV)/bin/rel-eng boot-test --kickstart "$$(sed -n 2p out-fixture.path)" \
		--logs out/boot-test --packages-dir out/boot-test "$$(sed -n 1p out-fixture.path)"
	@rm -f out-fixture.path

# pytest exits 5 when it collects nothing: a suite that finds no test is broken, say so.
# REL_ENG_NO_SKIPS=1: a skipped test fails the run unless tests/skip_gate.py allows it, with why.
test: deps services
	@REL_ENG_NO_SKIPS=1 $(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) out
