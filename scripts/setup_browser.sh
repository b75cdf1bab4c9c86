#!/usr/bin/env bash
# The browser the report tests drive (tests/test_report.py): Debian's chromium and its
# chromedriver, where apt can install them. `make test` runs this after setup.sh; nothing
# else needs a browser. Safe and fast to run again.
set -euo pipefail
say() { echo "setup_browser: $*"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi
}
if command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && { as_root apt-get update -qq && \
     as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >/dev/null 2>&1; then
  say "installed chromium and chromium-driver"
else
  say "could not install chromium and chromium-driver with apt; the browser tests of tests/test_report.py will be skipped"
fi
