@echo off
rem Install what xtts-finetune needs on Windows, and only what is missing: FFmpeg (shared build), uv,
rem the Python environment (.venv), and torch from the CUDA index that fits the NVIDIA driver
rem (PyPI's Windows torch is CPU-only), chosen before any torch is downloaded. start.bat calls this; running
rem it again is quick. `install.bat --dev` adds the dev group (pytest...) for running the tests.
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

rem --- The plan (installer.py, run by the environment's Python: uv provides one where Windows has none).
if not exist "%VENV_PY%" ("%UV%" venv --quiet || exit /b 1)
call :read_plan %* || exit /b 1
if not "!TORCH_SUPPORTED!"=="1" (echo error: !TORCH_REASON! & exit /b 1)
echo ==^> torch: !TORCH_REASON!
if defined TORCH_NOTE echo ==^> !TORCH_NOTE!

rem --- The environment: `uv sync` only when uv.lock changed; where torch comes from PyTorch's index, the
rem sync leaves it out (SYNC_FLAGS), so PyPI's CPU-only torch is never downloaded first.
if "!SYNC_NEEDED!"=="1" (
  echo ==^> installing the Python environment ^(uv sync --frozen !SYNC_GROUPS! !SYNC_FLAGS!^)
  "%UV%" sync --frozen !SYNC_GROUPS! !SYNC_FLAGS! || exit /b 1
  "%VENV_PY%" %INSTALLER% --mark-synced %* || exit /b 1
)

rem --- torch: the CUDA build this driver runs, from its index.
if defined TORCH_FROM (
  echo ==^> installing torch !TORCH_VERSION! from !TORCH_FROM!
  "%UV%" pip install --python "%VENV_PY%" --index-url "!TORCH_FROM!" --reinstall-package torch --reinstall-package torchaudio "torch==!TORCH_VERSION!" "torchaudio==!TORCHAUDIO_VERSION!"
  if errorlevel 1 (
    echo ==^> warning: that failed; installing PyPI's build of torch instead
    "%UV%" sync --frozen !SYNC_GROUPS! --reinstall-package torch --reinstall-package torchaudio || exit /b 1
  )
) else if "!TORCH_PYPI_BACK!"=="1" (
  "%UV%" sync --frozen !SYNC_GROUPS! --reinstall-package torch --reinstall-package torchaudio || exit /b 1
)
echo ==^> ready
rem Hand uv and the FFmpeg PATH to start.bat.
endlocal & set "UV=%UV%" & set "PATH=%PATH%"
exit /b 0

:read_plan
for %%K in (TORCH_VERSION TORCHAUDIO_VERSION TORCH_DEVICE TORCH_INDEX TORCH_SUPPORTED TORCH_REASON TORCH_INSTALLED TORCH_REINSTALL TORCH_FROM TORCH_PYPI_BACK TORCH_NOTE SYNC_NEEDED SYNC_GROUPS SYNC_FLAGS) do set "%%K="
for /f "tokens=1,* delims==" %%A in ('%VENV_PY% %INSTALLER% %*') do set "%%A=%%B"
if not defined TORCH_DEVICE (echo error: %INSTALLER% failed & exit /b 1)
exit /b 0

:ffmpeg_on_path
for /d %%P in ("%LOCALAPPDATA%\Microsoft\WinGet\Packages\Gyan.FFmpeg.Shared*") do (
  for /d %%B in ("%%P\ffmpeg-*shared*") do if exist "%%B\bin\ffmpeg.exe" set "PATH=%%B\bin;!PATH!"
)
where ffmpeg >nul 2>nul
exit /b
