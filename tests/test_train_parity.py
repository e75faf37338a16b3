"""Our recipe against coqui's GPTTrainer on the same tiny base: same losses, gradients, data and end point."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from test_train import make_workspace

from xtts_finetune.train import TrainSettings, train
from xtts_finetune.train.data import CodeCache, CondCrop, collate, crop_conditioning, dvae_codes, load_clips, style_mel
from xtts_finetune.train.preflight import inspect_dataset
from xtts_finetune.train.recipe import gpt_losses, load_gpt

GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-7  # stated tolerance for gradients (fp32; same kernels, so in practice equal)


@pytest.fixture(scope="module")
def upstream(coqui_dataset, tiny_xtts, tmp_path_factory):
    """coqui's GPTTrainer on the tiny base, and its eval loader over the workspace's train clips."""
    from TTS.tts.datasets import load_tts_samples
    from TTS.tts.layers.xtts.trainer.gpt_trainer import GPTTrainer

    from xtts_finetune.dev.upstream import gpt_trainer_config

    workspace = make_workspace(coqui_dataset, tmp_path_factory.mktemp("parity") / "ws")
    settings = TrainSettings(batch_size=2)
    info, _ = inspect_dataset(workspace, tiny_xtts, settings)
    config = gpt_trainer_config(tiny_xtts, workspace / "dataset", "en", settings, info.max_audio_seconds,
                                workspace / "upstream")
    model = GPTTrainer(config)
    samples = load_tts_samples(config, eval_split=True)[0]
    return workspace, config, model, sorted(samples, key=lambda s: s["audio_file"])


def _upstream_batch(model, config, samples):
    config.eval_batch_size = len(samples)
    batch = next(iter(model.get_data_loader(config, is_eval=True, samples=list(samples), verbose=False)))
    return model.format_batch_on_device(batch)


def test_same_batch_same_losses_and_gradients(upstream, tiny_xtts):
    _, config, model, samples = upstream
    batch = _upstream_batch(model, config, samples[:2])
    ours, _, _ = load_gpt(tiny_xtts)
    theirs = model.xtts.gpt
    ours.train(), model.eval(), theirs.train()  # as GPTTrainer.on_train_epoch_start sets them

    torch.manual_seed(3)  # the same dropout masks on both sides
    our_losses = gpt_losses(ours, batch)
    our_losses["loss"].backward()
    torch.manual_seed(3)
    _, their_losses = model.train_step(copy.deepcopy(batch), None)
    their_losses["loss"].backward()

    for name in ("loss_text_ce", "loss_mel_ce", "loss"):
        assert our_losses[name].item() == pytest.approx(their_losses[name].item(), rel=1e-5), name
    their_params = dict(theirs.named_parameters())
    compared = 0
    for name, param in ours.named_parameters():
        if param.grad is None:
            assert their_params[name].grad is None, name
            continue
        torch.testing.assert_close(param.grad, their_params[name].grad, rtol=GRAD_RTOL, atol=GRAD_ATOL, msg=name)
        compared += 1
    assert compared > 50 and any(p.grad.abs().sum() > 0 for p in ours.parameters() if p.grad is not None)


def test_cached_codes_and_conditioning_equal_upstreams_per_clip(upstream, tiny_xtts, tmp_path):
    """Per clip (no padding partner), our cached DVAE codes and eval conditioning mels are upstream's."""
    workspace, config, model, samples = upstream
    _, tokenizer, xtts_config = load_gpt(tiny_xtts)
    codes = dvae_codes(xtts_config.model_args)
    cache = CodeCache(tiny_xtts / "dvae.pth", tiny_xtts / "mel_stats.pth", 22050, root=tmp_path, codes=codes)
    clips = load_clips([(s["audio_file"], s["text"]) for s in samples], lambda t: tokenizer.encode(t, "en"), cache)
    mel = style_mel(tiny_xtts / "mel_stats.pth", 22050)
    for sample, clip in zip(samples, clips, strict=True):
        theirs = _upstream_batch(model, config, [sample])
        ours = collate([clip], CondCrop(), None, mel)
        assert torch.equal(ours["audio_codes"][0, : theirs["audio_codes"].shape[1]], theirs["audio_codes"][0])
        torch.testing.assert_close(ours["cond_mels"], theirs["cond_mels"], rtol=1e-5, atol=1e-6)
        assert torch.equal(ours["text_inputs"], theirs["text_inputs"].int())
    assert cache.stats.misses == len(samples)
    again = CodeCache(tiny_xtts / "dvae.pth", tiny_xtts / "mel_stats.pth", 22050, root=tmp_path, codes=codes)
    load_clips([(s["audio_file"], s["text"]) for s in samples], lambda t: tokenizer.encode(t, "en"), again)
    assert (again.stats.hits, again.stats.misses) == (len(samples), 0)  # a second run does no DVAE work


