#!/usr/bin/env bash
# Install what is missing (with espeak-ng and Chromium for the tests), then run pytest with these arguments.
set -euo pipefail
# shellcheck source=scripts/install.sh
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"
install_all --test
cd "$XTTS_ROOT"
# Many tests start the CLI in a process of its own: let Python keep compiled bytecode, or each one spends
# ~10 s of CPU recompiling torch, transformers and gradio (some environments set PYTHONDONTWRITEBYTECODE).
unset PYTHONDONTWRITEBYTECODE
# --no-sync: a plain `uv run` would sync, putting back the PyPI torch in place of the CUDA build chosen above.
exec "$UV" run --no-sync pytest "$@"
