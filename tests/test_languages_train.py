"""A language XTTS does not know, end to end on the tiny model: Amharic in both vocabulary modes."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from xtts_finetune.export import export_model
from xtts_finetune.text.frontends import prepare_text
from xtts_finetune.text.vocab import load_tokenizer
from xtts_finetune.train import TrainSettings, train
from xtts_finetune.train.recipe import load_gpt

AMHARIC = [
    "ሰላም ነው። እንዴት ነህ?",
    "አማርኛ ቋንቋ በጣም ጥሩ ነው፣ ደስ ይላል።",
    "ኢትዮጵያ ሀገሬ ናት።",
    "በ፳፻፲፮ ዓ.ም. 25% ጨመረ።",
    "ዶ/ር አበበ ት/ቤት ሄደ።",
]
SPOKEN = "ሠላም ኢትዮጵያ፣ አማርኛ ጥሩ ነው።"  # ሠ is folded to ሰ: every character the model reads was in the data


@pytest.fixture(scope="module")
def amharic_workspace(tmp_path_factory):
    from speech import make_training_set

    root = tmp_path_factory.mktemp("am")
    make_training_set(root / "made", AMHARIC, voice="am")
    shutil.copytree(root / "made", root / "ws" / "dataset", ignore=shutil.ignore_patterns("raw"))
    (root / "ws" / "dataset" / "lang.txt").write_text("am\n")
    return root / "ws"


def _copy(workspace, tmp_path):
    return shutil.copytree(workspace, tmp_path / "ws")


def _settings(vocab):
    return TrainSettings(epochs=1, batch_size=2, early_stopping_patience=None, vocab=vocab, new_tokens=60, lr=1e-4)


def test_script_mode_extends_the_vocabulary_trains_exports_and_coqui_speaks_it(amharic_workspace, tiny_xtts, tmp_path):
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    workspace = _copy(amharic_workspace, tmp_path)
    result = train(workspace, tiny_xtts, _settings("auto"))  # auto: an unknown language gets `script`
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["vocab_mode"] == "script" and config["frontend"] == {"name": "amharic", "version": "3"}
    status = [e for e in map(json.loads, (result.run_dir / "events.jsonl").read_text().splitlines())
              if e["type"] == "status"][0]
    assert "--vocab script" in status["message"]
    run_vocab = (result.run_dir / "vocab.json").read_text()

    # Base rows of the grown text embedding and head are the base model's, bit for bit.
    gpt, tokenizer, _ = load_gpt(tiny_xtts, run_vocab, "am", "script")
    base = torch.load(tiny_xtts / "model.pth", weights_only=True)["model"]
    rows = base["gpt.text_embedding.weight"].shape[0]
    assert gpt.text_embedding.weight.shape[0] > rows
    assert torch.equal(gpt.text_embedding.weight[:rows], base["gpt.text_embedding.weight"])
    assert torch.equal(gpt.text_head.weight[:rows], base["gpt.text_head.weight"])
    assert torch.equal(gpt.text_head.bias[:rows], base["gpt.text_head.bias"])
    # Every base id and a base text's tokens are unchanged.
    base_tok = load_tokenizer(tiny_xtts / "vocab.json", "en")
    assert all(tokenizer.tokenizer.token_to_id(t) == i for t, i in base_tok.tokenizer.get_vocab().items())
    assert tokenizer.encode("the quick brown fox, 12 peppers!", "en") == base_tok.encode("the quick brown fox, 12 peppers!", "en")

    folder = export_model(result.run_dir, "amharic", checkpoint="last")
    card = json.loads((folder / "model_card.json").read_text())
    assert card["language"] == "am" and "am" in card["languages"]
    assert card["text_frontend"] == {"name": "amharic", "version": "3", "vocab": "script", "token_language": "am"}
    assert (folder / "vocab.json").read_text() == run_vocab

    xtts_config = XttsConfig()
    xtts_config.load_json(str(folder / "config.json"))
    model = Xtts(xtts_config)
    model.load_checkpoint(xtts_config, checkpoint_dir=str(folder), eval=True)  # coqui's own loader
    model.tokenizer = load_tokenizer(folder / "vocab.json", "am", "script")
    ids = model.tokenizer.encode(SPOKEN, "am")
    unk = model.tokenizer.tokenizer.token_to_id("[UNK]")
    assert unk not in ids and ids[0] == model.tokenizer.tokenizer.token_to_id("[am]")
    assert any(model.tokenizer.tokenizer.id_to_token(i) not in base_tok.tokenizer.get_vocab() for i in ids)
    latent, embedding = model.get_conditioning_latents(audio_path=sorted((folder / "references").glob("*.wav")))
    torch.manual_seed(0)
    out = model.inference(SPOKEN, "am", latent, embedding, temperature=0.7)  # coqui's inference
    assert len(out["wav"]) > 0


def test_phonemes_mode_keeps_the_base_vocabulary_and_speaks(amharic_workspace, tiny_xtts, tmp_path):
    from xtts_finetune.synthesis import Synthesizer

    workspace = _copy(amharic_workspace, tmp_path)
    result = train(workspace, tiny_xtts, _settings("phonemes"))
    assert (result.run_dir / "vocab.json").read_bytes() == (tiny_xtts / "vocab.json").read_bytes()
    folder = export_model(result.run_dir, "amharic-phonemes", checkpoint="last")
    base = torch.load(tiny_xtts / "model.pth", weights_only=True)["model"]["gpt.text_embedding.weight"]
    exported = torch.load(folder / "model.pth", weights_only=True)["model"]["gpt.text_embedding.weight"]
    assert exported.shape == base.shape
    synth = Synthesizer(folder, device="cpu")
    tokens = synth.model.tokenizer.encode(SPOKEN.lower(), "am")
    assert synth.model.tokenizer.tokenizer.token_to_id("[UNK]") not in tokens
    assert tokens[0] == synth.model.tokenizer.tokenizer.token_to_id("[en]")  # phones in Latin letters, read as [en]
    assert prepare_text(SPOKEN, "am", "phonemes").text.startswith("selam")
    assert len(synth.speak(SPOKEN, "am", seed=1)) > 0


def test_base_mode_refuses_an_unknown_language_with_the_fix(amharic_workspace, tiny_xtts, tmp_path):
    from xtts_finetune.errors import UserError

    workspace = _copy(amharic_workspace, tmp_path)
    with pytest.raises(UserError, match="--vocab script"):
        train(workspace, tiny_xtts, _settings("base"))
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())
