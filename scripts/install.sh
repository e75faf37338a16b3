#!/usr/bin/env bash
# Install what xtts-finetune needs, and only what is missing: running it again is quick.
#
#   bash scripts/install.sh          FFmpeg, uv, the Python environment (.venv, without the dev group), the torch
#                                    build for this machine, chosen before any torch is downloaded
#   bash scripts/install.sh --test   the same with the dev group (pytest, Playwright...), espeak-ng and Chromium
#
# Debian/Ubuntu (apt-get, as root or with sudo) and macOS (Homebrew). start.sh and test.sh source this
# file and call install_all, so they learn where uv is even when it had to go into a private venv.
# Written for bash 3.2 too (macOS): no empty arrays under `set -u`.
set -euo pipefail

XTTS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PRIVATE_UV="${XDG_DATA_HOME:-$HOME/.local/share}/xtts-finetune/uv"
UV=""

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif have sudo; then sudo "$@"
  else die "run as root, or install sudo, to let this script run: $*"
  fi
}

apt_install() {  # apt_install PACKAGE...  (refreshes the package lists first: a fresh image has none)
  local packages=" $* "
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # Ubuntu ships Chromium only as a snap, which containers cannot run: install_all uses Playwright's there.
  if [[ "$packages" == *" chromium "* ]] && ! apt-cache show chromium >/dev/null 2>&1; then
    packages="${packages/ chromium / }"
  fi
  say "installing$packages with apt-get"
  # shellcheck disable=SC2086  # word splitting of the package list is intended
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages
}

have_chromium() { have chromium || have chromium-browser; }

system_packages() {  # system_packages 0|1 (1: the test suite's packages too)
  local missing=""
  have python3 || missing="$missing python3 python3-venv"
  have ffmpeg || missing="$missing ffmpeg"
  if [ "$1" = 1 ]; then
    have espeak-ng || missing="$missing espeak-ng"
    have_chromium || missing="$missing chromium"
  fi
  [ -n "$missing" ] || return 0
  if have apt-get; then
    [ -e /etc/ssl/certs/ca-certificates.crt ] || missing="$missing ca-certificates"
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    apt_install $missing
  elif have brew; then
    local formulas=""
    for package in $missing; do
      case "$package" in
        python3) formulas="$formulas python@3.12" ;;
        ffmpeg | espeak-ng) formulas="$formulas $package" ;;
      esac  # python3-venv comes with python; Chromium comes from Playwright below
    done
    # shellcheck disable=SC2086
    [ -z "$formulas" ] || { say "installing$formulas with Homebrew"; brew install $formulas; }
  else
    die "missing:$missing. Install them with your package manager (or Homebrew on macOS), then run this again."
  fi
}

find_uv() {
  if have uv; then command -v uv
  elif [ -x "$PRIVATE_UV/bin/uv" ]; then echo "$PRIVATE_UV/bin/uv"
  else python3 -c 'from uv import find_uv_bin; print(find_uv_bin())' 2>/dev/null
  fi
}

ensure_uv() {
  UV="$(find_uv || true)"
  [ -z "$UV" ] || return 0
  say "installing uv with pip"
  if ! python3 -m pip install --quiet uv >/dev/null 2>&1 || ! UV="$(find_uv)"; then
    # No pip, or a Python that refuses pip installs (PEP 668): give uv a venv of its own.
    say "pip cannot install here; putting uv in its own environment at $PRIVATE_UV"
    if ! python3 -m venv "$PRIVATE_UV" >/dev/null 2>&1; then
      rm -rf "$PRIVATE_UV"
      have apt-get || die "python3 cannot create a virtual environment; install python3-venv (or uv) and run this again"
      apt_install python3-venv
      python3 -m venv "$PRIVATE_UV"
    fi
    "$PRIVATE_UV/bin/python" -m pip install --quiet uv
    UV="$PRIVATE_UV/bin/uv"
  fi
  "$UV" --version >/dev/null || die "uv at $UV does not run"
}

read_plan() {  # read_plan [--dev]: installer.py's KEY=value lines become shell variables
  local plan key value
  plan="$(python3 "$XTTS_ROOT/src/xtts_finetune/installer.py" "$@")" || die "src/xtts_finetune/installer.py failed"
  while IFS='=' read -r key value; do
    case "$key" in TORCH_* | TORCHAUDIO_* | SYNC_*) printf -v "$key" '%s' "$value" ;; esac
  done <<<"$plan"
}

sync_env() {  # sync_env [uv sync flags]: the locked environment, with Whisper's CUDA 12 libraries on NVIDIA Linux
  # CTranslate2 (faster-whisper) links cuBLAS 12 / cuDNN 9; torch's CUDA 13 build does not ship them.
  if [ "${TORCH_DEVICE:-}" = cuda ] && [ "$(uname -s)" = Linux ]; then
    "$UV" sync --frozen --project "$XTTS_ROOT" --extra whisper-gpu "$@"
  else
    "$UV" sync --frozen --project "$XTTS_ROOT" "$@"
  fi
}

install_torch_build() {  # torch from PyTorch's index (TORCH_FROM), or PyPI's put back (TORCH_PYPI_BACK)
  if [ -n "$TORCH_FROM" ]; then
    say "installing torch $TORCH_VERSION from $TORCH_FROM"
    if ! "$UV" pip install --python "$XTTS_ROOT/.venv/bin/python" --index-url "$TORCH_FROM" \
      --reinstall-package torch --reinstall-package torchaudio \
      "torch==$TORCH_VERSION" "torchaudio==$TORCHAUDIO_VERSION"; then
      say "warning: installing from $TORCH_FROM failed; installing PyPI's build of torch instead"
      # shellcheck disable=SC2086  # SYNC_GROUPS' words are flags
      sync_env $SYNC_GROUPS --reinstall-package torch --reinstall-package torchaudio
    fi
  elif [ "$TORCH_PYPI_BACK" = 1 ]; then
    say "putting back the torch build uv.lock pins (installed: $TORCH_INSTALLED)"
    # shellcheck disable=SC2086
    sync_env $SYNC_GROUPS --reinstall-package torch --reinstall-package torchaudio
  fi
}

install_all() {  # install_all [--test]; sets UV
  local tests=0 dev=""
  [ "${1:-}" != --test ] || { tests=1; dev=--dev; }
  system_packages "$tests"
  ensure_uv
  # shellcheck disable=SC2086  # empty or --dev
  read_plan $dev
  [ "$TORCH_SUPPORTED" = 1 ] || die "$TORCH_REASON"
  say "torch: $TORCH_REASON"
  [ -z "$TORCH_NOTE" ] || say "$TORCH_NOTE"
  if [ "$SYNC_NEEDED" = 1 ]; then
    say "installing the Python environment into $XTTS_ROOT/.venv (uv sync --frozen $SYNC_GROUPS $SYNC_FLAGS)"
    # shellcheck disable=SC2086  # their words are flags
    sync_env $SYNC_GROUPS $SYNC_FLAGS
    # shellcheck disable=SC2086
    python3 "$XTTS_ROOT/src/xtts_finetune/installer.py" --mark-synced $dev
  fi
  install_torch_build
  if [ "$tests" = 1 ] && ! have_chromium; then
    say "no system Chromium: installing Playwright's"
    "$UV" run --no-sync --project "$XTTS_ROOT" playwright install --with-deps chromium
  fi
  say "ready"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  install_all "$@"
fi
