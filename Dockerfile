# syntax=docker/dockerfile:1
# xtts-finetune in a container: the same install as scripts/install.sh on Linux (apt FFmpeg, then
# `uv sync --frozen` from uv.lock), serving the web UI on port 7860.
#
#   docker build -t xtts-finetune .
#   docker run --gpus all -p 7860:7860 -v xtts-data:/data xtts-finetune        # then open http://127.0.0.1:7860
#   (log in with the password `docker logs` shows, or pass -e XTTS_FINETUNE_UI_AUTH=user:password)
#
# uv.lock pins PyPI's torch, the CUDA 13.0 build: the host needs NVIDIA driver 580 or newer. For an older
# driver, build with the index that `python3 src/xtts_finetune/installer.py` prints on the host:
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t xtts-finetune .
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX=""
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    XTTS_FINETUNE_HOME=/data/cache \
    HF_HOME=/data/cache/huggingface \
    PATH=/app/.venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir uv

WORKDIR /app
# Dependencies first, so editing the code does not reinstall torch.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev \
 && if [ -n "$TORCH_INDEX" ]; then \
      uv pip install --python /app/.venv/bin/python --index-url "$TORCH_INDEX" \
        --reinstall-package torch --reinstall-package torchaudio torch==2.11.0 torchaudio==2.11.0; \
    fi

# Workspaces and downloaded base models live in the /data volume, so they outlive the container.
WORKDIR /data
VOLUME /data
EXPOSE 7860
# In a container the UI must listen on all interfaces for `-p 7860:7860` to reach it (the default is 127.0.0.1),
# so it always has a login: XTTS_FINETUNE_UI_AUTH=user:password, or else a random password printed once in
# `docker logs`. Folder paths typed into the page are limited to /data/workspace (add --allowed-root FOLDER).
CMD ["xtts-finetune", "ui", "--host", "0.0.0.0", "--port", "7860", "--workspace", "/data/workspace", "--generate-auth"]
