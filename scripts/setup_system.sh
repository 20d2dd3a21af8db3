#!/usr/bin/env bash
# Installs the Debian packages puppetcam needs when run as root; otherwise lists the missing ones.
#   scripts/setup_system.sh runtime   # what `make setup` needs
#   scripts/setup_system.sh test      # what `make test` needs in addition
set -u
RUNTIME="libportaudio2 libgl1 libglib2.0-0"
TEST="espeak-ng sox ffmpeg pulseaudio pulseaudio-utils chromium xvfb"
case "${1:-runtime}" in
  runtime) want="$RUNTIME" ;;
  test) want="$RUNTIME $TEST" ;;
  *) echo "usage: $0 runtime|test" >&2; exit 2 ;;
esac
command -v dpkg-query >/dev/null 2>&1 || { echo "setup: not a Debian/Ubuntu system; install the equivalents of: $want"; exit 0; }
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ]; then
  echo "setup: installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null \
    || { echo "setup: apt-get install failed for:$missing" >&2; exit 1; }
else
  echo "setup: missing Debian packages:$missing"
  echo "setup: install them with: sudo apt-get install$missing"
  [ "${1:-runtime}" = "test" ] && echo "setup: tests that need them will be skipped with that reason"
fi
exit 0
