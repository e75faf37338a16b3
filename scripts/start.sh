#!/usr/bin/env bash
# Install what is missing, then open the web UI at http://127.0.0.1:7860 (arguments go to `xtts-finetune ui`).
set -euo pipefail
# shellcheck source=scripts/install.sh
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"
install_all
# --no-sync: a plain `uv run` would sync, putting back the PyPI torch in place of the CUDA build chosen above.
exec "$UV" run --no-sync --project "$XTTS_ROOT" xtts-finetune ui "$@"
