"""A labelled bank-call corpus from the phrasebook.

Each dialogue is an opening, 0-8 episodes and a closing (4-20 turns). An episode is an agent turn
and a customer turn; the customer turn is either untagged small talk or one of these modes:

  direct   a self-contained phrasing, sometimes glued to one or two more tags' phrasings
  reply    an elliptical answer ("下午吧") after the dimension's question
  ask      a bare "对/有/可以" after a yes/no question that implies the tag
  ask_no   a bare "没有/不用" after a question whose "no" implies the tag

Tags are drawn by remaining quota, so every tag reaches its per-split target without a huge corpus.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from profiler.synth.noise import NoiseConfig, corrupt
from profiler.synth.phrasebook import Phrasebook, phrase_id
from profiler.taxonomy import Taxonomy

CONTEXT_MODES = ("reply", "ask", "ask_no")


@dataclass(frozen=True)
class SynthConfig:
    seed: int = 13
    per_tag: dict[str, int] = field(default_factory=lambda: {"train": 75, "dev": 15, "test": 15})
    held_out_fraction: float = 0.3   # share of each tag's phrasings reserved for the test split
    train_phrasing_fraction: float = 1.0  # share of the remaining phrasings train/dev may use (learning
                                          # curves over phrasing variety; the test split is unchanged)
    context_rate: float = 0.35       # chance a tag is expressed through a context-only mode
    multi_tag_rate: float = 0.3      # chance a direct turn carries a second (and maybe third) tag
    small_talk_rate: float = 0.2     # chance an episode is untagged small talk
    max_episodes: int = 8
    customers_share: float = 0.7     # customers per dialogue: <1 means some customers call again
    id_prefix: str = ""              # before dialogue/customer ids, so corpora can be combined
    voices: bool = True              # also write the writers' utterances (train_voices/dev_voices/test_voices)
    voices_dev_writers: tuple[str, ...] = ("h01",)  # held-out writers whose text tunes thresholds (dev);
                                                    # the other held-out writers form test_voices
    voices_train_fraction: float = 1.0  # <1: keep this share of train_voices (learning curves over corpus size)
    noise: NoiseConfig = field(default_factory=NoiseConfig)


@dataclass
class Turn:
    speaker: str
    text: str
    labels: list[str] | None = None
    mode: str = "frame"
    phrases: list[str] = field(default_factory=list)

    @property
    def context_dependent(self) -> bool:
        return self.mode in CONTEXT_MODES


class DialogueWriter:
    """Renders dialogues for one split from one phrasing pool."""

    def __init__(self, taxonomy: Taxonomy, pool: Phrasebook, cfg: SynthConfig, rng: random.Random):
        self.tax, self.pool, self.cfg, self.rng = taxonomy, pool, cfg, rng
        self.counts = {t: 0 for t in taxonomy.ids}

    # --- tag choice ----------------------------------------------------------------------
    def pick_tag(self, target: int, exclude: set[str] = frozenset()) -> str:
        ids = [t for t in self.tax.ids if t not in exclude]
        weights = [max(target - self.counts[t], 0) + 0.3 for t in ids]
        return self.rng.choices(ids, weights)[0]

    def fill(self, template: str) -> str:
        out = template
        for name, values in self.pool.slots.items():
            while "{" + name + "}" in out:
                out = out.replace("{" + name + "}", self.rng.choice(values), 1)
        return out

    def frame(self, kind: str) -> str:
        return self.fill(self.rng.choice(self.pool.frame[kind]))

    # --- episodes ------------------------------------------------------------------------
    def modes_for(self, tag_id: str) -> list[str]:
        p = self.pool.tags[tag_id]
        dim = self.tax.tag(tag_id).dimension_id
        modes = []
        if p.reply and self.pool.dimension_asks.get(dim):
            modes.append("reply")
        if p.ask and self.pool.frame["generic_yes"]:
            modes.append("ask")
        if p.ask_no and self.pool.frame["generic_no"]:
            modes.append("ask_no")
        return modes

    def agent_for(self, tag_id: str) -> str:
        """An agent turn that plausibly precedes this tag's direct phrasing."""
        asks = self.pool.dimension_asks.get(self.tax.tag(tag_id).dimension_id, ())
        roll = self.rng.random()
        if asks and roll < 0.45:
            return self.ask_text(self.rng.choice(asks))
        if tag_id.startswith("objection.") and roll < 0.75:
            return self.frame("agent_offer")
        return self.frame(self.rng.choice(["agent_prompt", "agent_statement", "agent_offer"]))

    def ask_text(self, ask: str) -> str:
        return self.frame("agent_offer") if ask == "offer" else self.fill(ask)

    def episode(self, target: int) -> tuple[Turn, Turn]:
        tag_id = self.pick_tag(target)
        modes = self.modes_for(tag_id)
        if modes and self.rng.random() < self.cfg.context_rate:
            return self.context_episode(tag_id, self.rng.choice(modes))
        return Turn("agent", self.agent_for(tag_id)), self.direct_turn(tag_id, target)

    def context_episode(self, tag_id: str, mode: str) -> tuple[Turn, Turn]:
        p = self.pool.tags[tag_id]
        if mode == "reply":
            agent = self.ask_text(self.rng.choice(self.pool.dimension_asks[self.tax.tag(tag_id).dimension_id]))
            raw = self.rng.choice(p.reply)
            pid = phrase_id(f"{tag_id}/reply", raw)
        else:
            agent = self.fill(self.rng.choice(p.ask if mode == "ask" else p.ask_no))
            raw = self.rng.choice(self.pool.frame["generic_yes" if mode == "ask" else "generic_no"])
            pid = phrase_id(f"generic_{'yes' if mode == 'ask' else 'no'}", raw)
        self.counts[tag_id] += 1
        text = corrupt(self.fill(raw), self.rng, self.cfg.noise)
        return Turn("agent", agent), Turn("customer", text, [tag_id], mode, [f"{tag_id}/{mode}", pid])

    def direct_turn(self, tag_id: str, target: int) -> Turn:
        tags = [tag_id]
        if self.rng.random() < self.cfg.multi_tag_rate:
            tags.append(self.co_tag(tags, target))
            if self.rng.random() < 0.25:
                tags.append(self.co_tag(tags, target))
        parts, phrases = [], []
        for t in tags:
            raw = self.rng.choice(self.pool.tags[t].say)
            parts.append(self.fill(raw))
            phrases.append(phrase_id(f"{t}/say", raw))
            self.counts[t] += 1
        text = parts[0]
        for part in parts[1:]:
            text += self.rng.choice(self.pool.frame["connector"]) + part
        mode = "direct" if len(tags) == 1 else "multi"
        return Turn("customer", corrupt(text, self.rng, self.cfg.noise), tags, mode, phrases)

    def co_tag(self, chosen: list[str], target: int) -> str:
        """A second tag that may share a turn: never two values of one exclusive dimension."""
        blocked = set(chosen)
        for t in chosen:
            dim = self.tax.tag(t).dimension_id
            if dim in self.tax.exclusive_groups:
                blocked.update(self.tax.exclusive_groups[dim])
        return self.pick_tag(target, exclude=blocked)

    def small_talk(self) -> tuple[Turn, Turn]:
        agent = self.frame(self.rng.choice(["agent_statement", "agent_statement", "agent_prompt"]))
        pool = "generic_yes" if self.rng.random() < 0.25 and "？" not in agent else "filler"
        return Turn("agent", agent), Turn("customer", corrupt(self.frame(pool), self.rng, self.cfg.noise), [],
                                           "small_talk")

    def dialogue(self, target: int) -> list[Turn]:
        turns = [Turn("agent", self.frame("agent_opening")),
                 Turn("customer", corrupt(self.frame("customer_opening"), self.rng, self.cfg.noise), [])]
        for _ in range(self.rng.randint(0, self.cfg.max_episodes)):
            turns.extend(self.small_talk() if self.rng.random() < self.cfg.small_talk_rate else self.episode(target))
        turns += [Turn("agent", self.frame("agent_closing")),
                  Turn("customer", corrupt(self.frame("customer_closing"), self.rng, self.cfg.noise), [])]
        return turns

    def done(self, target: int) -> bool:
        return min(self.counts.values()) >= target


