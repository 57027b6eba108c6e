"""A real S3 API server on loopback for the tests: moto's server mode.

The server runs in a thread of the test process, listens on 127.0.0.1 on a
free port and enforces IAM authentication once set up, so wrong credentials
are refused as a real store refuses them.  The environment points every AWS
client at dummy credentials and away from ``~/.aws`` and the instance
metadata service, so no request leaves the machine.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

REGION = "us-east-1"

# Nothing may look for credentials or configuration outside the test.
_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bootstrap-key",
    "AWS_SECRET_ACCESS_KEY": "bootstrap-secret",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Files that do not exist (botocore refuses /dev/null as a config file).
_NO_FILE = os.path.join(tempfile.gettempdir(), f"codecpickle-no-aws-{uuid.uuid4().hex}")
_ENVIRONMENT["AWS_CONFIG_FILE"] = _NO_FILE
_ENVIRONMENT["AWS_SHARED_CREDENTIALS_FILE"] = _NO_FILE
_UNSET = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)

_ALLOW_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}
# The tests' own user may also manage other users (to revoke their keys).
_ALLOW_S3_AND_IAM = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"}],
}


@dataclass
class LoopbackS3:
    """The running server: its endpoint, a valid key pair, and a boto3
    client for checking what the store holds."""

    endpoint: str
    key: str
    secret: str
    client: Any
    #: IAM client with the same credentials (allowed to manage users).
    iam: Any

    def storage_options(self, **extra: Any) -> dict[str, Any]:
        """s3fs options that reach this server with valid credentials."""
        return {
            "key": self.key,
            "secret": self.secret,
            "endpoint_url": self.endpoint,
            "client_kwargs": {"region_name": REGION},
            **extra,
        }

    def new_user(self) -> tuple[str, str, str]:
        """A new user allowed all of S3: (user name, key, secret)."""
        name = f"user-{uuid.uuid4().hex[:12]}"
        self.iam.create_user(UserName=name)
        self.iam.put_user_policy(
            UserName=name, PolicyName="s3-all", PolicyDocument=json.dumps(_ALLOW_S3)
        )
        pair = self.iam.create_access_key(UserName=name)["AccessKey"]
        return name, pair["AccessKeyId"], pair["SecretAccessKey"]

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except self.client.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey"):
                return False
            raise
        return True

    def get(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def keys(self, bucket: str) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=bucket)
        return [item["Key"] for item in listing.get("Contents", [])]

    def pending_uploads(self, bucket: str) -> list[dict[str, Any]]:
        """Multipart uploads started and neither completed nor aborted."""
        return self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])

    def part_count(self, bucket: str, key: str) -> int:
        """Parts of the multipart upload that wrote the object (1 for a
        single PUT): S3 ETags of multipart objects end in ``-<parts>``."""
        etag = self.client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        return int(etag.rpartition("-")[2]) if "-" in etag else 1


def _post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


@contextmanager
def loopback_s3() -> Iterator[LoopbackS3]:
    """Start moto's S3 server on 127.0.0.1, create an IAM user allowed all
    of S3, turn authentication on, and stop everything on exit."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as env:
        for name, value in _ENVIRONMENT.items():
            env.setenv(name, value)
        for name in _UNSET:
            env.delenv(name, raising=False)
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
        env.setenv("NO_PROXY", no_proxy)
        env.setenv("no_proxy", no_proxy)

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        try:
            import boto3

            # Authentication starts off (moto's default): set up a user, then
            # enforce it for every later request.
            iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)
            iam.create_user(UserName="codecpickle-tests")
            iam.put_user_policy(
                UserName="codecpickle-tests",
                PolicyName="s3-all",
                PolicyDocument=json.dumps(_ALLOW_S3_AND_IAM),
            )
            pair = iam.create_access_key(UserName="codecpickle-tests")["AccessKey"]
            _post(f"{endpoint}/moto-api/reset-auth", b"0")
            credentials = {
                "endpoint_url": endpoint,
                "region_name": REGION,
                "aws_access_key_id": pair["AccessKeyId"],
                "aws_secret_access_key": pair["SecretAccessKey"],
            }
            yield LoopbackS3(
                endpoint,
                pair["AccessKeyId"],
                pair["SecretAccessKey"],
                boto3.client("s3", **credentials),
                boto3.client("iam", **credentials),
            )
        finally:
            # moto's settings are process-wide: leave authentication as found.
            _post(f"{endpoint}/moto-api/reset-auth", b"inf")
            _post(f"{endpoint}/moto-api/reset", b"")
            server.stop()
