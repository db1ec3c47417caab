"""The S3 test server's fixtures for the storage tests."""

from tests.s3_server import own_server, s3_bucket, s3_endpoint, s3_env

__all__ = ["own_server", "s3_bucket", "s3_endpoint", "s3_env"]
