"""The S3 test server's fixtures for the storage tests."""

from tests.s3_server import s3_bucket, s3_endpoint, s3_env

__all__ = ["s3_bucket", "s3_endpoint", "s3_env"]
