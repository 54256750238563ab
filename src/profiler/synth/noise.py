"""Spoken-style and ASR-like corruption of clean phrasings.

Real call transcripts have hesitations, repeated words, no punctuation, homophone errors from
the recogniser, the odd traditional character and English abbreviations. A model trained on
clean templates breaks on all of them, so every rendered customer turn passes through here.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# Homophone / near-homophone confusions typical of Mandarin ASR output.
HOMOPHONES = {
    "理财": ["理才", "里财"], "基金": ["鸡金", "基今"], "收益": ["收亿", "手益"], "利息": ["利希", "力息"],
    "保险": ["保显", "报险"], "定期": ["订期", "定其"], "赎回": ["属回", "赎会"], "手续费": ["手续飞"],
    "网点": ["网店"], "存款": ["存宽"], "黄金": ["皇金"], "微信": ["威信", "维信"], "利率": ["利律"],
    "期限": ["期线"], "本金": ["本今"], "风险": ["风显"], "账户": ["帐户"], "已经": ["以经"],
    "年化": ["年华"], "稳健": ["稳建"], "活期": ["活气"], "银行": ["因行"], "股票": ["古票"],
    "投资": ["头资"], "信托": ["信拖"], "证券": ["正券"], "在": ["再"], "做": ["作"], "那": ["哪"],
    "短信": ["短讯"], "电话": ["店话"], "到期": ["道期"], "客户经理": ["客户精力"], "不需要": ["不许要"],
}
_SIMPLIFIED = "钱银财买卖会说这个们时间险资为还没对请问点来后吗么听电话号网机产费岁儿妈证欢经贷额转账户当头种样从给让开关门现发过东边几实样亏间与"
_TRADITIONAL = "錢銀財買賣會說這個們時間險資為還沒對請問點來後嗎麼聽電話號網機產費歲兒媽證歡經貸額轉賬戶當頭種樣從給讓開關門現發過東邊幾實樣虧間與"
TO_TRADITIONAL = str.maketrans(_SIMPLIFIED, _TRADITIONAL)
LEAD_FILLERS = ["嗯", "呃", "那个", "就是", "啊", "哎", "这个嘛", "嗯……", "额", "那个那个", "我跟你说", "怎么说呢"]
TAIL_PARTICLES = ["啊", "哈", "呢", "嘛", "呀", "哦"]
ENGLISH = {"App": ["App", "APP", "app", "a p p"], "手机银行": ["手机银行", "手机银行App", "手机银行APP"],
           "贵宾": ["贵宾", "VIP"], "好的": ["好的", "OK", "ok"], "微信": ["微信", "微信", "WeChat"]}
PUNCT = re.compile(r"[，。！？、,.!?；;：:]")


@dataclass(frozen=True)
class NoiseConfig:
    filler_rate: float = 0.35        # a hesitation before the turn
    particle_rate: float = 0.2       # a sentence-final particle
    repeat_rate: float = 0.1         # "我我我", "就是就是"
    no_punct_rate: float = 0.45      # ASR output without punctuation
    space_punct_rate: float = 0.15   # punctuation turned into spaces
    asr_rate: float = 0.12           # chance each confusable word is misrecognised
    traditional_rate: float = 0.04   # the whole turn in traditional characters
    english_rate: float = 0.3        # App/VIP/OK code-switching where it fits


def corrupt(text: str, rng: random.Random, cfg: NoiseConfig) -> str:
    """Apply each corruption with its configured probability; never returns an empty string."""
    out = _code_switch(text, rng, cfg.english_rate)
    out = _homophones(out, rng, cfg.asr_rate)
    if rng.random() < cfg.repeat_rate and len(out) >= 2:
        n = rng.choice([1, 2])
        out = out[:n] + out[:n] + out
    if rng.random() < cfg.filler_rate:
        out = rng.choice(LEAD_FILLERS) + rng.choice(["", "，", " "]) + out
    if rng.random() < cfg.particle_rate and not PUNCT.search(out[-1:]):
        out += rng.choice(TAIL_PARTICLES)
    roll = rng.random()
    if roll < cfg.no_punct_rate:
        out = PUNCT.sub("", out)
    elif roll < cfg.no_punct_rate + cfg.space_punct_rate:
        out = PUNCT.sub(" ", out).strip()
    if rng.random() < cfg.traditional_rate:
        out = out.translate(TO_TRADITIONAL)
    return out.strip() or text


def _homophones(text: str, rng: random.Random, rate: float) -> str:
    if rate <= 0:
        return text
    for word, subs in HOMOPHONES.items():
        if word in text and rng.random() < rate:
            text = text.replace(word, rng.choice(subs), 1)
    return text


def _code_switch(text: str, rng: random.Random, rate: float) -> str:
    for word, forms in ENGLISH.items():
        if word in text and rng.random() < rate:
            text = text.replace(word, rng.choice(forms), 1)
    return text
