@echo off
rem Install what xtts-finetune needs on Windows, and only what is missing: FFmpeg (shared build), uv,
rem the Python environment (.venv), and torch from the CUDA index that fits the NVIDIA driver
rem (PyPI's Windows torch is CPU-only). start.bat calls this; running it again is quick.
setlocal EnableExtensions EnableDelayedExpansion
cd /d "%~dp0"
set "INSTALLER=src\xtts_finetune\installer.py"
set "VENV_PY=.venv\Scripts\python.exe"
set "PATH=%LOCALAPPDATA%\Microsoft\WinGet\Links;%USERPROFILE%\.local\bin;%PATH%"

rem --- FFmpeg: torchcodec loads its DLLs from the folder ffmpeg.exe is in, so put the shared build first.
call :ffmpeg_on_path
if errorlevel 1 (
  where winget >nul 2>nul || (echo error: FFmpeg is missing and winget is not available. Install the FFmpeg "shared" build and put its bin folder on PATH. & exit /b 1)
  echo ==^> installing FFmpeg ^(shared build^) with winget
  winget install --id Gyan.FFmpeg.Shared -e --accept-package-agreements --accept-source-agreements || (echo error: winget could not install FFmpeg & exit /b 1)
  call :ffmpeg_on_path || (echo error: FFmpeg was installed but not found; open a new terminal and run this again & exit /b 1)
)

rem --- uv: from pip when a Python is here, otherwise from winget.
set "UV="
for /f "delims=" %%U in ('where uv 2^>nul') do if not defined UV set "UV=%%U"
if not defined UV (
  python -c "import sys; sys.exit(sys.version_info < (3, 8))" >nul 2>nul && (
    echo ==^> installing uv with pip
    python -m pip install --quiet --user uv && for /f "delims=" %%U in ('python -c "from uv import find_uv_bin; print(find_uv_bin())"') do set "UV=%%U"
  )
)
if not defined UV (
  echo ==^> installing uv with winget
  winget install --id astral-sh.uv -e --accept-package-agreements --accept-source-agreements || (echo error: could not install uv; see https://docs.astral.sh/uv/ & exit /b 1)
  for /f "delims=" %%U in ('where uv 2^>nul') do if not defined UV set "UV=%%U"
)
if not defined UV (echo error: uv was installed but not found; open a new terminal and run this again & exit /b 1)

rem --- The environment: `uv sync` only when uv.lock changed (a sync would undo the CUDA torch below).
set "SYNC_NEEDED=1"
if exist "%VENV_PY%" call :read_plan
if "!SYNC_NEEDED!"=="1" (
  echo ==^> installing the Python environment ^(uv sync --frozen^)
  "%UV%" sync --frozen || exit /b 1
  "%VENV_PY%" %INSTALLER% --mark-synced || exit /b 1
)

rem --- torch: the CUDA build this driver runs.
call :read_plan --probe || exit /b 1
if not "!TORCH_SUPPORTED!"=="1" (echo error: !TORCH_REASON! & exit /b 1)
echo ==^> torch: !TORCH_REASON!
if "!TORCH_REINSTALL!"=="1" (
  if not defined TORCH_INDEX (
    "%UV%" sync --frozen --reinstall-package torch --reinstall-package torchaudio || exit /b 1
  ) else if not "!TORCH_INDEX_REACHABLE!"=="1" (
    echo ==^> warning: cannot reach !TORCH_INDEX!; keeping torch !TORCH_INSTALLED! from PyPI, which runs on the CPU only.
    echo ==^>          Run this again once that index can be reached.
  ) else (
    echo ==^> installing torch !TORCH_VERSION! from !TORCH_INDEX!
    "%UV%" pip install --python "%VENV_PY%" --index-url "!TORCH_INDEX!" --reinstall-package torch --reinstall-package torchaudio "torch==!TORCH_VERSION!" "torchaudio==!TORCH_VERSION!"
    if errorlevel 1 (
      echo ==^> warning: that failed; putting back the PyPI build of torch
      "%UV%" sync --frozen --reinstall-package torch --reinstall-package torchaudio || exit /b 1
    )
  )
)
echo ==^> ready
rem Hand uv and the FFmpeg PATH to start.bat.
endlocal & set "UV=%UV%" & set "PATH=%PATH%"
exit /b 0

:read_plan
for %%K in (TORCH_VERSION TORCH_DEVICE TORCH_INDEX TORCH_SUPPORTED TORCH_REASON TORCH_INSTALLED TORCH_REINSTALL TORCH_INDEX_REACHABLE) do set "%%K="
for /f "tokens=1,* delims==" %%A in ('%VENV_PY% %INSTALLER% %*') do set "%%A=%%B"
if not defined TORCH_DEVICE (echo error: %INSTALLER% failed & exit /b 1)
exit /b 0

:ffmpeg_on_path
for /d %%P in ("%LOCALAPPDATA%\Microsoft\WinGet\Packages\Gyan.FFmpeg.Shared*") do (
  for /d %%B in ("%%P\ffmpeg-*shared*") do if exist "%%B\bin\ffmpeg.exe" set "PATH=%%B\bin;!PATH!"
)
where ffmpeg >nul 2>nul
exit /b
