"""The UI stays on this computer unless told otherwise, and needs a login whenever it leaves it."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from xtts_finetune.errors import UserError
from xtts_finetune.webui.app import check_exposure, launch, parse_auth


@pytest.mark.parametrize("host, share", [("0.0.0.0", False), ("192.168.1.20", False), ("127.0.0.1", True)])
def test_leaving_this_computer_without_a_login_is_refused(host, share):
    with pytest.raises(UserError, match="--auth"):
        check_exposure(host, share, auth=None)


def test_local_or_logged_in_or_explicitly_open_is_allowed():
    check_exposure("127.0.0.1", False, None)
    check_exposure("localhost", False, None)
    check_exposure("0.0.0.0", True, ("anna", "pw"))
    check_exposure("0.0.0.0", False, None, allow_open=True)


def test_auth_must_be_user_colon_password():
    assert parse_auth("anna:a:b") == ("anna", "a:b")
    assert parse_auth("") is None
    for bad in ("anna", "anna:", ":pw"):
        with pytest.raises(UserError, match="USER:PASSWORD"):
            parse_auth(bad)


def test_cli_refuses_a_public_host_without_a_login(tmp_path):
    done = subprocess.run([sys.executable, "-m", "xtts_finetune", "ui", "--host", "0.0.0.0", "--workspace", tmp_path],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and "--auth USER:PASSWORD" in done.stderr and "Traceback" not in done.stderr


def test_with_a_login_the_app_answers_only_after_it(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo, url = launch(tmp_path / "ws", port=port, auth=("anna", "pw"), block=False, quiet=True)
    try:
        assert httpx.get(f"{url.rstrip('/')}/config").status_code == 401
        with httpx.Client() as client:
            assert client.post(f"{url.rstrip('/')}/login", data={"username": "anna", "password": "wrong"}).status_code >= 400
            assert client.post(f"{url.rstrip('/')}/login", data={"username": "anna", "password": "pw"}).status_code == 200
            assert client.get(f"{url.rstrip('/')}/config").status_code == 200
    finally:
        demo.close()


def test_model_zips_stream_behind_the_login_and_only_for_exported_models(tmp_path):
    """The zip is built as it is sent (no file left behind), needs the page's login, and no name leaves models/."""
    import io
    import zipfile
    from urllib.parse import quote

    ws = tmp_path / "ws"
    voice = ws / "models" / "voice"
    (voice / "references").mkdir(parents=True)
    (voice / "config.json").write_text("{}")
    (voice / "model.pth").write_bytes(bytes(range(256)) * 5000)  # over one read block: streamed in pieces
    (voice / "references" / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "secret.txt").write_text("outside the workspace")
    (voice / "leak.txt").symlink_to(tmp_path / "secret.txt")  # a link out of the folder is never followed
    (ws / "models" / "stimme-é").mkdir()
    (ws / "models" / "stimme-é" / "config.json").write_text("{}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo, url = launch(ws, port=port, auth=("anna", "pw"), block=False, quiet=True)
    base = f"{url.rstrip('/')}/xf/zip"
    try:
        assert httpx.get(f"{base}/voice.zip").status_code == 401
        with httpx.Client() as client:
            client.post(f"{url.rstrip('/')}/login", data={"username": "anna", "password": "pw"}).raise_for_status()
            got = client.get(f"{base}/voice.zip")
            assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
            archive = zipfile.ZipFile(io.BytesIO(got.content))
            assert archive.testzip() is None
            assert sorted(archive.namelist()) == ["voice/config.json", "voice/model.pth", "voice/references/a.wav"]
            assert archive.read("voice/model.pth") == (voice / "model.pth").read_bytes()
            accented = client.get(f"{base}/{quote('stimme-é')}.zip")  # a name any language may use
            assert accented.status_code == 200 and "stimme-%C3%A9.zip" in accented.headers["content-disposition"]
            for bad in ("..", "..%2Fmodels%2Fvoice", "%2E%2E", "nothing", "voice%2Fconfig.json"):
                assert client.get(f"{base}/{bad}.zip").status_code == 404, bad
        assert [p.name for p in ws.rglob("*.zip")] == []
    finally:
        demo.close()
