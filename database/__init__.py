"""Data layer: SQL through SQLAlchemy (``database.sql``) and MongoDB through pymongo (``database.mongodb``)."""
