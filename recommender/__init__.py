"""ForYou's recommender as a library: items and events in, a ranked, explained feed out.

It never imports the web layer or the ORM; storage reaches it through ``recommender.ports``.
"""

from .api import Recommender
from .config import RecommenderConfig
from .jobs import JOBS, JobSpec
from .ports import ModelStore, ModelVersionRecord
from .stores import InMemoryModelStore
from .types import EVENT_TYPES, Event, FeedContext, Item, Recommendation

__all__ = [
    "EVENT_TYPES",
    "JOBS",
    "Event",
    "FeedContext",
    "InMemoryModelStore",
    "Item",
    "JobSpec",
    "ModelStore",
    "ModelVersionRecord",
    "Recommendation",
    "Recommender",
    "RecommenderConfig",
]
