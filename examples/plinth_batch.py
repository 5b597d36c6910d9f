#!/usr/bin/python3
"""Iterate a dataset of small samples stored in Plinth through batch GET.

A drop-in sample iterator for a training loop: the keys under a prefix are
listed once (boto3, ListObjectsV2), then fetched in batches of N keys per
request with Plinth's batch GET (POST /{bucket}?batch, signed with
botocore's SigV4 signer); each answer is a tar stream read as it arrives
(tarfile's stream mode), so a batch is never held whole.

    from plinth_batch import PlinthSamples
    samples = PlinthSamples("http://127.0.0.1:9000", "train", prefix="imgs/",
                            batch_size=256, shuffle=True, seed=epoch)
    for key, data in samples:
        ...  # decode, augment, feed the model

Credentials come from the usual AWS variables (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION) or are passed in. Needs only
Debian's python3-boto3.

Command line (prints one line per sample: key, size, MD5; then a summary):

    plinth_batch.py --endpoint URL --bucket B [--prefix P] [--batch-size N]
                    [--shuffle --seed S] [--continue-on-error] [--quiet]
"""

import argparse
import hashlib
import json
import os
import random
import sys
import tarfile
import time
import urllib.parse
import http.client

import boto3
import botocore.session
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest

MAX_BATCH = 10000


class BatchError(Exception):
    """The gateway refused a batch (an S3 error document)."""

    def __init__(self, status, body):
        super().__init__("batch GET failed: HTTP %d: %s" % (status, body[:500]))
        self.status = status
        self.body = body


class PlinthBatch:
    """One signed batch GET: entries in, (name, bytes) pairs out, in order."""

    def __init__(self, endpoint, region=None, access_key=None,
                 secret_key=None, timeout=120):
        self.endpoint = endpoint.rstrip("/")
        u = urllib.parse.urlsplit(self.endpoint)
        if u.scheme not in ("http", "https"):
            raise ValueError("endpoint must be http(s)://host:port")
        self._scheme, self._netloc = u.scheme, u.netloc
        session = botocore.session.get_session()
        creds = session.get_credentials()
        if access_key:
            from botocore.credentials import Credentials
            creds = Credentials(access_key, secret_key)
        if creds is None:
            raise ValueError("no AWS credentials (AWS_ACCESS_KEY_ID, ...)")
        self._creds = creds.get_frozen_credentials() if hasattr(
            creds, "get_frozen_credentials") else creds
        self.region = (region or os.environ.get("AWS_DEFAULT_REGION")
                       or "us-east-1")
        self.timeout = timeout

    def _connection(self):
        cls = (http.client.HTTPSConnection if self._scheme == "https"
               else http.client.HTTPConnection)
        return cls(self._netloc, timeout=self.timeout)

    def get(self, bucket, entries, continue_on_error=False):
        """Yields (name, bytes) for each entry, in request order.

        entries: a list of keys (str) or dicts with "key" and optionally
        "bucket", "versionId", "range" ("bytes=0-99"), "name". With
        continue_on_error, an entry that cannot be read arrives as
        "<name>.error" holding "<Code>\\n<Message>\\n"."""
        if not 1 <= len(entries) <= MAX_BATCH:
            raise ValueError("a batch has 1 to %d entries" % MAX_BATCH)
        body = json.dumps({
            "entries": [e if isinstance(e, dict) else {"key": e}
                        for e in entries],
            "continueOnError": bool(continue_on_error),
        }).encode()
        url = "%s/%s?batch" % (self.endpoint, urllib.parse.quote(bucket))
        req = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": "application/json"})
        S3SigV4Auth(self._creds, "s3", self.region).add_auth(req)
        conn = self._connection()
        try:
            path = "/%s?batch" % urllib.parse.quote(bucket)
            conn.request("POST", path, body=body, headers=dict(req.headers))
            resp = conn.getresponse()
            if resp.status != 200:
                raise BatchError(resp.status,
                                 resp.read().decode("utf-8", "replace"))
            # stream mode: members are read in order as the bytes arrive
            with tarfile.open(fileobj=resp, mode="r|") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    f = tar.extractfile(member)
                    yield member.name, f.read()
        finally:
            conn.close()


class PlinthSamples:
    """An iterable over (key, bytes) of every object under a prefix,
    fetched batch_size at a time; a new iteration is a new epoch (shuffled
    with seed + epoch when shuffle is set)."""

    def __init__(self, endpoint, bucket, prefix="", batch_size=256,
                 shuffle=False, seed=0, keys=None, continue_on_error=False,
                 **kw):
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError("batch_size: 1 to %d" % MAX_BATCH)
        self.bucket = bucket
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.continue_on_error = continue_on_error
        self.batch = PlinthBatch(endpoint, **kw)
        self.keys = list(keys) if keys is not None else self._list(
            endpoint, bucket, prefix, kw)

    @staticmethod
    def _list(endpoint, bucket, prefix, kw):
        s3 = boto3.client(
            "s3", endpoint_url=endpoint,
            region_name=kw.get("region") or os.environ.get(
                "AWS_DEFAULT_REGION", "us-east-1"),
            aws_access_key_id=kw.get("access_key"),
            aws_secret_access_key=kw.get("secret_key"))
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return keys

    def __len__(self):
        return len(self.keys)

    def __iter__(self):
        keys = list(self.keys)
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(keys)
        self.epoch += 1
        for i in range(0, len(keys), self.batch_size):
            chunk = keys[i:i + self.batch_size]
            # the archive's names are the keys (no "name" given)
            yield from self.batch.get(self.bucket, chunk,
                                      self.continue_on_error)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--shuffle", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--continue-on-error", action="store_true")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    samples = PlinthSamples(a.endpoint, a.bucket, prefix=a.prefix,
                            batch_size=a.batch_size, shuffle=a.shuffle,
                            seed=a.seed,
                            continue_on_error=a.continue_on_error)
    n = size = 0
    t0 = time.monotonic()
    for key, data in samples:
        n += 1
        size += len(data)
        if not a.quiet:
            print("%s\t%d\t%s" % (key, len(data),
                                  hashlib.md5(data).hexdigest()))
    dt = time.monotonic() - t0
    print("# %d samples, %d bytes, %.3f s, %.0f samples/s"
          % (n, size, dt, n / dt if dt > 0 else 0.0))
    return 0 if n == len(samples) else 1


if __name__ == "__main__":
    sys.exit(main())
