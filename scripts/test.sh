#!/usr/bin/env bash
# Install what the test suite needs (Debian packages, Python packages) and run all of it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || need_apt+=(postgresql)
[ -x /usr/sbin/bearerbox ] || need_apt+=(kannel)
[ -x /usr/lib/kannel/test/fakesmsc ] || need_apt+=(kannel-extras)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m pip install -q -e '.[test]'
python3 -m pytest "$@"
