#!/usr/bin/env bash
# Builds the image, tagged with __version__ from source/connector/main.py.
set -euo pipefail
cd "$(dirname "$0")"
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' source/connector/main.py)
docker build -t "ocpp-connector:${version}" -t ocpp-connector:latest .
