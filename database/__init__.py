"""Data layer: SQL through SQLAlchemy (``database.sql``), MongoDB through pymongo."""
