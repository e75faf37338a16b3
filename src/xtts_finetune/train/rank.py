"""One rank started by `distributed.launch()` through torchrun: train, then rank 0 leaves the result for the launcher."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record


@record  # torchrun then reports this rank's traceback, not only its exit code
def main(request_file: str) -> None:
    """One rank of `launch()`: train, and rank 0 writes the result where the launcher reads it."""
    from xtts_finetune.progress import ConsoleProgress
    from xtts_finetune.train.recipe import train
    from xtts_finetune.train.settings import TrainSettings

    req = json.loads(Path(request_file).read_text(encoding="utf-8"))
    settings = TrainSettings.from_dict(req["settings"]) if req["settings"] else None
    result = train(req["workspace"], req["base"], settings, resume=req["resume"], run_name=req["run_name"],
                   progress=ConsoleProgress(sys.stdout))
    if int(os.environ.get("RANK", "0")) == 0:
        Path(req["result"]).write_text(json.dumps({
            "run_dir": str(result.run_dir), "best_checkpoint": result.best_checkpoint and str(result.best_checkpoint),
            "best_eval_loss": result.best_eval_loss, "steps": result.steps, "stopped_early": result.stopped_early,
            "status": result.status}), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
