"""The archive's metadata store: models and engine in ``models``, writes and reads in ``queries``."""
