"""Tokenizers the project builds itself: e5's SentencePiece Unigram, and a character-level
WordPiece for the tiny test encoder. Both are built with the ``tokenizers`` library directly:
transformers 5's slow-tokenizer constructors (e.g. ``BertTokenizer(vocab_file=...)``) silently
build a 5-token vocabulary, so nothing here goes through them.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

# Chinese text, ASCII, punctuation and emoji: what bank-call transcripts and chats contain.
KEEP_RANGES = (
    (0x20, 0x7E), (0xA0, 0xFF), (0x2000, 0x206F), (0x2100, 0x22FF), (0x2460, 0x24FF), (0x2600, 0x27BF),
    (0x3000, 0x303F), (0x3100, 0x312F), (0x3200, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x20000, 0x2FA1F),
)
METASPACE = "\u2581"
# NFKC would turn the full-width tilde (common in chats: "好的～") into "~"; e5's own map keeps it.
_PROTECT = {"\uFF5E": "\uE000"}
PROBE_ZH = "您好，我想问一下这个理财产品的收益和赎回规则，手机银行App上能买吗？錢還沒到賬"


def keep_piece(piece: str) -> bool:
    return all(any(lo <= ord(c) <= hi for lo, hi in KEEP_RANGES) for c in piece.replace(METASPACE, ""))


def e5_normalizer() -> normalizers.Normalizer:
    """Mirror of the normalisation map inside e5's file: drop control characters, map odd
    whitespace (and the metaspace itself) to a space, NFKC, collapse runs of spaces."""
    steps = [normalizers.Replace(k, v) for k, v in _PROTECT.items()]
    steps += [
        normalizers.Replace(Regex(r"[\x00-\x08\x0b\x0e-\x1f\x7f\x8f\x9f]"), ""),
        normalizers.Replace(Regex("[\t\n\x0c\r\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]"), " "),
        normalizers.NFKC(),
    ]
    steps += [normalizers.Replace(v, k) for k, v in _PROTECT.items()]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def e5_tokenizer(pieces: list[str], scores: list[float], unk_id: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(pieces, scores)], unk_id=unk_id,
                                   byte_fallback=False))
    tok.normalizer = e5_normalizer()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    ids = {p: pieces.index(p) for p in ("<s>", "</s>")}
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                   model_max_length=512)


def cjk_wordpiece_vocab() -> list[str]:
    """BERT-style specials, ASCII, common punctuation and every CJK unified ideograph: tokenizes
    Chinese (simplified and traditional) one character per token with no [UNK], like bert-base-chinese."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(0x21, 0x7F)] + list("，。！？、；：“”‘’（）《》【】…—～·")
    chars += [chr(c) for c in range(0x4E00, 0xA000)]
    return specials + chars + ["##" + c for c in "0123456789abcdefghijklmnopqrstuvwxyz"]


def wordpiece_tokenizer(vocab: list[str], model_max_length: int = 512) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=False, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=model_max_length)


def unk_count(tokenizer, text: str = PROBE_ZH) -> int:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return sum(i == tokenizer.unk_token_id for i in ids)
