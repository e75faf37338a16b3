"""What an evaluation speaks: the dataset's eval clips' texts, a few built-in sentences, or the user's file.

The built-in lists mix lengths on purpose: fine-tuned XTTS models are known to babble after short
sentences, and to drop words in long ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xtts_finetune.errors import UserError
from xtts_finetune.languages import normalize_language

BUILTIN = {
    "en": ["Yes, of course.", "The weather will be lovely tomorrow morning.",
           "Please call me back when you have read the letter I sent you last week."],
    "es": ["Sí, claro.", "Mañana por la mañana hará muy buen tiempo.",
           "Por favor, llámame cuando hayas leído la carta que te envié la semana pasada."],
    "fr": ["Oui, bien sûr.", "Il fera très beau demain matin.",
           "Rappelle-moi quand tu auras lu la lettre que je t'ai envoyée la semaine dernière."],
    "de": ["Ja, natürlich.", "Morgen früh wird das Wetter sehr schön.",
           "Bitte ruf mich an, wenn du den Brief gelesen hast, den ich dir letzte Woche geschickt habe."],
    "it": ["Sì, certo.", "Domani mattina farà molto bel tempo.",
           "Richiamami quando avrai letto la lettera che ti ho mandato la settimana scorsa."],
    "pt": ["Sim, claro.", "Amanhã de manhã vai estar um tempo muito bom.",
           "Liga-me quando tiveres lido a carta que te enviei na semana passada."],
    "pl": ["Tak, oczywiście.", "Jutro rano będzie bardzo ładna pogoda.",
           "Zadzwoń do mnie, kiedy przeczytasz list, który wysłałem ci w zeszłym tygodniu."],
    "tr": ["Evet, tabii ki.", "Yarın sabah hava çok güzel olacak.",
           "Geçen hafta sana gönderdiğim mektubu okuduğunda lütfen beni ara."],
    "ru": ["Да, конечно.", "Завтра утром будет очень хорошая погода.",
           "Перезвони мне, когда прочитаешь письмо, которое я отправил тебе на прошлой неделе."],
    "nl": ["Ja, natuurlijk.", "Morgenochtend wordt het heel mooi weer.",
           "Bel me terug als je de brief hebt gelezen die ik je vorige week heb gestuurd."],
    "cs": ["Ano, samozřejmě.", "Zítra ráno bude velmi hezky.",
           "Zavolej mi, až si přečteš dopis, který jsem ti poslal minulý týden."],
    "ar": ["نعم، بالطبع.", "سيكون الطقس جميلا جدا صباح الغد.",
           "من فضلك اتصل بي عندما تقرأ الرسالة التي أرسلتها إليك الأسبوع الماضي."],
    "zh": ["好的，当然。", "明天早上天气会很好。", "你读完我上周寄给你的那封信以后，请给我回个电话。"],
    "ja": ["はい、もちろんです。", "明日の朝はとても良い天気になるでしょう。",
           "先週送った手紙を読んだら、電話をください。"],
    "hu": ["Igen, persze.", "Holnap reggel nagyon szép idő lesz.",
           "Hívj vissza, ha elolvastad a levelet, amit a múlt héten küldtem neked."],
    "ko": ["네, 물론이죠.", "내일 아침에는 날씨가 아주 좋을 거예요.", "지난주에 보낸 편지를 읽으면 전화해 주세요."],
    "hi": ["हाँ, बिल्कुल।", "कल सुबह मौसम बहुत अच्छा रहेगा।",
           "पिछले हफ़्ते मैंने जो चिट्ठी भेजी थी, उसे पढ़कर मुझे फ़ोन करना।"],
}


@dataclass
class Sentence:
    text: str
    source: str  # eval (with the real clip that says it) | builtin | file | user
    clip: Path | None = None


def read_sentence_file(path: Path) -> list[Sentence]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"sentence file {path} does not exist", fix="give a UTF-8 text file, one sentence a line")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text: {err}", fix="save it as UTF-8") from err
    sentences = [Sentence(line.strip(), "file") for line in lines if line.strip()]
    if not sentences:
        raise UserError(f"{path} has no sentences", fix="write one sentence a line")
    return sentences


def evaluation_sentences(language: str, eval_clips: list[tuple[Path, str]], given: Path | list[str] | None = None,
                         max_eval: int = 8) -> list[Sentence]:
    """The user's sentences (a file, or a list from the UI) if given; else up to `max_eval` eval clips' texts
    and the language's built-in list."""
    if isinstance(given, list):
        sentences = [Sentence(text.strip(), "user") for text in given if text.strip()]
        if not sentences:
            raise UserError("the sentences to evaluate with are all empty", fix="give one sentence a line")
        return sentences
    if given is not None:
        return read_sentence_file(given)
    chosen = [Sentence(text, "eval", clip) for clip, text in eval_clips[:max_eval]]
    return chosen + [Sentence(text, "builtin") for text in BUILTIN.get(normalize_language(language), [])]
