"""Uploads from the browser copied into the workspace: a new file of an old name replaces it, two of one name are both kept."""

from __future__ import annotations


def test_a_new_upload_with_the_name_and_size_of_an_old_one_replaces_it(tmp_path):
    from xtts_finetune.webui.common import UI, copy_uploads

    ui = UI(workspace=tmp_path / "ws", jobs=None)
    for n, voice in enumerate((b"voice A", b"voice B")):  # same length: a wav of the same duration
        upload = tmp_path / f"browser{n}" / "reference.wav"
        upload.parent.mkdir()
        upload.write_bytes(voice)
        [copied] = copy_uploads(ui, [str(upload)], "references")  # gradio hands over paths as str
        assert copied.read_bytes() == voice


def test_two_uploads_of_the_same_name_in_one_batch_are_both_kept(tmp_path):
    from xtts_finetune.webui.common import UI, copy_uploads

    uploads = []
    for n, voice in enumerate((b"first take", b"second take, longer")):
        upload = tmp_path / f"browser{n}" / "audio.wav"
        upload.parent.mkdir()
        upload.write_bytes(voice)
        uploads.append(str(upload))
    copied = copy_uploads(UI(workspace=tmp_path / "ws", jobs=None), uploads, "media")
    assert [p.read_bytes() for p in copied] == [b"first take", b"second take, longer"]
    assert [p.name for p in copied] == ["audio.wav", "audio.wav"]  # each keeps the name it was uploaded under
