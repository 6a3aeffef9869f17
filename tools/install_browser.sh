#!/usr/bin/env bash
# The dashboard's browser tests drive Debian's chromium (Playwright's own browser download does
# not work here). Install it if it is missing: apt-get as root, or through sudo; one install at a
# time (a lock, so parallel `make test` runs do not race apt). Exits 0 when chromium is there,
# and also when it cannot be installed (no apt, no root): the browser tests then skip, saying so.
set -euo pipefail

CHROMIUM="${STRIKECHAIN_CHROMIUM:-/usr/bin/chromium}"
LOCK="${TMPDIR:-/tmp}/strikechain-install-browser.lock"

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no apt-get; install chromium yourself (the browser tests skip)" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    AS_ROOT=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    AS_ROOT=(sudo -n)
else
    echo "install_browser: not root and no sudo; install chromium yourself (the browser tests skip)" >&2
    exit 0
fi

exec 9>"$LOCK"
flock 9
if [ -x "$CHROMIUM" ]; then  # another run installed it while this one waited
    exit 0
fi
echo "install_browser: installing chromium (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { "${AS_ROOT[@]}" apt-get update -qq \
    && "${AS_ROOT[@]}" apt-get install -y -qq --no-install-recommends chromium; }; then
    echo "install_browser: apt-get could not install chromium (the browser tests skip)" >&2
    exit 0
fi
"$CHROMIUM" --version >&2 || true
