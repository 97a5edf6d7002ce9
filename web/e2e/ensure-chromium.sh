#!/usr/bin/env bash
# Installs Debian's chromium for the browser test when it is missing.
# Playwright's own browser download does not work here (no network but the
# package registries), so the test drives the distribution's build.
set -euo pipefail
bin="${CHROMIUM:-/usr/bin/chromium}"
if [[ -x $bin ]]; then
	exit 0
fi
if [[ $bin != /usr/bin/chromium ]]; then
	echo "chromium: CHROMIUM=$bin is not an executable" >&2
	exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
	sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	sudo=(sudo -n)
else
	echo "chromium: /usr/bin/chromium is missing; install it (sudo apt-get install -y chromium) and re-run" >&2
	exit 1
fi
command -v apt-get >/dev/null || { echo "chromium: missing, and apt-get is not available; install chromium or set CHROMIUM" >&2; exit 1; }
echo "chromium: installing Debian's chromium with apt-get (first time only, about a minute)"
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq chromium >/dev/null
echo "chromium: $("$bin" --version) installed in $((SECONDS - start))s"
