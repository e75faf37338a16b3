"""One rank of test_train_ddp under torchrun: train, then leave this rank's weights and file writes in OUT.

    python -m torch.distributed.run --nproc-per-node 2 tests/ddp_rank.py WORKSPACE BASE OUT SETTINGS_JSON

An audit hook records every write, rename, removal and folder made under WORKSPACE by this process.
"""

import json
import os
import sys
from pathlib import Path

import torch

workspace, base, out, settings = Path(sys.argv[1]).resolve(), sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
writes = []


def audit(event, args):
    paths = {"open": args[:1], "os.rename": args[:2], "os.remove": args[:1], "os.mkdir": args[:1], "os.link": args[:2]}
    if event not in paths or (event == "open" and not _writes(args)):
        return
    for path in paths[event]:
        if isinstance(path, (str, bytes, os.PathLike)) and str(os.path.abspath(os.fsdecode(path))).startswith(str(workspace)):
            writes.append(f"{event} {os.fsdecode(path)}")


def _writes(args) -> bool:
    mode, flags = args[1], args[2]
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))


from xtts_finetune.train import TrainSettings, checkpoint, train
from xtts_finetune.train.recipe import Recipe

trained = {}
loop = Recipe.train


def train_and_keep_weights(recipe):  # observe this rank's weights when its loop ends
    status = loop(recipe)
    trained.update(checkpoint.model_weights(recipe.gpt))
    return status


Recipe.train = train_and_keep_weights
sys.addaudithook(audit)
result = train(workspace, base, TrainSettings(**settings), run_name="ddp")
rank = int(os.environ["RANK"])
out.mkdir(parents=True, exist_ok=True)
(out / f"rank{rank}.json").write_text(json.dumps({"writes": writes, "steps": result.steps, "status": result.status}))
torch.save(trained, out / f"rank{rank}.pt")
