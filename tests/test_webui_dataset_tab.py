"""The dataset tab's clip table: suspect column and filter, exclude all suspects, remove a source."""

from __future__ import annotations

from xtts_finetune.dataset import create_dataset, list_segments, load_manifest
from xtts_finetune.dataset.manifest import save_manifest


def _handler(demo, name):
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


def test_suspects_filter_exclude_and_remove_source(tmp_path, coqui_dataset):
    from xtts_finetune.webui.app import build_app
    from xtts_finetune.webui.common import UI
    from xtts_finetune.webui.tab_dataset import CLIP_COLUMNS, _clip_rows, _source_choices

    ws = tmp_path / "ws"
    create_dataset(ws, language="en", corpus=coqui_dataset)
    manifest = load_manifest(ws)
    for seg, cer in zip(manifest.segments, (0.8, 0.05, 0.6)):  # as `dataset verify` leaves them
        seg.cer, seg.suspect = cer, (f"CER {cer:.2f} > 0.3" if cer > 0.3 else None)
    save_manifest(ws, manifest)
    ui = UI(workspace=ws, jobs=None)
    rows = _clip_rows(ui)
    assert len(rows) == 6 and CLIP_COLUMNS.index("CER") == 3 and [r[3] for r in rows[:4]] == [0.8, 0.05, 0.6, ""]
    suspects = _clip_rows(ui, suspects_only=True)
    assert [r[0] for r in suspects] == [manifest.segments[0].id, manifest.segments[2].id]
    assert all("suspect: CER" in r[5] for r in suspects)

    demo = build_app(ws)
    table, stats, _, _ = _handler(demo, "on_exclude_suspects")(True)
    assert {s.id for s in list_segments(ws) if s.excluded} == {r[0] for r in suspects}
    assert all(r[5].startswith("excluded; suspect") for r in table)
    assert "Excluded by you" in stats and "<td>2</td>" in stats  # the statistics redraw with the table

    choices = _source_choices(ui)
    assert len(choices) == 6 and all(value in label for label, value in ((l, v[:8]) for l, v in choices))
    gone = choices[0][1]
    table, _, _, _, dropdown = _handler(demo, "on_remove")(gone, False)
    assert len(table) == 5 and gone not in {s.hash for s in load_manifest(ws).sources}
    assert gone not in [value for _, value in dropdown["choices"]]
