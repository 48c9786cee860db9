"""Plain-words reasons for a recommendation, from its source and what the user's profile says."""

from __future__ import annotations

from .features.users import UserState
from .types import Item

MAX_REASONS = 3
STRONG_TREND = 0.5


def _best_tag(item: Item, user: UserState, now: float, short_term: bool) -> str | None:
    def score(tag: str) -> float:
        key = ("hashtag", tag)
        return user.short_scores.get(key, now) if short_term else user.long_score(key, now)

    scored = [(score(tag), tag) for tag in item.hashtags]
    scored = [pair for pair in scored if pair[0] > 0.5]
    return max(scored)[1] if scored else None


def _sound_reason(item: Item, user: UserState, now: float) -> str | None:
    if item.sound_id and user.long_score(("sound", item.sound_id), now) > 0.5:
        return "Uses a sound you've been enjoying"
    return None


def reasons_for(item: Item, source: str, also_from: list[str], user: UserState, trend: float, now: float) -> list[str]:
    reasons: list[str] = []
    if source == "following":
        reasons.append("New from a creator you follow")
    elif source == "ann/short_term":
        tag = _best_tag(item, user, now, short_term=True)
        reasons.append(
            f"Because you just watched videos about #{tag}" if tag else "Similar to what you're watching now"
        )
    elif source == "ann/long_term":
        tag = _best_tag(item, user, now, short_term=False)
        if tag:
            reasons.append(f"Because you liked videos about #{tag}")
        elif item.category and item.category in user.declared_topics:
            reasons.append(f"Because you're interested in {item.category}")
        else:
            reasons.append("Similar to videos you enjoyed")
    elif source == "item2item":
        reasons.append("People who liked the videos you liked also enjoyed this")
    elif source == "sequence/next":
        reasons.append("Often watched next after videos like your latest ones")
    elif source == "trending":
        reasons.append("Trending now")
    elif source == "sound":
        reasons.append(_sound_reason(item, user, now) or "Uses a trending sound")
    elif source == "fresh":
        reasons.append("A new upload looking for its first viewers")
    elif source == "explore":
        reasons.append("Something new to explore")
    else:
        reasons.append("Popular right now")

    if source != "following" and item.creator_id in user.follows:
        reasons.append("From a creator you follow")
    if source != "trending" and trend >= STRONG_TREND:
        reasons.append("Trending now")
    if not source.startswith("ann/"):
        tag = _best_tag(item, user, now, short_term=False)
        if tag:
            reasons.append(f"Because you liked videos about #{tag}")
    if source != "sound" and (sound := _sound_reason(item, user, now)):
        reasons.append(sound)
    if "item2item" in also_from and source != "item2item":
        reasons.append("People who liked the videos you liked also enjoyed this")
    unique = list(dict.fromkeys(reasons))
    return unique[:MAX_REASONS]
