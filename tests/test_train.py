"""Training on the tiny model: settings take effect, validation refuses bad data, resume, early stopping."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from xtts_finetune.errors import UserError
from xtts_finetune.train import (
    TrainSettings,
    choose_precision,
    find_batch_size,
    list_runs,
    preflight,
    read_events,
    train,
)
from xtts_finetune.train.runs import checkpoints
from xtts_finetune.train.settings import lr_multiplier


def make_workspace(coqui_dataset: Path, root: Path) -> Path:
    shutil.copytree(coqui_dataset, root / "dataset", ignore=shutil.ignore_patterns("raw"))
    (root / "dataset" / "lang.txt").write_text("en\n")
    return root


@pytest.fixture
def workspace(coqui_dataset, tmp_path):
    return make_workspace(coqui_dataset, tmp_path / "ws")


def _steps(run_dir):
    return [e for e in read_events(run_dir) if e["type"] == "step"]


def test_settings_take_effect_in_the_run_and_logged_lr(workspace, tiny_xtts):
    settings = TrainSettings(
        epochs=2,
        batch_size=2,
        grad_accum=2,
        lr=1e-4,
        weight_decay=0.05,
        warmup_steps=2,
        scheduler="linear",
        min_lr_ratio=0.5,
        max_text_length=150,
        save_every_steps=3,
        keep_checkpoints=1,
        seed=7,
        early_stopping_patience=None,
    )
    result = train(workspace, tiny_xtts, settings, run_name="tuned")
    assert result.status == "finished" and result.run_dir == workspace / "runs" / "tuned"
    config = json.loads((result.run_dir / "config.json").read_text())  # the recipe's own, read back on resume
    assert config["settings"] == settings.to_dict() and config["base_dir"] == str(tiny_xtts)
    assert (config["batch_size"], config["grad_accum"], config["optimizer_steps"], config["warmup_steps"]) == (2, 2, 4, 2)
    assert (config["precision"], config["device"]) == ("fp32", "cpu") and len(config["train_clips"]) == 5
    assert not list(result.run_dir.glob("dvae*")) and all(  # weights of the GPT only: no DVAE, no decoder
        k.startswith("gpt.") for k in torch.load(result.run_dir / "best_model.pth", weights_only=True)["model"])

    # 5 train clips, batch 2: 3 batches an epoch; an optimizer step every 2 batches and at the epoch's end.
    lrs = [e["lr"] for e in _steps(result.run_dir)]
    factors = [lr_multiplier(s, total=4, warmup=2, schedule="linear", min_ratio=0.5) for s in range(4)]
    assert factors == pytest.approx([1 / 3, 2 / 3, 1.0, 0.75])
    assert lrs == pytest.approx([1e-4 * factors[i] for i in (0, 0, 1, 2, 2, 3)])  # warm-up, then decay
    assert len(checkpoints(result.run_dir)) == 1  # keep_checkpoints
    best_step = json.loads((result.run_dir / "best.json").read_text())["step"]
    assert (result.run_dir / "best_model.pth").samefile(result.run_dir / f"best_model_{best_step}.pth")  # no 2nd copy
    assert "eval after epoch 2" in (result.run_dir / "train_log.txt").read_text()
    assert list(result.run_dir.glob("events.out.tfevents.*"))
    steps = _steps(result.run_dir)
    assert all(math.isfinite(e["loss"]) and e["loss_mel_ce"] is not None for e in steps)
    assert steps[0]["samples_per_s"] is None  # the first step's length is unknown: no rate of a billion samples/s
    assert all(0 < e["samples_per_s"] < 1e4 for e in steps[1:])
    evals = [e for e in read_events(result.run_dir) if e["type"] == "eval"]
    assert [e["epoch"] for e in evals] == [0, 1] and result.best_eval_loss == min(e["eval_loss"] for e in evals)
    [info] = list_runs(workspace)
    assert (info.name, info.status, info.epochs_done, info.steps) == ("tuned", "finished", 2, 6)

    again = train(workspace, tiny_xtts, TrainSettings(epochs=1, batch_size=5), run_name="tuned")
    assert again.run_dir.name == "tuned-2"  # runs never overwrite each other


def test_preflight_refuses_unknown_characters_and_names_the_clip(workspace, tiny_xtts):
    csv = workspace / "dataset" / "metadata_train.csv"
    lines = csv.read_text().splitlines()
    lines[2] = "wavs/clip1.wav|ሰላም means hello.|speaker"
    csv.write_text("\n".join(lines) + "\n")
    problems = preflight(workspace, tiny_xtts, TrainSettings())
    assert [p.clip for p in problems] == ["wavs/clip1.wav"]
    assert "'ሰ' (U+1230)" in problems[0].message and "'ም'" in problems[0].message and problems[0].fix
    with pytest.raises(UserError, match="wavs/clip1.wav") as err:
        train(workspace, tiny_xtts, TrainSettings(epochs=1))
    assert "ሰ" in str(err.value)
    assert not (workspace / "runs").exists()  # the run did not start


def test_preflight_lists_missing_long_and_empty_clips(workspace, tiny_xtts):
    dataset = workspace / "dataset"
    (dataset / "wavs" / "clip2.wav").unlink()
    (dataset / "metadata_eval.csv").write_text("audio_file|text|speaker_name\n")
    problems = preflight(workspace, tiny_xtts, TrainSettings(max_audio_seconds=2.0))
    text = "\n".join(map(str, problems))
    assert "wavs/clip2.wav: cannot be read" in text
    assert "metadata_eval.csv has no clips" in text
    assert "longer than the 2.0 s limit" in text and "raise --max-audio-seconds" in text


def test_preflight_holds_clips_and_limits_to_what_the_models_positions_take(workspace, tiny_xtts):
    """Past gpt_max_text_tokens (402) or gpt_max_audio_tokens (605 codes, ~28 s) training failed on an index."""
    csv = workspace / "dataset" / "metadata_train.csv"
    lines = csv.read_text().splitlines()
    lines[2] = "wavs/clip1.wav|" + " ".join(["hello there my friend"] * 120) + ".|speaker"
    csv.write_text("\n".join(lines) + "\n")
    problems = preflight(workspace, tiny_xtts, TrainSettings(max_text_length=5000, max_audio_seconds=40.0))
    text = "\n".join(map(str, problems))
    assert "wavs/clip1.wav: text is" in text and "more than the model takes (402: gpt_max_text_tokens" in text
    assert "--max-audio-seconds 40 is longer than the model takes (28.0 s" in text
    assert "use --max-audio-seconds 28.0 or less" in text


def test_early_stopping_after_patience_evals_without_improvement(workspace, tiny_xtts):
    # A learning rate below float32 resolution leaves the weights, hence the eval loss, exactly unchanged.
    settings = TrainSettings(epochs=5, batch_size=5, lr=1e-30, weight_decay=0.0, early_stopping_patience=1)
    result = train(workspace, tiny_xtts, settings)
    evals = [e for e in read_events(result.run_dir) if e["type"] == "eval"]
    assert result.stopped_early and result.status == "early_stopped"
    assert [e["best"] for e in evals] == [True, False]  # stopped at the first eval without improvement
    assert list_runs(workspace)[0].status == "early_stopped"
    with pytest.raises(UserError, match="no unfinished run"):
        train(workspace, None, resume=True)


def test_precision_is_chosen_by_compute_capability_and_fp32_on_cpu():
    assert choose_precision("auto", None) == "fp32"  # a CPU
    with pytest.raises(UserError, match="CPU"):
        choose_precision("fp16", None)
    assert choose_precision("auto", (8, 0)) == "bf16"  # A100: native bf16
    assert choose_precision("auto", (7, 5)) == "fp16"  # T4: bf16 only emulated
    assert choose_precision("auto", (6, 1)) == "fp32"  # GTX 10xx: fp16 at 1/64 rate
    assert choose_precision("fp32", (9, 0)) == "fp32"
    with pytest.raises(UserError, match="bf16"):
        choose_precision("bf16", (7, 0))


def test_batch_size_search_finds_the_largest_that_fits():
    tried = []

    def fits(batch):
        tried.append(batch)
        return batch <= 13

    assert find_batch_size(fits, limit=64) == 13
    assert len(tried) <= 10
    assert find_batch_size(lambda b: True, limit=24) == 24
    with pytest.raises(UserError, match="does not fit"):
        find_batch_size(lambda b: False)


def test_out_of_memory_is_recognised_and_explained():
    from xtts_finetune.train.settings import is_out_of_memory, out_of_memory_error

    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    err = out_of_memory_error(4, 2, 11.6)
    assert "--batch-size" in err.fix and "--grad-accum" in err.fix and "--max-audio-seconds" in err.fix


def test_schedule_warms_up_then_decays_to_the_floor():
    values = [lr_multiplier(s, total=100, warmup=10, schedule="cosine", min_ratio=0.1) for s in range(120)]
    assert values[0] < values[5] < values[9] < values[10] == 1.0
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))
    assert values[100] == pytest.approx(0.1) and values[119] == pytest.approx(0.1)  # clamped past the end
    assert lr_multiplier(50, total=100, warmup=10, schedule="constant", min_ratio=0.1) == 1.0


def test_batch_probe_trains_whole_steps_then_starts_from_the_base_weights(workspace, tiny_xtts):
    from xtts_finetune.train.preflight import inspect_dataset
    from xtts_finetune.train.config import new_config
    from xtts_finetune.train.recipe import Recipe, probe_batch_size

    settings = TrainSettings(batch_size="auto")
    info, _ = inspect_dataset(workspace, tiny_xtts, settings)
    recipe = Recipe(new_config(workspace, tiny_xtts, settings, info), None)
    recipe.setup()
    base = {k: v.clone() for k, v in recipe.gpt.state_dict().items()}
    updates = []
    recipe.optimizer.register_step_post_hook(lambda *_: updates.append(1))
    # On a CPU nothing runs out of memory, so the search climbs to its limit through real training steps.
    assert probe_batch_size(recipe, limit=3) == 3 and recipe.cfg.batch_size == 3 and len(recipe.sampler) == 2
    assert len(updates) >= 2  # each try includes the optimizer update (its state is memory too)
    assert all(torch.equal(v, base[k]) for k, v in recipe.gpt.state_dict().items())  # the probe left no trace
    assert all(p.grad is None for p in recipe.gpt.parameters()) and not recipe.optimizer.state


def test_stop_event_saves_a_checkpoint_and_the_run_resumes(workspace, tiny_xtts):
    import threading

    stop = threading.Event()

    def progress(p):
        if p.extra.get("event", {}).get("type") == "step":
            stop.set()  # as the web UI's stop button does

    result = train(workspace, tiny_xtts, TrainSettings(epochs=1, batch_size=2), progress=progress, stop_event=stop)
    assert result.status == "stopped" and [p.name for p in checkpoints(result.run_dir)] == ["checkpoint_1.pth"]
    assert list_runs(workspace)[0].status == "stopped"
    resumed = train(workspace, None, resume=result.run_dir.name)
    assert resumed.status == "finished" and resumed.best_checkpoint.is_file()


def test_cublas_cudnn_and_allocator_failures_are_out_of_memory():
    from xtts_finetune.train.settings import is_out_of_memory

    try:  # a real allocation failure: more than any machine's address space
        torch.empty(2**50, dtype=torch.uint8)
    except RuntimeError as err:
        cpu_failure = err
    assert is_out_of_memory(cpu_failure)
    assert is_out_of_memory(torch.AcceleratorError("CUDA error: out of memory"))  # outside the caching allocator
    assert is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"))
    assert is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear if you "
                                         "passed in a non-contiguous input."))
    try:  # an out-of-memory error re-raised as another one is still recognised
        try:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        except torch.OutOfMemoryError as oom:
            raise ValueError("batch failed") from oom
    except ValueError as wrapped:
        assert is_out_of_memory(wrapped)
    assert not is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_EXECUTION_FAILED"))
    assert not is_out_of_memory(ValueError("cuDNN error: CUDNN_STATUS_BAD_PARAM"))


def test_batch_probe_tries_the_longest_text_with_the_longest_audio_and_steps_skipped_fp16_updates(
        workspace, tiny_xtts, tmp_path):
    """The probe's batches pad to the dataset's longest text and longest audio (here in different clips), and
    every try takes the optimizer update even where fp16's GradScaler skips it: the 8-bit state is measured.
    The DVAE is let go once the clips' codes are known."""
    from xtts_finetune.train.config import new_config
    from xtts_finetune.train.preflight import inspect_dataset
    from xtts_finetune.train.recipe import Recipe, probe_batch_size

    codes = tmp_path / "codes"  # an empty code cache, so this setup loads the DVAE (the session's holds every clip)
    settings = TrainSettings(batch_size="auto", optimizer_8bit=True)
    info, _ = inspect_dataset(workspace, tiny_xtts, settings)
    config = new_config(workspace, tiny_xtts, settings, info)
    config.precision = "fp16"  # the GPU's fp16 path, on the CPU's autocast
    recipe = Recipe(config, None)
    recipe.setup(cache_root=codes)
    assert recipe.cache.stats.misses and not recipe.cache.dvae_loaded
    clips = recipe.train_clips
    shortest, wordiest = min(clips, key=lambda c: c.samples), max(clips, key=lambda c: len(c.tokens))
    shortest.tokens = torch.cat([wordiest.tokens, wordiest.tokens[:3]])  # the longest text, in the shortest clip
    recipe.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**100)  # past fp16's range: every step overflows
    widths, states = [], []
    recipe.gpt.register_forward_pre_hook(lambda _, args: widths.append((args[0].shape[1], args[2].shape[1])))
    recipe.optimizer.register_step_post_hook(lambda optimizer, *_: states.append(len(optimizer.state)))
    assert probe_batch_size(recipe, limit=1) == 1  # one try is enough to see both
    assert widths and set(widths) == {(len(shortest.tokens), max(len(c.codes) for c in clips))}
    assert len(states) == len(widths) and all(states)  # each try allocated the optimizer's state
