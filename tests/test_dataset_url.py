"""URL sources: yt-dlp downloads a direct media link from a local HTTP server into WORKSPACE/sources/."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from conftest import SENTENCES
from speech import spoken_recording
from xtts_finetune.dataset import create_dataset, list_segments, load_manifest


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_is_downloaded_transcribed_and_not_fetched_twice(tmp_path, server, tiny_whisper):
    root, base = server
    spoken_recording(root / "talk.wav", SENTENCES[:3])
    ws = tmp_path / "ws"
    report = create_dataset(ws, language="en", urls=[f"{base}/talk.wav", f"{base}/missing.wav"],
                            whisper_model=str(tiny_whisper))
    assert report.added
    (failed_url, reason), = report.failed
    assert failed_url == f"{base}/missing.wav" and "download failed" in reason and "404" in reason
    source, = load_manifest(ws).sources
    assert source.kind == "url" and source.url == f"{base}/talk.wav"
    assert source.path.startswith(str((ws / "sources").resolve()))
    assert (root / "talk.wav").read_bytes() == open(source.path, "rb").read()
    again = create_dataset(ws, language="en", urls=[f"{base}/talk.wav"], whisper_model=str(tiny_whisper))
    assert again.skipped == [f"{base}/talk.wav"] and len(list_segments(ws)) == len(report.added) + len(report.rejected)


def test_page_with_subtitle_track_uses_the_subtitles(tmp_path, server):
    from test_dataset_subtitles import _stamp

    root, base = server
    layout = spoken_recording(root / "talk.wav", SENTENCES[:2])
    vtt = "WEBVTT\n\n" + "".join(f"{_stamp(s['start'], '.')} --> {_stamp(s['end'], '.')}\n{s['text']}\n\n" for s in layout)
    (root / "talk.vtt").write_text(vtt, encoding="utf-8")
    (root / "index.html").write_text('<html><head><title>talk</title></head><body><video controls>'
                                     '<source src="talk.wav" type="audio/wav">'
                                     '<track kind="subtitles" src="talk.vtt" srclang="en" label="English"></video></body></html>')
    report = create_dataset(tmp_path / "ws", language="en", urls=[f"{base}/index.html"])
    assert not report.failed, report.failed
    source, = load_manifest(tmp_path / "ws").sources
    assert source.subtitles and source.subtitles.endswith(".vtt")
    assert [s.text for s in list_segments(tmp_path / "ws")] == SENTENCES[:2]
