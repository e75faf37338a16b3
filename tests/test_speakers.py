"""Several named speakers in one dataset, one training run and one model: each speaks by name through the CLI,
the Synthesizer, the server (the openai package) and coqui's own API. One dataset and one run for the module."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from speech import espeak
from test_dataset_subtitles import write_srt
from test_server import _run_server
from test_tiny_models import load_xtts
from xtts_finetune.cli import main
from xtts_finetune.dataset import load_manifest
from xtts_finetune.errors import UserError

# Two espeak-ng voices that sound different: a male US voice and a female variant.
VOICES = {"Anna": ("en+f3", ["The first speaker reads a line.", "She reads another one slowly.",
                             "And a third sentence for her."]),
          "Ben": ("en-us", ["Here is the second speaker.", "He has his own lines to read.",
                            "This is his last sentence."])}


def _sources(folder, voice, sentences):
    """One subtitled recording per sentence: name.wav and name.srt with a cue over the whole speech."""
    paths = []
    for i, sentence in enumerate(sentences):
        wav = espeak(sentence, folder / f"{voice.replace('+', '_')}{i}.wav", voice=voice)
        paths += [wav, write_srt(wav.with_suffix(".srt"), [(0.05, sf.info(wav).duration - 0.05, sentence)])]
    return paths


@pytest.fixture(scope="module")
def created(tmp_path_factory):
    """Two `dataset create` runs, one per --speaker, into one workspace: (workspace, its manifest then)."""
    root = tmp_path_factory.mktemp("speakers")
    for name, (voice, sentences) in VOICES.items():
        paths = _sources(root / "in" / name, voice, sentences)
        assert main(["dataset", "create", str(root / "ws"), "--language", "en", "--speaker", name,
                     "--audio", *map(str, paths[::2]), "--subtitles", *map(str, paths[1::2])]) == 0
    return root / "ws", load_manifest(root / "ws")


@pytest.fixture(scope="module")
def workspace(created):
    """The workspace once Ben is renamed Bob (through the CLI)."""
    assert main(["dataset", "rename-speaker", str(created[0]), "Ben", "Bob"]) == 0
    return created[0]


def _csv_speakers(workspace) -> list[str]:
    return sorted(line.split("|")[2] for split in ("train", "eval")
                  for line in (workspace / "dataset" / f"metadata_{split}.csv").read_text().splitlines()[1:])


def test_dataset_keeps_a_speaker_per_source_and_clip(created):
    _, manifest = created
    assert {s.speaker for s in manifest.sources} == {"Anna", "Ben"} and len(manifest.sources) == 6
    assert list(manifest.speakers()) == ["Anna", "Ben"] and all(len(v) == 3 for v in manifest.speakers().values())


def test_rename_speaker_renames_clips_sources_and_csvs(workspace, capsys):
    manifest = load_manifest(workspace)
    assert list(manifest.speakers()) == ["Anna", "Bob"] and {s.speaker for s in manifest.sources} == {"Anna", "Bob"}
    assert _csv_speakers(workspace) == ["Anna"] * 3 + ["Bob"] * 3
    assert main(["dataset", "rename-speaker", str(workspace), "Nobody", "X"]) == 2
    assert "no speaker 'Nobody'" in capsys.readouterr().err
    assert main(["dataset", "list", str(workspace)]) == 0
    assert "speakers: Anna (3 clips" in capsys.readouterr().out


def test_a_manifest_without_source_speakers_still_loads(workspace, tmp_path):
    data = json.loads((workspace / "dataset" / "dataset.json").read_text())
    for source in data["sources"]:
        del source["speaker"]  # as written before this version
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "dataset.json").write_text(json.dumps(data))
    manifest = load_manifest(tmp_path)
    assert {s.speaker for s in manifest.sources} == {""} and len(manifest.speakers()) == 2


@pytest.fixture(scope="module")
def export(workspace, tiny_xtts):
    from xtts_finetune.export import export_model
    from xtts_finetune.train import TrainSettings, train

    run = train(workspace, tiny_xtts, TrainSettings(epochs=1, batch_size=5, save_every_steps=1))
    return export_model(run.run_dir, "duo")


def test_export_writes_each_speakers_references_and_latents_by_name(export, workspace):
    manifest = load_manifest(workspace)
    card = json.loads((export / "model_card.json").read_text())
    assert card["speaker"] == "Anna" and card["speakers"] == [{"name": "Anna", "folder": "Anna"},
                                                              {"name": "Bob", "folder": "Bob"}]
    for name, segments in manifest.speakers().items():
        clips = {p.stem for p in (export / "references" / name).glob("*.wav")}
        assert clips and clips <= {s.id for s in segments}  # only that speaker's own clips
    assert not list((export / "references").glob("*.wav"))

    model = load_xtts(export)  # coqui's own loader and speaker manager
    assert {"Anna", "Bob", "Tiny Speaker"} <= set(model.speaker_manager.speaker_names)
    # coqui's synthesize(speaker=NAME) unpacks an entry's values in this order
    assert [list(model.speaker_manager.speakers[n]) for n in ("Anna", "Bob")] == [["gpt_cond_latent", "speaker_embedding"]] * 2


def test_an_export_of_several_speakers_is_evaluated_in_its_default_voice_not_a_blend(export, workspace):
    from xtts_finetune.evaluate.run import _plan

    kind, voice, _ = _plan(export, workspace, against=export)
    anna = {s.id for s in load_manifest(workspace).speakers()["Anna"]}
    assert kind == "model" and voice.speaker == "Anna" and voice.references
    assert all(p.parent.name == "Anna" for p in voice.references)  # the export's own clips of Anna
    assert voice.held_out and all(path.stem in anna for path, _ in voice.held_out)
    assert any("scored in Anna's voice" in note for note in voice.notes)


@pytest.fixture(scope="module")
def synth(export):
    """The export loaded once; its latents go to the session's cache, where the CLI finds them again."""
    from xtts_finetune.synthesis import Synthesizer

    return Synthesizer(export, device="cpu")


