#!/usr/bin/env bash
# Debian's Chromium for the browser test (tests/test_browser.py), driven by Playwright with
# executable_path=/usr/bin/chromium. Playwright's own browser download is never used.
# fonts-noto-cjk: without it the Chinese pages render as empty boxes in the screenshots.
# Idempotent: does nothing when both are installed. Needs root (or sudo) and Debian's archive.
set -euo pipefail

packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || packages+=(fonts-noto-cjk)
if [ ${#packages[@]} -eq 0 ]; then
    echo "install-browser: chromium and fonts-noto-cjk already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "install-browser: installing ${packages[*]}"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${packages[@]}"
/usr/bin/chromium --version
