"""The Speak tab: what it offers for a chosen model."""

from __future__ import annotations


def test_speak_tab_default_language_is_one_of_its_choices(tiny_export, tmp_path, monkeypatch):
    import json
    import shutil

    from xtts_finetune.webui.app import build_app

    monkeypatch.setenv("XTTS_FINETUNE_HOME", str(tmp_path / "home"))  # the latents cache
    model = tmp_path / "ws" / "models" / "chinese-voice"
    shutil.copytree(tiny_export, model)
    card = json.loads((model / "model_card.json").read_text())
    (model / "model_card.json").write_text(json.dumps({**card, "language": "zh-cn"}))  # as export.py writes it

    demo = build_app(tmp_path / "ws")
    on_model = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_model")
    _, language, _ = on_model(str(model))
    assert language["value"] == "zh" and "zh" in [value for _, value in language["choices"]]
