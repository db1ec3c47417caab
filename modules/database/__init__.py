"""The archive's metadata store: models and engine in ``models``, writes and reads in
``queries``, day records in ``days``, schema revisions (Alembic) in ``migrations``."""
