"""Fine-tuning: typed settings, pre-flight validation, our recipe over coqui's GPT, events and run folders."""

from xtts_finetune.train.events import read_best, read_events
from xtts_finetune.train.preflight import Problem, inspect_dataset, preflight
from xtts_finetune.train.recipe import train
from xtts_finetune.train.runs import RunInfo, RunResult, list_runs
from xtts_finetune.devices import choose_precision
from xtts_finetune.train.settings import TrainSettings, find_batch_size

__all__ = [
    "Problem",
    "RunInfo",
    "RunResult",
    "TrainSettings",
    "choose_precision",
    "find_batch_size",
    "inspect_dataset",
    "list_runs",
    "preflight",
    "read_best",
    "read_events",
    "train",
]