def generate_split(taxonomy: Taxonomy, pool: Phrasebook, cfg: SynthConfig, split: str,
                   seed: int) -> list[tuple[dict, list[Turn]]]:
    """Dialogues until every tag has ``cfg.per_tag[split]`` positive customer turns.

    Returns (contract dialogue, rendered turns with provenance) pairs.
    """
    rng = random.Random(seed)
    writer = DialogueWriter(taxonomy, pool, cfg, rng)
    target = cfg.per_tag[split]
    out: list[tuple[dict, list[Turn]]] = []
    customer, start = None, datetime(2026, 1, 5, 9, 0)
    while not writer.done(target):
        turns = writer.dialogue(target)
        if customer is None or rng.random() < cfg.customers_share:
            customer = f"{cfg.id_prefix}{split}-C{len(out):06d}"
            start = datetime(2026, 1, 5, 9, 0) + timedelta(days=rng.randint(0, 200), minutes=rng.randint(0, 600))
        else:
            start += timedelta(days=rng.randint(3, 40), minutes=rng.randint(-120, 120))
        dialogue = {
            "dialogue_id": f"{cfg.id_prefix}{split}-D{len(out):06d}",
            "customer_id": customer,
            "started_at": start.isoformat(timespec="seconds"),
            "channel": rng.choice(["outbound_call", "outbound_call", "inbound_call"]),
            "annotation": {"taxonomy_version": taxonomy.version},  # fully annotated under this version
            "turns": [{"speaker": t.speaker, "text": t.text, **({"labels": t.labels} if t.speaker == "customer" else {})}
                      for t in turns],
        }
        out.append((dialogue, turns))
    return out
