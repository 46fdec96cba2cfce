"""An S3-compatible server on 127.0.0.1 for the tests that keep uploads in a bucket: moto's
server (a real HTTP server speaking the S3 protocol), which the real boto3 client, through
django-storages, talks to as it would to AWS, MinIO or any S3-compatible store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.fakes.local_server import free_port

REGION = "eu-west-1"
ACCESS_KEY = "tranche-test-access"
SECRET_KEY = "tranche-test-secret"  # the fake server accepts any


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def bucket(self, name: str) -> str:
        """A new, empty bucket; its name."""
        self.client().create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        return name

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object in `bucket`, by key."""
        client = self.client()
        listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {
            item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            for item in listed
        }

    def env(self, bucket: str) -> dict[str, str]:
        """The settings (environment variables) that put uploads in `bucket`."""
        return {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": bucket,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_REGION": REGION,
            "S3_ACCESS_KEY_ID": ACCESS_KEY,
            "S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def storages(self, bucket: str, base: dict[str, Any]) -> dict[str, Any]:
        """Django's STORAGES with uploads in `bucket`, as those variables make it."""
        from tranche.core.env import storage_settings

        s3 = {
            "bucket_name": bucket,
            "endpoint_url": self.endpoint_url,
            "region_name": REGION,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "location": None,
        }
        return {**base, "default": storage_settings("s3", s3=s3)["default"]}


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()
