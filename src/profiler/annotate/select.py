"""Pick the customer turns worth an annotator's time for a set of tags.

A (turn, tag) pair is a candidate for the tag through:

- uncertainty: ``exp(-|logit(p) - logit(threshold)|)``, 1.0 on the tag's tuned threshold. Measured
  in logits, not probabilities, so a turn at p=0.0001 is not "near" a 0.02 threshold;
- keyword: 1.0 when the turn contains one of the tag's seed keywords. This is how tags the model
  has never seen (new in this taxonomy version) get candidates at all;
- rarity: ``(1 / share of pool turns the model, or the keywords, flag for the tag) ** power``,
  scaled to [0, 1], so a round is not spent on the tags that are everywhere already.

Picks go round-robin over the target tags, each tag's turn count in proportion to its rarity
weight, and each pick is the tag's best remaining turn that is not a near-duplicate (character
1-2-gram TF-IDF cosine above ``max_similarity``) of a turn taken and does not exceed
``per_dialogue`` turns of one dialogue. ``priority`` is ``rarity * max(uncertainty, keyword)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from profiler.data.turns import explode_dialogue
from profiler.predictor import TURN_COLUMNS, Predictor
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelectSpec:
    tags: tuple[str, ...] = ()                  # tag or dimension ids; () = every tag of the taxonomy
    n: int = 100
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tag/dimension id -> seed keywords
    max_similarity: float = 0.6
    per_dialogue: int = 2
    rarity_power: float = 0.5


@dataclass
class Candidate:
    dialogue: dict
    turn_index: int
    text: str
    priority: float
    tag: str                                    # the pair that made the turn a candidate
    probability: float | None
    keyword: str | None
    predicted: list[str]                        # the model's decided tags (pre-annotation), target tags only

    def to_dict(self) -> dict:
        return {"dialogue": self.dialogue, "turn_index": self.turn_index, "text": self.text,
                "priority": round(self.priority, 6), "reason": {"tag": self.tag, "probability": self.probability,
                                                                "keyword": self.keyword},
                "predicted": self.predicted}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def pair_scores(turns: dict[str, list], targets: list[str], predictor: Predictor | None,
                keywords: dict[str, tuple[str, ...]]) -> tuple[np.ndarray, ...]:
    """Per (turn, target tag): uncertainty, probability (NaN where the model lacks the tag), index of
    the keyword hit (-1: none) and the model's decision; per target tag: the share of turns flagged."""
    n = len(turns["text"])
    unc, probs = np.zeros((n, len(targets))), np.full((n, len(targets)), np.nan)
    flagged, decided = np.zeros((n, len(targets)), dtype=bool), np.zeros((n, len(targets)), dtype=bool)
    known = [(k, predictor.taxonomy.index[t]) for k, t in enumerate(targets)
             if predictor is not None and t in predictor.taxonomy]
    if known and n:
        p_all, d_all = predictor.predict(turns)
        cols, model_cols = [k for k, _ in known], [j for _, j in known]
        thr = np.asarray(predictor.rule.thresholds)[model_cols]
        probs[:, cols] = p_all[:, model_cols]
        unc[:, cols] = np.exp(-np.abs(_logit(p_all[:, model_cols]) - _logit(thr)[None, :]))
        decided[:, cols] = flagged[:, cols] = d_all[:, model_cols]
    hit = np.full((n, len(targets)), -1)
    for k, tag in enumerate(targets):
        words = keywords.get(tag, ())
        for i, text in enumerate(turns["text"]):
            w = next((m for m, word in enumerate(words) if word in text), -1)
            hit[i, k] = w
        flagged[:, k] |= hit[:, k] >= 0
    rate = np.maximum(flagged.mean(axis=0) if n else np.ones(len(targets)), 1.0 / max(n, 1))
    return unc, probs, hit, decided, rate


def select_turns(dialogues: list[dict], taxonomy: Taxonomy, spec: SelectSpec,
                 predictor: Predictor | None = None) -> list[Candidate]:
    targets = sorted(taxonomy.expand(spec.tags or taxonomy.ids), key=taxonomy.index.get)
    keywords = {t: tuple(words) for key, words in spec.keywords.items() for t in taxonomy.expand([key])}
    k_turns = predictor.context.max_turns if predictor is not None else 3
    rows = [(d, r) for d in dialogues for r in explode_dialogue(d, k_turns)]
    turns = {c: [r[c] for _, r in rows] for c in TURN_COLUMNS}
    unc, probs, hit, decided, rate = pair_scores(turns, targets, predictor, keywords)
    rarity = (1.0 / rate) ** spec.rarity_power
    weight = rarity / rarity.max()
    pair = np.maximum(unc, (hit >= 0).astype(float))
    picks = round_robin(pair, weight, turns["text"], [r["dialogue_id"] for _, r in rows], spec)
    out = []
    for i, k in picks:
        d, r = rows[i]
        out.append(Candidate(d, r["turn_index"], r["text"], float(weight[k] * pair[i, k]), targets[k],
                             None if np.isnan(probs[i, k]) else float(probs[i, k]),
                             keywords[targets[k]][hit[i, k]] if hit[i, k] >= 0 else None,
                             [t for t, on in zip(targets, decided[i]) if on]))
    log.info("selected %d turns from %d customer turns for %d target tags (%d tags got at least one)", len(out),
             len(rows), len(targets), len({c.tag for c in out}))
    return out


def round_robin(pair: np.ndarray, weight: np.ndarray, texts: list[str], dialogue_ids: list[str],
                spec: SelectSpec, floor: float = 0.05) -> list[tuple[int, int]]:
    """(turn, tag) picks. The next pick goes to the tag with the fewest picks per unit of weight
    (rare tags get more, every tag with a candidate gets some), and is that tag's best remaining
    turn that is neither a near-duplicate of a turn taken nor over its dialogue's cap."""
    queues = {k: [i for i in np.argsort(-pair[:, k], kind="stable") if pair[i, k] > floor]
              for k in range(pair.shape[1])}
    queues = {k: q for k, q in queues.items() if q}
    if not queues:
        return []
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2)).fit(texts)
    taken: dict[int, int] = {}
    taken_vecs: list = []
    per_dialogue: dict[str, int] = {}
    counts = np.zeros(pair.shape[1])
    while len(taken) < spec.n and queues:
        k = min(queues, key=lambda t: (counts[t] / weight[t], t))
        i = queues[k].pop(0)
        if not queues[k]:
            del queues[k]
        if i in taken or per_dialogue.get(dialogue_ids[i], 0) >= spec.per_dialogue:
            continue
        v = vec.transform([texts[i]])
        if taken_vecs and (sp.vstack(taken_vecs) @ v.T).max() > spec.max_similarity:
            continue
        taken[i] = k
        taken_vecs.append(v)
        counts[k] += 1
        per_dialogue[dialogue_ids[i]] = per_dialogue.get(dialogue_ids[i], 0) + 1
    return list(taken.items())
