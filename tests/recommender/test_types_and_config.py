import numpy as np
import pytest

from recommender import EVENT_TYPES, Event, FeedContext, Item, RecommenderConfig


def test_event_rejects_unknown_type():
    with pytest.raises(ValueError):
        Event("e1", "u", "poke", 1.0, "v")


def test_event_types_match_the_documented_taxonomy():
    assert set(EVENT_TYPES) == {
        "like", "unlike", "comment", "share", "follow", "unfollow", "save", "unsave", "view", "complete_view",
        "replay", "skip", "hide", "report", "content_upload", "impression",
    }


def test_item_normalises_hashtags_and_vector():
    item = Item("v", "c", [1, 2, 3], hashtags=["#Cats", " Dogs "])
    assert item.hashtags == ("cats", "dogs")
    assert item.vector.dtype == np.float32
    assert item.category == "cats"  # no explicit topic: first hashtag
    assert Item("w", "c", None, hashtags=("x",), topic="Pets").category == "Pets"


def test_config_overrides_plain_and_dotted_fields():
    config = RecommenderConfig()
    changed = config.with_overrides({"max_topic_share": 0.3, "value_weights.like": 5.0, "explore_slots": 2})
    assert changed.max_topic_share == 0.3
    assert changed.value_weights["like"] == 5.0
    assert changed.value_weights["skip"] == config.value_weights["skip"]
    assert config.value_weights["like"] == 1.0  # the original is untouched
    assert changed.explore_slots == 2


@pytest.mark.parametrize("overrides", [{"no_such_setting": 1}, {"max_topic_share": "lots"}, {"mmr_lambda.x": 1}])
def test_config_overrides_reject_bad_input(overrides):
    with pytest.raises(ValueError):
        RecommenderConfig().with_overrides(overrides)


def test_feed_context_defaults():
    context = FeedContext()
    assert context.exclude == frozenset() and context.overrides is None
