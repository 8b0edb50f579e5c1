#!/usr/bin/env bash
# Installs the Debian packages convai's demo and tests need, when they are missing.
#   espeak-ng, flite          offline voices: synthetic speech datasets (convai asr synth)
#   pocketsphinx-testdata     real recorded speech with transcripts (evaluation, regression tests)
#   asterisk-moh-opsound-wav  recorded music at 8 kHz: noise from a manifest (asr/noise tests)
#   cmake, g++, Boost, zlib   to build KenLM's lmplz and build_binary from the kenlm sdist
#                             (convai lm build does it on first use; see convai_asr.lm.kenlm_tools)
#   chromium, chromium-driver a headless browser for the Speech Data Explorer's browser test
#                             (selenium drives /usr/bin/chromium through /usr/bin/chromedriver)
# Idempotent and fast when everything is there; says what to run when it cannot install.
set -euo pipefail
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v flite >/dev/null 2>&1 || missing+=(flite)
[ -d /usr/share/pocketsphinx/test/data/librivox ] || missing+=(pocketsphinx-testdata)
[ -d /usr/share/asterisk/moh ] || missing+=(asterisk-moh-opsound-wav)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
for dev in libboost-program-options-dev libboost-system-dev libboost-thread-dev \
  libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev; do
  dpkg -s "$dev" >/dev/null 2>&1 || missing+=("$dev")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "convai: missing Debian packages: ${missing[*]}" >&2
  echo "        install them with: apt-get install ${missing[*]}" >&2
  exit 1
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "convai: installing Debian packages: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
