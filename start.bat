@echo off
rem Install what is missing, then open the web UI at http://127.0.0.1:7860 (arguments go to `xtts-finetune ui`).
call "%~dp0install.bat" || exit /b 1
cd /d "%~dp0"
rem --no-sync: a plain `uv run` would sync, putting back PyPI's CPU-only torch in place of the CUDA build.
"%UV%" run --no-sync xtts-finetune ui %*