def test_synthesizer_conditions_each_speaker_on_its_own_clips(synth, export):
    assert synth.voices()[:2] == ["Anna", "Bob"] and "default" not in synth.voices()
    stored = torch.load(export / "speakers_xtts.pth", weights_only=True)
    for name in ("Anna", "Bob"):  # each name conditions on its own clips: the latents the export stored for it
        latent, embedding = synth.voice_latents(name)
        torch.testing.assert_close(latent, stored[name]["gpt_cond_latent"])
        torch.testing.assert_close(embedding, stored[name]["speaker_embedding"])
    assert not torch.allclose(stored["Anna"]["speaker_embedding"], stored["Bob"]["speaker_embedding"])
    assert synth.prepare("Hello.", "en").voice == "Anna"  # the first speaker is the default
    with pytest.raises(UserError, match="unknown voice 'Carol'"):
        synth.prepare("Hello.", "en", voice="Carol")


def test_cli_lists_and_speaks_a_speaker(export, tmp_path, capsys):
    assert main(["speak", str(export), "--list-voices", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("voices:    Anna, Bob, ")
    out = tmp_path / "bob.wav"
    assert main(["speak", str(export), "--speaker", "Bob", "--text", "Hi.", "--out", str(out),
                 "--device", "cpu", "--seed", "1"]) == 0
    assert sf.info(out).frames > 0


def test_openai_client_picks_a_speaker_by_voice(synth):
    openai = pytest.importorskip("openai", reason="the dev group installs it (uv sync)")
    import httpx

    from xtts_finetune.server import create_app

    server, thread, url = _run_server(create_app(synthesizer=synth, max_queue=4, max_chars=300))
    try:
        assert httpx.get(f"{url}/v1/voices").json()["voices"][:2] == ["Anna", "Bob"]
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused-on-loopback")
        spoken = {voice: sf.read(io.BytesIO(client.audio.speech.create(
            model="tts-1", voice=voice, input="Hi.", response_format="wav", extra_body={"seed": 1}).content))[0]
            for voice in ("Bob", "Anna", "alloy")}
        assert len(spoken["Bob"]) and (len(spoken["Bob"]) != len(spoken["Anna"]) or not np.allclose(spoken["Bob"], spoken["Anna"]))
        np.testing.assert_allclose(spoken["alloy"], spoken["Anna"], atol=1e-4)  # OpenAI's names: the default speaker
    finally:
        server.should_exit = True
        thread.join(10)


def test_ui_offers_the_speakers_and_renames_one(workspace, export, tmp_path):
    import shutil

    from xtts_finetune.webui.app import build_app

    ws = tmp_path / "ws"  # a copy: renaming here leaves the module's dataset as it is
    shutil.copytree(workspace / "dataset", ws / "dataset")
    demo = build_app(ws)
    handler = {getattr(f.fn, "__name__", ""): f.fn for f in demo.fns.values()}
    voice, _, info = handler["on_model"](str(export))  # the Speak tab's voice picker
    assert voice["choices"][:2] == ["Anna", "Bob"] and voice["value"] == "Anna" and "2 speakers" in info

    picker, new_name = handler["on_rename"]("Anna", " Bob ")  # the Dataset tab's Speakers panel: merges the two
    assert [value for _, value in picker["choices"]] == ["Bob"] and "6 clips" in picker["choices"][0][0]
    assert new_name == "" and _csv_speakers(ws) == ["Bob"] * 6


def test_speaker_folders_are_safe_and_unique_and_read_back_by_name(tmp_path):
    from xtts_finetune.voices import reference_voices, speaker_folder

    taken: set[str] = set()
    folders = [speaker_folder(name, taken) for name in ("Ana María", "Ana/María", "ana_maría", "..", "Zoë")]
    assert folders == ["Ana_María", "Ana_María-2", "ana_maría-3", "speaker", "Zoë"]  # one file system, any case
    for folder in ("Zoë", "Ana_María", "by-hand", "empty"):
        (tmp_path / "references" / folder).mkdir(parents=True)
        if folder != "empty":
            (tmp_path / "references" / folder / "a.wav").write_bytes(b"")
    card = {"speakers": [{"name": "Zoë", "folder": "Zoë"}, {"name": "Ana María", "folder": "Ana_María"}]}
    voices = reference_voices(tmp_path, card)
    assert list(voices) == ["Zoë", "Ana María", "by-hand"]  # the card's order, then folders added by hand
    assert voices["Ana María"] == [tmp_path / "references" / "Ana_María" / "a.wav"]
    assert reference_voices(tmp_path / "nothing", card) == {}


def test_a_renamed_diarized_voice_keeps_its_new_name_in_later_runs(tmp_path):
    """--diarize remembers voices in dataset/voices.json: after a rename, the same voice met again is the new name."""
    from xtts_finetune.dataset.manifest import Manifest, Segment, dataset_dir, rename_speaker, save_manifest
    from xtts_finetune.dataset.voices import VOICES_FILE, VoiceMap

    a, b = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    voices = VoiceMap()
    assert (voices.match(a, 0.7), voices.match(b, 0.7)) == ("speaker_1", "speaker_2")
    dataset_dir(tmp_path).mkdir(parents=True)
    voices.save(dataset_dir(tmp_path) / VOICES_FILE)
    save_manifest(tmp_path, Manifest(language="en", speaker="speaker_1",
                                     segments=[Segment("s1", "h", 0.0, 1.0, "hi", speaker="speaker_1")]))
    rename_speaker(tmp_path, "speaker_1", "Anna")
    again = VoiceMap.load(dataset_dir(tmp_path) / VOICES_FILE)
    assert again.match(a, 0.7) == "Anna" and again.match(b, 0.7) == "speaker_2"
    assert again.match(np.eye(4, dtype=np.float32)[2], 0.7) == "speaker_3"  # a new voice takes the next number


def test_diarize_names_skip_names_the_dataset_already_gives(tmp_path):
    """A voice --diarize meets is never named after a speaker given with --speaker (speaker_1 stays one person)."""
    from xtts_finetune.dataset.voices import VoiceMap

    voices = VoiceMap(taken={"speaker_1"})
    assert voices.match(np.eye(4, dtype=np.float32)[0], 0.7) == "speaker_2"


def test_main_speaker_with_subtitles_is_refused_before_any_work(tmp_path):
    """Cues are judged one by one, so the main voice of a subtitled source cannot be told: say so, keep nothing."""
    from xtts_finetune.dataset import create_dataset

    media = tmp_path / "talk.wav"
    sf.write(media, np.zeros(22050, dtype=np.float32), 22050)
    srt = write_srt(tmp_path / "talk.srt", [(0.1, 0.9, "Hello there.")])
    with pytest.raises(UserError, match="--main-speaker cannot tell the main voice") as err:
        create_dataset(tmp_path / "ws", language="en", audio=[media], subtitles=[srt], main_speaker=True)
    assert "--speaker-reference" in err.value.fix and not (tmp_path / "ws" / "dataset" / "wavs").exists()
