#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (committed; run again
only to regenerate them). Each seed is a small valid input taken from the
unit tests, the AWS/S3 documentation examples or the project's own files."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SIG0 = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- SigV4 Authorization headers (S3 API reference examples) -------------
AUTHZ = [
    ("get-object", "host;range;x-amz-content-sha256;x-amz-date",
     "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
    ("put-object", "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
     "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
    ("lifecycle", "host;x-amz-content-sha256;x-amz-date",
     "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
    ("chunked-seed", "content-encoding;content-length;host;x-amz-content-sha256;"
     "x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
     "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"),
]
for name, sh, sig in AUTHZ:
    v = ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
         "s3/aws4_request,SignedHeaders=%s,Signature=%s" % (sh, sig))
    put("sigv4_authorization", name, v + "\n20130524T000000Z")
put("sigv4_authorization", "spaces-any-order",
    "AWS4-HMAC-SHA256  Signature=%s, SignedHeaders=host;x-amz-date, "
    "Credential=AKID/20150830/us-east-1/service/aws4_request\n20150830T123600Z"
    % AUTHZ[0][2])
put("sigv4_authorization", "v2", "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=")
put("sigv4_authorization", "date", "20130524T000000Z")
put("sigv4_authorization", "payload-streaming", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")

# --- presigned query (S3 API reference example) ---------------------------
PRESIGNED = ("X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
             "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
             "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
put("sigv4_presigned", "s3-example", PRESIGNED)
put("sigv4_presigned", "with-params", "versionId=3%2FL4kqtJlcpXroDTDmJ%2Bra&" + PRESIGNED +
    "&response-content-type=text%2Fplain&X-Amz-Security-Token=")
put("sigv4_presigned", "reordered",
    "X-Amz-SignedHeaders=host%3Bx-amz-date&X-Amz-Expires=604800&X-Amz-Date=20130524T000000Z"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    "&X-Amz-Credential=A%2F20130524%2Fr%2Fs3%2Faws4_request&X-Amz-Algorithm=AWS4-HMAC-SHA256")

# --- canonical request: flags byte, method, path, query, signed, payload, headers
def creq(flags, method, path, query, signed, payload, headers):
    return bytes([flags]) + "\n".join([method, path, query, signed, payload] + headers).encode()

put("sigv4_canonical", "get-object", creq(0, "GET", "/test.txt", "",
    "host;range;x-amz-content-sha256;x-amz-date", EMPTY,
    ["host:examplebucket.s3.amazonaws.com", "range:bytes=0-9",
     "x-amz-content-sha256:" + EMPTY, "x-amz-date:20130524T000000Z"]))
put("sigv4_canonical", "put-encoded-key", creq(0, "PUT", "/test%24file.text", "",
    "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", "UNSIGNED-PAYLOAD",
    ["Date:Fri, 24 May 2013 00:00:00 GMT", "Host:examplebucket.s3.amazonaws.com",
     "x-amz-date:20130524T000000Z", "x-amz-storage-class:REDUCED_REDUNDANCY"]))
put("sigv4_canonical", "list-objects", creq(0, "GET", "/", "prefix=J&max-keys=2&a=%2F+b&empty",
    "host;x-amz-date", EMPTY, ["host:examplebucket.s3.amazonaws.com",
                               "x-amz-date:20130524T000000Z", "X-Amz-Date:  a   b  "]))
put("sigv4_canonical", "presigned", bytes([1]) + ("GET\n/test.txt\n" + PRESIGNED +
    "\nhost\nUNSIGNED-PAYLOAD\nHost:examplebucket.s3.amazonaws.com").encode())
put("sigv4_canonical", "generic-dots", creq(2, "GET", "/a/./b/../c//d%2Fe%zz", "",
    "host", EMPTY, ["host:example.amazonaws.com"]))

# --- aws-chunked bodies (t/unit/test_chunked.c) ----------------------------
def chunked(mode, opts, declared, maxtr, seed, body):
    h = bytes([mode, opts])
    if opts & 1:
        h += struct.pack("<H", declared)
    return h + bytes([maxtr, seed]) + body.encode()

put("chunked", "signed", chunked(0, 1, 6, 16, 0,
    "5;chunk-signature=%s\r\nhello\r\n1;chunk-signature=%s\r\n!\r\n"
    "0;chunk-signature=%s\r\n\r\n" % (SIG0, SIG0, SIG0)))
put("chunked", "signed-trailer", chunked(1, 1, 3, 16, 1,
    "3;chunk-signature=%s\r\nabc\r\n0;chunk-signature=%s\r\n"
    "x-amz-checksum-crc32:NSRBwg==\r\nx-amz-trailer-signature:%s\r\n\r\n" % (SIG0, SIG0, SIG0)))
put("chunked", "unsigned-trailer", chunked(2, 0, 0, 16, 2,
    "A\r\n0123456789\r\n3\r\nabc\r\n0\r\nx-amz-checksum-crc32:  NSRBwg== \r\n\r\n"))
put("chunked", "unsigned-long-size", chunked(2, 0, 0, 16, 5,
    "00000000000000a\r\n0123456789\r\n0\r\n\r\n"))
put("chunked", "signed-empty", chunked(0, 3, 0, 16, 0, "0;chunk-signature=%s\r\n\r\n" % SIG0))
put("chunked", "s3-min-chunk", chunked(0, 2, 0, 16, 3,
    "2000;chunk-signature=%s\r\n%s\r\n1;chunk-signature=%s\r\nx\r\n0;chunk-signature=%s\r\n\r\n"
    % (SIG0, "a" * 8192, SIG0, SIG0)))

# --- CRC: split(2) len(8) crc(8) crc(8) data --------------------------------
put("crc", "check", struct.pack("<HQQQ", 4, 5, 0xCBF43926, 0xE3069283, ) + b"123456789")
put("crc", "empty", struct.pack("<HQQQ", 0, 0, 0, 0))
put("crc", "huge-len", struct.pack("<HQQQ", 100, 2**64 - 1, 2**64 - 1, 1) + bytes(range(256)))

# --- ring: vnodes, n, nodes (id2 w1 zt1), rf, tier/nexclude, excludes, key --
def ring(vn, nodes, rf, tier, excl, key):
    b = bytes([vn, len(nodes)])
    for nid, w, zone, t in nodes:
        b += struct.pack("<HBB", nid, w, zone | (t << 4))
    b += bytes([rf, tier | (len(excl) << 4)])
    for e in excl:
        b += struct.pack("<H", e)
    return b + key.encode()

put("ring", "three-zones", ring(16, [(1, 1, 2, 0), (2, 1, 3, 0), (3, 1, 4, 0)], 3, 0, [], "photos/2024/cat.jpg"))
put("ring", "tiers-exclude", ring(8, [(1, 2, 2, 1), (2, 1, 2, 2), (3, 1, 3, 3), (4, 3, 0, 0)], 2, 2, [3], "b/k"))
put("ring", "one-node", ring(1, [(7, 1, 0, 0)], 3, 1, [7], ""))

# --- blockfile: flags, file (data, block sums, trailer); flags 3 fixes sums -
def blob(data, bs=4096, version=1, flags=3):
    n = (len(data) + bs - 1) // bs
    tr = b"PLNTBLB1" + struct.pack("<IIQQQQ", version, bs, len(data), n, 0, 0)
    return bytes([flags]) + data + b"\0" * (8 * n) + tr

put("blockfile", "empty", blob(b""))
put("blockfile", "one-block", blob(b"hello, world\n"))
put("blockfile", "two-blocks", blob(bytes(range(256)) * 20))
put("blockfile", "footer-only", bytes([1]) + b"\0" * 8 + b"PLNTBLB1" +
    struct.pack("<IIQQQQ", 1, 4096, 10, 1, 0, 0))

# --- YAML configuration ----------------------------------------------------
put("dn_config", "node", "node_id: 1\nlisten: 127.0.0.1:9101\ndata_dir: /srv/plinth/d1\n"
    "block_size: 1M\ncapacity_bytes: 10GiB\nreserve_bytes: 512M\nlog_level: info\n"
    "pid_file: /run/plinth-datanode.pid\ncluster_secret_file: /etc/plinth/cluster.secret\n")
put("dn_config", "v6", "node_id: 4294967295\nlisten: \"[::1]:65535\"\ndata_dir: 'd'\n"
    "block_size: 4096\ncluster_secret_file: s\n")
put("dn_config", "flow", "{node_id: 2, listen: '*:9102', data_dir: /d, log_level: debug, cluster_secret_file: /s}\n")
put("rd_config", "repaird", "pg: \"host=127.0.0.1 port=5432 dbname=plinth user=plinth\"\n"
    "cluster: /etc/plinth/cluster.yaml\nlisten: 127.0.0.1:9190\ninstance: repaird-a\n"
    "log_level: info\nreplication_factor: 3\nhealth_interval: 250ms\nprobe_timeout: 2s\n"
    "offline_after: 30s\nscrub_interval: 5m\nupload_max_age: 7d\ngc_grace: 1h\n"
    "repair_rate: 0\nrebalance_rate: 10\n")
put("rd_config", "cluster", "nodes:\n"
    "  - id: 1\n    address: 127.0.0.1:9101\n    zone: z1\n"
    "  - id: 2\n    address: 127.0.0.1:9102\n    zone: z2\n    weight: 2\n"
    "  - id: 3\n    address: 127.0.0.1:9103\n    zone: z3\n    tier: cold\n")
put("rd_config", "anchors", "nodes:\n  - &n {id: 1, address: 'a:1'}\n  - {id: 2, address: *x}\n")

# --- protobuf messages (hand-encoded wire format) ---------------------------
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def field(num, wt, payload):
    key = varint((num << 3) | wt)
    if wt == 0:
        return key + varint(payload)
    if wt == 1:
        return key + struct.pack("<Q", payload)
    return key + varint(len(payload)) + payload

BID = b"0123456789abcdef0123456789abcdef"
info = (field(1, 2, BID) + field(2, 0, 13) + field(3, 0, 1048576) + field(4, 0, 2**63 + 5)
        + field(5, 2, varint(7) + varint(2**64 - 1)) + field(6, 0, 1700000000))
put("proto", "blob-info", info)
put("proto", "blob-list", field(1, 2, info) + field(1, 2, field(1, 2, BID)) + field(2, 0, 1))
put("proto", "node-health", field(1, 0, 1) + field(2, 2, b"ok") + field(3, 0, 10**12)
    + field(4, 0, 10**9) + field(5, 0, 10**11) + field(6, 0, 42) + field(7, 0, 4242)
    + field(8, 0, 2**64 - 1) + field(9, 2, b"0.1.0"))
put("proto", "error", field(1, 2, b"corrupt") + field(2, 2, b"block 3 failed its checksum")
    + field(3, 2, BID))
put("proto", "unknown-fields", field(15, 2, b"x") + field(99, 1, 1) + field(1, 2, b"id"))

# --- XML bodies ---------------------------------------------------------------
put("xml", "delete", '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>'
    '<Object><Key>photos/2024/cat.jpg</Key></Object>'
    '<Object><Key>a"b\\c</Key><VersionId>3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY</VersionId></Object>'
    '</Delete>')
put("xml", "complete", '<CompleteMultipartUpload>'
    '<Part><PartNumber>1</PartNumber><ETag>"a54357aff0632cce46d942af68356b38"</ETag>'
    '<ChecksumCRC32>NSRBwg==</ChecksumCRC32></Part>'
    '<Part><ETag>"0c78aef83f66abc1fa1e8477f296d394"</ETag><PartNumber>2</PartNumber>'
    '<ChecksumCRC64NVME>AAAAAAAAAAA=</ChecksumCRC64NVME></Part>'
    '</CompleteMultipartUpload>')
put("xml", "versioning", '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    '<Status>Enabled</Status><MfaDelete>Disabled</MfaDelete></VersioningConfiguration>')
put("xml", "entities", '<?xml version="1.0"?><!DOCTYPE Delete [<!ENTITY a "k&#34;">'
    '<!ENTITY b "&a;&a;&a;&a;">]><Delete><Object><Key>&b;&b;<![CDATA[x]]></Key>'
    '</Object></Delete>')
put("xml", "laughs", '<?xml version="1.0"?><!DOCTYPE Delete [<!ENTITY l0 "ha">'
    + "".join('<!ENTITY l%d "%s">' % (i, ("&l%d;" % (i - 1)) * 10) for i in range(1, 10))
    + ']><Delete><Object><Key>&l9;</Key></Object></Delete>')

# --- data node request parsing: size(8), url, range, pull address ------------
def dn(size, url, rng, addr):
    return struct.pack("<Q", size) + ("%s\n%s\n%s" % (url, rng, addr)).encode()

put("dn_http", "blob-range", dn(1000, "/blobs/" + BID.decode(), "bytes=0-99", "127.0.0.1:9101"))
put("dn_http", "info-suffix", dn(10, "/blobs/" + BID.decode() + "/info", "bytes=-5", "[::1]:9102"))
put("dn_http", "verify-open", dn(2**64 - 1, "/blobs/" + BID.decode() + "/verify",
                                  "bytes=18446744073709551614-", "host:1"))
put("dn_http", "health", dn(0, "/health", "BYTES=0-0,1-2", ""))

# a regression input of the chunked target's own check: bytes after DONE
put("chunked", "extra-after-done", chunked(1, 1, 3, 3, 1,
    "3;chunk-signature=%s\r\nabc\r\n0;chunk-signature=%s\r\n"
    "x-amz-checksum-crc32:NSRBwg==\r\nx-amz-trailer-signature:%s\r\n\r\n-1"
    % (SIG0, SIG0, SIG0)))

# canonical requests from AWS's SigV4 test suite (t/data/aws-sig-v4-test-suite)
SUITE = os.path.join(os.path.dirname(ROOT), "..", "t", "data", "aws-sig-v4-test-suite")
for dirpath, _, files in sorted(os.walk(SUITE)):
    for fn in sorted(files):
        if not fn.endswith(".req"):
            continue
        with open(os.path.join(dirpath, fn), "rb") as f:
            text = f.read().decode("utf-8", "replace")
        head = text.split("\n\n", 1)[0].split("\n")
        method, rest = head[0].split(" ", 1)
        target = rest.rsplit(" ", 1)[0]
        path, _, query = target.partition("?")
        headers = [h for h in head[1:] if ":" in h]
        names = sorted({h.split(":", 1)[0].lower() for h in headers})
        generic = 2 if "normalize-path" in dirpath else 0
        put("sigv4_canonical", "suite-" + fn[:-4],
            creq(generic, method, path, query, ";".join(names), EMPTY, headers))


# --- PutBucketLifecycleConfiguration bodies (fuzz/lifecycle.c) --------------
def lc(*rules, head='<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'):
    return head + "".join(rules) + "</LifecycleConfiguration>"


put("lifecycle", "s3-doc", '<?xml version="1.0" encoding="UTF-8"?>\n' + lc(
    '<Rule><ID>archive</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>'
    '<Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition>'
    '<Transition><Days>90</Days><StorageClass>GLACIER</StorageClass></Transition>'
    '<Transition><Days>180</Days><StorageClass>DEEP_ARCHIVE</StorageClass></Transition>'
    '<Expiration><Days>365</Days></Expiration></Rule>',
    '<Rule><ID>old "versions" \\ here</ID><Filter></Filter><Status>Disabled</Status>'
    '<NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays>'
    '</NoncurrentVersionExpiration></Rule>',
    '<Rule><Prefix>tmp/</Prefix><Status>Enabled</Status>'
    '<Expiration><Days>1</Days></Expiration></Rule>'))
put("lifecycle", "not-implemented", lc(
    '<Rule><ID>t</ID><Filter><And><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>'
    '</And></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload>'
    '<DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>'))
put("lifecycle", "huge-days", lc(
    '<Rule><ID>a</ID><Filter/><Status>Enabled</Status>'
    '<Transition><Days>999999999</Days><StorageClass>GLACIER_IR</StorageClass></Transition>'
    '<Expiration><Days>99999999999999999999999</Days></Expiration></Rule>',
    '<Rule><ID>b</ID><Filter/><Status>Enabled</Status>'
    '<Transition><Days>0</Days><StorageClass>ONEZONE_IA</StorageClass></Transition>'
    '<Expiration><Days>-1</Days></Expiration></Rule>'))
put("lifecycle", "max-days", lc(
    '<Rule><ID>z</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status>'
    '<Transition><Days>999999998</Days><StorageClass>STANDARD_IA</StorageClass></Transition>'
    '<Expiration><Days>999999999</Days></Expiration>'
    '<NoncurrentVersionExpiration><NoncurrentDays>999999999</NoncurrentDays>'
    '</NoncurrentVersionExpiration></Rule>'))
put("lifecycle", "long-id", lc(
    '<Rule><ID>' + "i" * 255 + '</ID><Prefix>' + '"\\' * 2000 + '</Prefix><Status>Enabled</Status>'
    '<Expiration><Days>2</Days></Expiration></Rule>',
    '<Rule><ID>' + "i" * 256 + '</ID><Prefix/><Status>Enabled</Status>'
    '<Expiration><Days>2</Days></Expiration></Rule>'))
put("lifecycle", "dup-ids", lc(*(
    '<Rule><ID>same</ID><Prefix>p</Prefix><Status>Enabled</Status>'
    '<Expiration><Days>5</Days></Expiration></Rule>',) * 2))
put("lifecycle", "many-rules", lc(*(
    '<Rule><Prefix>p%d/</Prefix><Status>Enabled</Status>'
    '<Expiration><Days>%d</Days></Expiration></Rule>' % (i, i + 1) for i in range(1000))))
put("lifecycle", "too-many-rules", lc(*(
    '<Rule><Prefix/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>',)
    * 1001))
put("lifecycle", "entities", '<?xml version="1.0"?><!DOCTYPE LifecycleConfiguration '
    '[<!ENTITY a "p&#34;\\">]>' + lc(
        '<Rule><ID>&a;</ID><Prefix>&a;&a;<![CDATA[x]]></Prefix><Status>Enabled</Status>'
        '<Expiration><Days>3</Days></Expiration></Rule>', head='<LifecycleConfiguration>'))
put("lifecycle", "laughs", '<?xml version="1.0"?><!DOCTYPE LifecycleConfiguration [<!ENTITY l0 "ha">'
    + "".join('<!ENTITY l%d "%s">' % (i, ("&l%d;" % (i - 1)) * 10) for i in range(1, 10))
    + ']>' + lc('<Rule><ID>&l9;</ID><Prefix>&l9;</Prefix><Status>Enabled</Status>'
                '<Expiration><Days>3</Days></Expiration></Rule>', head='<LifecycleConfiguration>'))
put("lifecycle", "deep", lc('<Rule><ID>d</ID><Filter>' + "<Prefix>" * 300 + "x"
                            + "</Prefix>" * 300 + '</Filter><Status>Enabled</Status>'
                            '<Expiration><Days>3</Days></Expiration></Rule>'))
put("lifecycle", "order", lc(
    '<Rule><ID>o</ID><Prefix/><Status>Enabled</Status>'
    '<Transition><Days>90</Days><StorageClass>GLACIER</StorageClass></Transition>'
    '<Transition><Days>30</Days><StorageClass>DEEP_ARCHIVE</StorageClass></Transition>'
    '<Transition><Days>30</Days><StorageClass>STANDARD</StorageClass></Transition>'
    '<Expiration><Days>10</Days></Expiration></Rule>'))


# --- Batch GET bodies (fuzz/batch.c): JSON, or the same list as XML ---------
VID = "0123456789abcdef0123456789abcdef"
put("batch", "json", '{"entries": [{"key": "a/1.jpg"}, {"key": "b", "versionId": "%s", '
    '"range": "bytes=0-99", "name": "b.head", "bucket": "other-bucket"}, '
    '{"key": "c\\"\\\\d", "versionId": "null", "range": "bytes=-10", "name": null}], '
    '"continueOnError": false}' % VID)
put("batch", "json-continue", '  \n{"continueOnError": true, "entries": [{"key": "k", '
    '"range": "bytes=5-"}, {"key": "\\u00e9", "name": "x/../../y"}]}')
put("batch", "json-nul", '{"entries": [{"key": "a\\u0000b", "name": "\\u0000"}]}')
put("batch", "xml", '<?xml version="1.0"?>\n<Batch><ContinueOnError>true</ContinueOnError>'
    '<Entry><Key>k</Key><Bucket>b2</Bucket><VersionId>%s</VersionId>'
    '<Range>bytes=0-0</Range><Name>n</Name></Entry>'
    '<Entry><Key>a"b\\c</Key></Entry></Batch>' % VID)
put("batch", "odd-ranges", '{"entries": [' + ", ".join(
    '{"key": "k%d", "range": "%s"}' % (i, r) for i, r in enumerate([
        "bytes=0-", "bytes=-0", "bytes=9-3", "bytes=9223372036854775807-",
        "bytes=922337203685477580-922337203685477581", "bytes=1-2-3", "bytes= 1-2",
        "bytes=-", "bytes=--1", "bytes=1-2,3-4", "bytes=99999999999999999999-"]))
    + ']}')
put("batch", "bad-members", '{"entries": [{"key": "k", "size": 1}, {"key": 5}], "x": 1}')
put("batch", "dup-members", '{"entries": [{"key": "a", "key": "b"}]}')
put("batch", "long-names", '{"entries": [{"key": "%s", "name": "%s"}, {"key": "%s"}, '
    '{"key": "k", "name": "%s"}]}' % ("k" * 1024, "n" * 4096, "k" * 1025, "n" * 4097))
put("batch", "many", '{"entries": [' + ",".join('{"key":"%d"}' % i for i in range(10000)) + ']}')
put("batch", "too-many", '{"entries": [' + ",".join('{"key":"k"}' for _ in range(10001)) + ']}')
put("batch", "xml-too-many", '<Batch>' + '<Entry><Key>k</Key></Entry>' * 10001 + '</Batch>')
put("batch", "deep-json", '{"entries": [{"key": ' + "[" * 3000 + "]" * 3000 + '}]}')
put("batch", "deep-xml", '<Batch><Entry><Key>' + "<a>" * 300 + "k" + "</a>" * 300
    + '</Key></Entry></Batch>')
put("batch", "numbers", '{"entries": [{"key": "k"}], "continueOnError": '
    '1e99999999999999999999}')
put("batch", "entities", '<?xml version="1.0"?><!DOCTYPE Batch [<!ENTITY a "k&#34;\\">]>'
    '<Batch><Entry><Key>&a;&a;<![CDATA[x]]></Key><Name>&a;</Name></Entry></Batch>')
put("batch", "laughs", '<?xml version="1.0"?><!DOCTYPE Batch [<!ENTITY l0 "ha">'
    + "".join('<!ENTITY l%d "%s">' % (i, ("&l%d;" % (i - 1)) * 10) for i in range(1, 10))
    + ']><Batch><Entry><Key>&l9;</Key></Entry></Batch>')
