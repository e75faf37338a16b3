"""Memory options on the tiny model: LoRA adapters (peft) and the 8-bit optimizer (bitsandbytes) train,
checkpoint, resume and export on a CPU."""

from __future__ import annotations

import json
import threading

import numpy as np
import torch
from test_tiny_models import load_xtts
from test_train import make_workspace

from xtts_finetune.export import export_model
from xtts_finetune.train import TrainSettings, train
from xtts_finetune.train.checkpoint import saved_pairs


def _stop_after_first_step():
    stop = threading.Event()

    def progress(p):
        if p.extra.get("event", {}).get("type") == "step":
            stop.set()

    return stop, progress


def test_lora_trains_only_the_adapters(coqui_dataset, tiny_xtts, tmp_path):
    from xtts_finetune.train.config import new_config
    from xtts_finetune.train.data import Round
    from xtts_finetune.train.preflight import inspect_dataset
    from xtts_finetune.train.recipe import Recipe

    workspace = make_workspace(coqui_dataset, tmp_path / "ws")
    settings = TrainSettings(batch_size=2, lora_rank=4)
    info, _ = inspect_dataset(workspace, tiny_xtts, settings)
    recipe = Recipe(new_config(workspace, tiny_xtts, settings, info), None)
    recipe.setup()
    recipe.model = recipe.gpt  # as train() sets it on one process
    recipe._forward_backward(Round([0, 1], index=0))
    with_grad = {n for n, p in recipe.gpt.named_parameters() if p.grad is not None}
    lora = {n for n, _ in recipe.gpt.named_parameters() if "lora_" in n}
    assert with_grad == lora and len(lora) == 2 * 4 * len(recipe.gpt.gpt.h)  # A and B on 4 projections a block
    assert all(p.grad.abs().sum() > 0 for n, p in recipe.gpt.named_parameters() if "lora_B" in n)
    trained = {id(p) for group in recipe.optimizer.param_groups for p in group["params"]}
    assert trained == {id(p) for n, p in recipe.gpt.named_parameters() if n in lora}  # optimizer state: adapters only


def test_lora_with_new_tokens_is_refused_before_training(coqui_dataset, tiny_xtts, tmp_path):
    """LoRA freezes the text embedding, so the rows --vocab script adds would never train: said, not run."""
    from xtts_finetune.train.preflight import inspect_dataset

    workspace = make_workspace(coqui_dataset, tmp_path / "ws")
    _, problems = inspect_dataset(workspace, tiny_xtts, TrainSettings(lora_rank=4, vocab="script"))
    assert [p.message for p in problems] == ["LoRA cannot train the new tokens that --vocab script adds for 'en'"]
    assert "--vocab phonemes" in problems[0].fix
    assert inspect_dataset(workspace, tiny_xtts, TrainSettings(lora_rank=4))[1] == []  # base vocabulary: fine


def test_lora_run_resumes_and_exports_plain_weights_coqui_loads(coqui_dataset, tiny_xtts, tmp_path):
    workspace = make_workspace(coqui_dataset, tmp_path / "ws")
    stop, progress = _stop_after_first_step()
    settings = TrainSettings(epochs=2, batch_size=2, lr=1e-3, lora_rank=4, early_stopping_patience=None)
    first = train(workspace, tiny_xtts, settings, progress=progress, stop_event=stop)
    assert first.status == "stopped"
    state = torch.load(saved_pairs(first.run_dir)[-1].state, weights_only=True)
    assert state["adapters"] and all("lora_" in k for k in state["adapters"])
    result = train(workspace, None, resume=first.run_dir.name)
    assert result.status == "finished"
    assert json.loads((result.run_dir / "config.json").read_text())["settings"]["lora_rank"] == 4

    base = torch.load(tiny_xtts / "model.pth", weights_only=True)["model"]
    weights = torch.load(result.run_dir / "best_model.pth", weights_only=True)["model"]
    assert all(k in base and v.shape == base[k].shape for k, v in weights.items())  # coqui's names and shapes
    changed = {k for k, v in weights.items() if not torch.equal(v, base[k])}
    assert changed and all(k.split(".")[-2] in ("c_attn", "c_proj", "c_fc") for k in changed)  # merged adapters only

    folder = export_model(result.run_dir, "lora-voice")
    model = load_xtts(folder)
    speaker = model.speaker_manager.speakers["speaker"]
    torch.manual_seed(0)
    wav = model.inference("hello world.", "en", speaker["gpt_cond_latent"], speaker["speaker_embedding"])["wav"]
    assert wav.size > 1000 and np.isfinite(wav).all()


def test_8bit_optimizer_trains_and_resumes_on_cpu(coqui_dataset, tiny_xtts, tmp_path):
    """bitsandbytes' AdamW8bit runs on a CPU (0.45+): 8-bit moments are saved with the state and restored."""
    workspace = make_workspace(coqui_dataset, tmp_path / "ws")
    stop, progress = _stop_after_first_step()
    settings = TrainSettings(epochs=1, batch_size=2, lr=1e-3, optimizer_8bit=True)
    first = train(workspace, tiny_xtts, settings, progress=progress, stop_event=stop)
    state = torch.load(saved_pairs(first.run_dir)[-1].state, weights_only=True)["optimizer"]["state"]
    moments = [s["__bnb_optimizer_quant_state__"]["state1"] for s in state.values()
               if "__bnb_optimizer_quant_state__" in s]  # bitsandbytes' packing of its quantised state
    assert any(m.dtype == torch.uint8 for m in moments)
    assert all(m.dtype == torch.uint8 for m in moments if m.numel() >= 4096)  # bitsandbytes keeps small ones 32-bit
    result = train(workspace, None, resume=first.run_dir.name)
    assert result.status == "finished" and np.isfinite(result.best_eval_loss)
