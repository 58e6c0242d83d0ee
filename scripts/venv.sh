#!/usr/bin/env bash
# Create .venv-autobahn with the pinned Autobahn runner (kosoku) if it is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-autobahn/bin/kosoku ]; then
  python3 -m venv .venv-autobahn
  .venv-autobahn/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-autobahn.txt
fi
echo .venv-autobahn
