"""The archive's metadata store: models and engine in ``models``, writes and reads in
``queries``, leases in ``claims``, schema revisions (Alembic) in ``migrations``."""
