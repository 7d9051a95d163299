#!/usr/bin/env bash
# Install Debian's Chromium for the real-browser test (tests/browser/).
# Idempotent and never fails: without Chromium the browser test skips with a reason.
# Playwright's own browser download does not work on these machines, so the test
# drives /usr/bin/chromium through Playwright's `executable_path`.
set -u

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install_browser: $CHROMIUM already present"
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: installing Debian's chromium (apt-get)..."
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq chromium >/dev/null; then
        echo "install_browser: installed $CHROMIUM"
    else
        echo "install_browser: apt-get install chromium failed;" \
             "the browser tests (tests/browser) will be skipped." >&2
    fi
else
    echo "install_browser: $CHROMIUM not found and cannot install it (needs root and apt-get)." >&2
    echo "install_browser: the browser tests (tests/browser) will be skipped;" \
         "run 'sudo apt-get install chromium' to enable them." >&2
fi
exit 0
