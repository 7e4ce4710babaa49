#!/usr/bin/env bash
# Make sure headless Chromium is available for the report's browser tests; prints its path.
#   .ci/chromium.sh
# Installs Debian's `chromium` (and a font) when missing; needs root, as in CI. Output: the path on stdout.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "chromium.sh: chromium is missing and this is not root: apt-get install chromium" >&2; exit 1
  fi
  echo "chromium.sh: installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
fi
command -v chromium
