"""One JSON object per line, safe for every line splitter downstream.

``json.dumps(ensure_ascii=False)`` keeps Chinese readable but writes U+2028, U+2029 and U+0085 raw:
legal JSON, yet ``str.splitlines()``, JavaScript and many log shippers treat them as line breaks
and cut the record in two. They are written as \\u escapes instead (the same string once parsed).
"""

from __future__ import annotations

import json
from typing import Any

_ESCAPES = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\u0085": "\\u0085"})


def dumps_line(obj: Any) -> str:
    """``obj`` as one JSONL line, newline included."""
    return json.dumps(obj, ensure_ascii=False).translate(_ESCAPES) + "\n"
