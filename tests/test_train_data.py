"""The recipe's pieces: length-bucketed batches, optimizer groups, precision choice, activation checkpointing."""

from __future__ import annotations

import random

import pytest
import torch

from xtts_finetune.train.data import BucketSampler, padding_share
from xtts_finetune.train.memory import enable_activation_checkpointing
from xtts_finetune.devices import precision_for
from xtts_finetune.train.precision import Precision, adamw


def test_padding_share_counts_the_padded_samples():
    assert padding_share([[0, 1]], [10, 30]) == pytest.approx(20 / 60)
    assert padding_share([[0], [1]], [10, 30]) == 0


def test_bucketed_batches_cover_every_clip_once_and_cut_padding():
    rng = random.Random(0)
    lengths = [rng.randint(22050, 11 * 22050) for _ in range(200)]  # 1-11 s clips
    sampler = BucketSampler(lengths, batch_size=4, seed=5)
    epoch = sampler.epoch(0)
    assert sorted(i for b in epoch for i in b) == list(range(200)) and len(epoch) == len(sampler) == 50
    assert sampler.epoch(0) == epoch and sampler.epoch(1) != epoch  # a function of (seed, epoch) only
    assert BucketSampler(lengths, 4, seed=6).epoch(0) != epoch
    order = list(range(200))
    random.Random(1).shuffle(order)
    unsorted = padding_share([order[i : i + 4] for i in range(0, 200, 4)], lengths)
    assert padding_share(epoch, lengths) < 0.25 * unsorted  # measured ~0.05 against ~0.35 padding
    assert [b for _, b in sampler.iter_from(0, 47)] == epoch[47:]  # resume skips what was done


def test_weight_decay_only_on_weights_and_fused_on_cpu():
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    optimizer = adamw(model, 1e-3, 0.01, device="cpu")
    decay, plain = optimizer.param_groups
    assert decay["weight_decay"] == 0.01 and [p.shape for p in decay["params"]] == [(4, 4)]
    assert plain["weight_decay"] == 0 and len(plain["params"]) == 4  # embedding, bias, norm weight and bias
    assert decay["betas"] == (0.9, 0.96) and decay["fused"] is True


def test_precision_is_fp32_on_cpu_and_scaled_only_in_fp16():
    cpu = Precision(precision_for("auto", "cpu"), "cpu")
    assert cpu.name == "fp32" and cpu.dtype is None and cpu.scaler() is None
    assert Precision("bf16", "cuda").dtype is torch.bfloat16 and Precision("bf16", "cuda").scaler() is None
    assert Precision("fp16", "cpu").scaler() is not None  # a GradScaler only where fp16 needs one


def test_activation_checkpointing_keeps_losses_and_gradients(tiny_xtts):
    from test_train_parity import _tiny_batch

    from xtts_finetune.train.recipe import gpt_losses, load_gpt

    batch = _tiny_batch(tiny_xtts)
    grads, attention_calls = [], []
    for checkpointed in (False, True):
        gpt = load_gpt(tiny_xtts)[0].train()
        if checkpointed:
            enable_activation_checkpointing(gpt)
        calls = []
        for block in gpt.gpt.h:
            block.attn.register_forward_hook(lambda *_: calls.append(1))
        attention_calls.append(calls)
        torch.manual_seed(0)
        loss = gpt_losses(gpt, batch)["loss"]
        loss.backward()
        grads.append((loss.item(), [p.grad for p in gpt.parameters() if p.grad is not None]))
    (plain_loss, plain), (ckpt_loss, ckpt) = grads
    assert len(attention_calls[1]) == 2 * len(attention_calls[0]) == 2 * len(gpt.gpt.h)  # recomputed in backward
    assert ckpt_loss == pytest.approx(plain_loss, rel=1e-6)
    assert len(plain) == len(ckpt) and all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(plain, ckpt))


def test_fp16_steps_with_a_grad_scaler_run_on_cpu(coqui_dataset, tiny_xtts, tmp_path):
    """The GPU's fp16 path (autocast + GradScaler), run on the CPU's autocast: it trains, the scaler is saved."""
    from test_train import make_workspace

    from xtts_finetune.train import TrainSettings
    from xtts_finetune.train.checkpoint import saved_pairs
    from xtts_finetune.train.preflight import inspect_dataset
    from xtts_finetune.train.config import new_config
    from xtts_finetune.train.recipe import Recipe

    workspace = make_workspace(coqui_dataset, tmp_path / "ws")
    settings = TrainSettings(epochs=1, batch_size=2, lr=1e-3, save_every_steps=2)
    info, _ = inspect_dataset(workspace, tiny_xtts, settings)
    config = new_config(workspace, tiny_xtts, settings, info)
    config.precision = "fp16"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    recipe = Recipe(config, run_dir)
    recipe.setup()
    before = {k: v.clone() for k, v in recipe.gpt.state_dict().items()}
    assert recipe.train() == "finished"
    changed = [k for k, v in recipe.gpt.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and all(torch.isfinite(v).all() for v in recipe.gpt.state_dict().values())
    state = torch.load(saved_pairs(run_dir)[-1].state, weights_only=True)
    assert state["scaler"]["scale"] > 0 and recipe.precision.dtype is torch.float16


def test_the_8bit_optimizer_needs_bitsandbytes_and_says_so():
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        from xtts_finetune.errors import UserError

        with pytest.raises(UserError, match="bitsandbytes") as err:
            adamw(torch.nn.Linear(2, 2), 1e-3, 0.01, device="cpu", eight_bit=True)
        assert "--optimizer-8bit" in err.value.fix
    else:
        assert type(adamw(torch.nn.Linear(2, 2), 1e-3, 0.01, device="cuda", eight_bit=True)).__name__ == "AdamW8bit"


def test_rounds_give_one_process_every_batch_and_n_ranks_n_a_round():
    from xtts_finetune.train.data import Round, rounds

    batches = [[0], [1], [2], [3], [4]]
    assert list(rounds(batches, 3, 13)) == [Round([3], 13), Round([4], 14, last=True)]  # resumed at batch 3, step 13
    second = list(rounds(batches, 0, 0, rank=1, ranks=2))
    assert [(r.batch, r.index, r.size, r.real) for r in second] == [([1], 1, 2, True), ([3], 3, 2, True),
                                                                    ([4], 4, 1, False)]  # past the end: zero weight
    assert [r.last for r in second] == [False, False, True]
