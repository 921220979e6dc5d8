"""MongoDB through pymongo: ``setup_mongodb(app, ...)`` attaches the helper as ``app.mongo``."""

from __future__ import annotations

from database.mongodb.helper import DEFAULT_FIND_LIMIT, MongoHelper, UpdateCounts
from database.mongodb.setup import EXTENSION, build_uri, setup_mongodb

__all__ = [
    "DEFAULT_FIND_LIMIT",
    "EXTENSION",
    "MongoHelper",
    "UpdateCounts",
    "build_uri",
    "setup_mongodb",
]
