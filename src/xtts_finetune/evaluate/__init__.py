"""Measure a voice after training: what Whisper hears (CER/WER), how much it sounds like the speaker
(speaker-embedding similarity), its pace and trailing babble; pick a run's checkpoint by them."""

from xtts_finetune.evaluate.report import Evaluation, format_table, read_evaluation
from xtts_finetune.evaluate.run import during_training, evaluate, read_training_evaluations

__all__ = ["Evaluation", "during_training", "evaluate", "format_table", "read_evaluation",
           "read_training_evaluations"]