def _tiny_batch(tiny_xtts):
    """A two-clip training batch of espeak-free random audio, through our data path."""
    from xtts_finetune.train.data import TrainClip

    _, tokenizer, xtts_config = load_gpt(tiny_xtts)
    torch.manual_seed(0)
    codes, stride = dvae_codes(xtts_config.model_args), xtts_config.model_args.gpt_code_stride_len
    clips = [TrainClip("a", torch.IntTensor(tokenizer.encode(text, "en")), torch.randn(1, n) * 0.1,
                  torch.randint(0, codes, (n // stride + 1,))) for text, n in (("hello there.", 70000), ("a voice.", 90000))]
    return collate(clips, CondCrop(), random.Random(0), style_mel(tiny_xtts / "mel_stats.pth", 22050))


def test_training_crops_follow_upstreams_rule():
    wav = torch.arange(200_000, dtype=torch.float32)[None]
    crop = CondCrop(min_samples=66150, max_samples=132300)
    for seed in range(20):
        piece, (start, end) = crop_conditioning(
            wav, crop, random.Random(seed))
        assert 66150 <= end - start <= 132300 and 0 <= start and end <= 200_000
        assert piece.shape == (1, 132300) and torch.equal(piece[0, : end - start], wav[0, start:end])
    short = torch.ones(1, 50_000)
    piece, (start, end) = crop_conditioning(short, crop, None)
    assert (start, end) == (0, 25_000) and piece[0, 25_000:].abs().sum() == 0  # half a short clip, as upstream


def test_n_epochs_end_at_upstreams_eval_loss(upstream, tiny_xtts, tmp_path):
    """Same base, data, batch, constant lr and epochs: both recipes learn, and end at close eval losses.

    Upstream draws its batches with replacement and ours is a permutation, so the tolerance is on the
    drop in eval loss: ours ends within 10 % of upstream's drop from the same starting point. (With coqui's
    8194-token defaults most of the drop was pushing down codes no clip uses, the same whatever the batch
    order, and the two ended 1e-4 apart; with the release's 1026 tokens, 1024 of them codes, what is learnt
    depends on the clips seen: 6 % apart at seed 1.)
    """
    from xtts_finetune.dev.upstream import train_upstream

    workspace = upstream[0]
    settings = TrainSettings(epochs=3, batch_size=2, lr=2e-4, scheduler="constant", warmup_steps=0,
                             early_stopping_patience=None)
    start = train(workspace, tiny_xtts, TrainSettings(epochs=1, batch_size=2, lr=1e-30, weight_decay=0.0,
                                                      scheduler="constant", warmup_steps=0)).best_eval_loss
    ours = train(workspace, tiny_xtts, settings).best_eval_loss
    theirs = train_upstream(workspace, tiny_xtts, settings, tmp_path / "upstream").eval_loss
    print(f"eval loss: start {start:.4f}, ours {ours:.4f}, upstream {theirs:.4f}")
    assert start - theirs > 0.05 and start - ours > 0.05  # both learned
    assert abs(ours - theirs) <= 0.10 * (start - theirs), (start, ours, theirs)
