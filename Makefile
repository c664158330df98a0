# The two commands of the README: `make run` and `make test`.
# Both set themselves up on a fresh Debian machine (as root, or with sudo for apt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint setup mosquitto

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r source/requirements.txt

# Integration tests start their own Mosquitto and HAProxy (and make throwaway
# certificates with openssl), and read the status page in Chromium; install
# them from Debian when missing.
mosquitto:
	@{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } && \
		{ command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; } && \
		command -v openssl >/dev/null 2>&1 && \
		[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto haproxy openssl chromium chromium-driver; }

run: setup
	$(BIN)/python source/connector/main.py

test: setup mosquitto
	$(BIN)/python -m pytest source/connector/tests

lint: setup
	$(BIN)/pip install --quiet --disable-pip-version-check -r source/requirements-dev.txt
	$(BIN)/ruff check source bench
	$(BIN)/ruff format --check source bench
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile
