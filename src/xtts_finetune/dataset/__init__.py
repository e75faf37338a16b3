"""Dataset creation: recordings, subtitles, corpora or URLs in; a validated Coqui-format dataset out.

Layout and manifest are described in ARCHITECTURE.md ("On-disk contract").
"""

from xtts_finetune.dataset.create import DatasetReport, DatasetSettings, create_dataset
from xtts_finetune.dataset.manifest import (
    Manifest, Segment, Source, edit_segment, exclude_suspects, list_segments, load_manifest, remove_source,
    rename_speaker,
)
from xtts_finetune.dataset.slicer import iter_pieces, slice_on_silence
from xtts_finetune.dataset.stats import DatasetStats, dataset_stats
from xtts_finetune.dataset.verify import VerifyReport, verify_dataset

__all__ = [
    "DatasetReport", "DatasetSettings", "DatasetStats", "Manifest", "Segment", "Source", "VerifyReport",
    "create_dataset", "dataset_stats", "edit_segment", "exclude_suspects", "iter_pieces", "list_segments",
    "load_manifest", "remove_source", "rename_speaker", "slice_on_silence", "verify_dataset",
]
