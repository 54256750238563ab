"""privacy.redact: planted personal numbers are masked; near-misses that only look like them are not."""

import numpy as np
import pytest

from profiler.predict.profiles import aggregate, render
from profiler.privacy import id_checksum_ok, luhn_ok, redact
from profiler.report.errors import error_rows


def with_check_digit(first17: str) -> str:
    return next(first17 + c for c in "0123456789X" if id_checksum_ok(first17 + c))


def luhn_complete(prefix: str) -> str:
    return next(prefix + d for d in "0123456789" if luhn_ok(prefix + d))


ID = with_check_digit("11010519491231002")          # 11010519491231002X
WRONG_ID = ID[:-1] + ("0" if ID[-1] != "0" else "1")
CARD = luhn_complete("622202123456789012")           # 19 digits
CARD16 = luhn_complete("436742123456789")            # 16 digits
BAD_CARD = CARD[:-1] + str((int(CARD[-1]) + 1) % 10)


@pytest.mark.parametrize("text, expected", [
    ("我的手机13812345678，打给我", "我的手机[PHONE]，打给我"),
    ("电话 138-1234-5678 或 +86 139 1234 5678", "电话 [PHONE] 或 [PHONE]"),
    ("座机010-12345678找我", "座机[PHONE]找我"),
    (f"身份证{ID}。", "身份证[ID]。"),
    (f"身份证号{ID.lower()}", "身份证号[ID]"),
    (f"卡号{CARD}尾号", "卡号[CARD]尾号"),
    (f"卡号 {CARD16[:4]} {CARD16[4:8]} {CARD16[8:12]} {CARD16[12:]}", "卡号 [CARD]"),
    ("邮件发到wang.li+vip@example.com.cn吧", "邮件发到[EMAIL]吧"),
])
def test_planted_numbers_are_masked(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "12812345678",                                  # 11 digits but no mobile prefix
    "1381234567",                                   # 10 digits
    "订单号2023120113812345678901",                  # a phone number inside a longer digit run
    f"身份证{WRONG_ID}",                              # 18 digits with a wrong check digit
    f"卡号{BAD_CARD}",                               # fails Luhn
    "金额50000元，日期20231201，利率3.85%",
    "产品代码 000001，期限 365 天",
    "我的邮箱是 wang at example",
])
def test_near_misses_are_left_alone(text):
    assert redact(text) == text


def test_profile_evidence_is_masked_by_default_and_raw_on_request(taxonomy):
    tag = taxonomy.ids[0]
    turn = {"dialogue_id": "d1", "turn_index": 0, "text": "打我手机13812345678", "labels": [tag],
            "scores": {tag: 0.9}, "customer_id": "c1", "started_at": None}
    masked = render(aggregate([turn], taxonomy)[0], taxonomy)
    raw = render(aggregate([turn], taxonomy, redact=False)[0], taxonomy)
    quote = lambda p: next(iter(p["dimensions"].values()))["tags"][0]["evidence"][0]["text"]  # noqa: E731
    assert quote(masked) == "打我手机[PHONE]" and quote(raw) == "打我手机13812345678"


def test_report_error_examples_are_masked(taxonomy):
    turns = {"dialogue_id": ["d1"], "turn_index": [1], "text": [f"卡号{CARD}"],
             "context_speakers": [["agent"]], "context_texts": [["请问您的邮箱是 a@b.cn 吗"]]}
    truth, pred = np.zeros((1, len(taxonomy)), bool), np.zeros((1, len(taxonomy)), bool)
    pred[0, 0] = True
    probs = pred.astype(float)
    (row,) = error_rows(turns, truth, probs, pred, taxonomy)
    assert row["text"] == "卡号[CARD]" and row["context"][0]["text"] == "请问您的邮箱是 [EMAIL] 吗"
    (raw,) = error_rows(turns, truth, probs, pred, taxonomy, redact=False)
    assert raw["text"] == f"卡号{CARD}"
