// The AWS SDK for JavaScript v3 against Plinth: one bucket's life, printed
// as TAP (t/93-js-sdk.t runs it and passes the lines on).
//
//   node t/js/basic.mjs ENDPOINT [--checksums when-required|defaults]
//                                [--bucket NAME]
//
// --checksums when-required (the default here): requestChecksumCalculation
//   and responseChecksumValidation 'WHEN_REQUIRED', as a client configured
//   so sends them: plain PUTs, no aws-chunked, no x-amz-checksum-*.
// --checksums defaults: the SDK's own defaults ('WHEN_SUPPORTED'): every
//   PutObject carries a CRC32 (a header for a body of known length, an
//   aws-chunked trailer for a stream).
// Multipart uploads are in multipart.mjs.
//
// Keys: PLINTH_TEST_ACCESS_KEY / PLINTH_TEST_SECRET_KEY (default plinth);
// region us-east-1, path-style addressing.

import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  S3Client, CreateBucketCommand, HeadBucketCommand, ListBucketsCommand,
  PutObjectCommand, GetObjectCommand, HeadObjectCommand, DeleteObjectCommand,
  DeleteBucketCommand, ListObjectsV2Command, paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { tap } from './tap.mjs';

const args = process.argv.slice(2);
const endpoint = args.shift();
const opt = { checksums: 'when-required', bucket: null };
while (args.length) {
  const a = args.shift();
  if (a === '--checksums') opt.checksums = args.shift();
  else if (a === '--bucket') opt.bucket = args.shift();
  else { console.error(`unknown argument ${a}`); process.exit(2); }
}
if (!endpoint || !['when-required', 'defaults'].includes(opt.checksums)) {
  console.error('usage: basic.mjs ENDPOINT [--checksums when-required|defaults] [--bucket NAME]');
  process.exit(2);
}
const Bucket = opt.bucket ?? `js-${opt.checksums}`;

const config = {
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: {
    accessKeyId: process.env.PLINTH_TEST_ACCESS_KEY || 'plinth',
    secretAccessKey: process.env.PLINTH_TEST_SECRET_KEY || 'plinth',
  },
  maxAttempts: 1,           // a retry would hide a failure
  requestHandler: { requestTimeout: 60000, connectionTimeout: 5000 },
};
if (opt.checksums === 'when-required') {
  config.requestChecksumCalculation = 'WHEN_REQUIRED';
  config.responseChecksumValidation = 'WHEN_REQUIRED';
}
const s3 = new S3Client(config);

const md5 = (b) => createHash('md5').update(b).digest('hex');
const t = tap();
t.diag(`endpoint ${endpoint}, bucket ${Bucket}, checksums ${opt.checksums}`);

const TEXT = 'hello, plinth\n';
const BIG = randomBytes(1024 * 1024);
const STREAMED = randomBytes(300 * 1024 + 7);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'plinth-js-'));
const streamFile = path.join(tmp, 'streamed.bin');
fs.writeFileSync(streamFile, STREAMED);

const put = (Key, Body, extra = {}) => s3.send(new PutObjectCommand({ Bucket, Key, Body, ...extra }));
const get = async (Key, extra = {}) => {
  const r = await s3.send(new GetObjectCommand({ Bucket, Key, ...extra }));
  return { ...r, bytes: Buffer.from(await r.Body.transformToByteArray()) };
};

await t.test('CreateBucket', async () => {
  const r = await s3.send(new CreateBucketCommand({ Bucket }));
  t.equal(r.$metadata.httpStatusCode, 200, 'CreateBucket: 200');
  t.equal(r.Location, `/${Bucket}`, 'CreateBucket: Location');
  await t.rejects(s3.send(new CreateBucketCommand({ Bucket })), 'BucketAlreadyOwnedByYou',
    'CreateBucket again: BucketAlreadyOwnedByYou');
});

await t.test('HeadBucket and ListBuckets', async () => {
  const h = await s3.send(new HeadBucketCommand({ Bucket }));
  t.equal(h.$metadata.httpStatusCode, 200, 'HeadBucket: 200');
  t.equal(h.BucketRegion, 'us-east-1', 'HeadBucket: BucketRegion');
  const l = await s3.send(new ListBucketsCommand({}));
  t.ok((l.Buckets ?? []).some((b) => b.Name === Bucket && b.CreationDate instanceof Date),
    'ListBuckets: has the bucket, with its CreationDate');
  await t.rejects(s3.send(new HeadBucketCommand({ Bucket: `${Bucket}-none` })), 'NotFound',
    'HeadBucket of a missing bucket: NotFound');
});

await t.test('PutObject: a string, with Content-Type and metadata', async () => {
  const r = await put('dir/hello.txt', TEXT, { ContentType: 'text/plain', Metadata: { colour: 'blue' } });
  t.equal(r.ETag, `"${md5(TEXT)}"`, 'PutObject string: ETag is the MD5');
});

await t.test('PutObject: a 1 MiB random Buffer', async () => {
  const r = await put('dir/sub/big.bin', BIG);
  t.equal(r.ETag, `"${md5(BIG)}"`, 'PutObject Buffer: ETag is the MD5');
});

await t.test('PutObject: a file stream', async () => {
  // Of unknown length to the SDK's checksum code: with the defaults this is
  // the aws-chunked upload (STREAMING-UNSIGNED-PAYLOAD-TRAILER, a CRC32
  // trailer); with WHEN_REQUIRED an UNSIGNED-PAYLOAD PUT with Content-Length.
  const r = await put('streamed.bin', fs.createReadStream(streamFile));
  t.equal(r.ETag, `"${md5(STREAMED)}"`, 'PutObject stream: ETag is the MD5 of the bytes (not of a framing)');
});

await t.test('lib-storage Upload of 1 MiB (one part: a single PutObject)', async () => {
  const up = new Upload({ client: s3, params: { Bucket, Key: 'upload/one.bin', Body: BIG } });
  const r = await up.done();
  t.equal(r.ETag, `"${md5(BIG)}"`, 'Upload: ETag is the MD5 (not a multipart ETag)');
});

await t.test('GetObject: the string', async () => {
  const r = await get('dir/hello.txt');
  t.equal(r.bytes.toString('utf8'), TEXT, 'GetObject string: the body');
  t.equal(r.ContentType, 'text/plain', 'GetObject string: ContentType');
  t.deepEqual(r.Metadata, { colour: 'blue' }, 'GetObject string: Metadata');
  t.equal(r.ContentLength, TEXT.length, 'GetObject string: ContentLength');
});

await t.test('GetObject: the Buffer, byte for byte', async () => {
  const r = await get('dir/sub/big.bin');
  t.bytesEqual(r.bytes, BIG, 'GetObject Buffer: the bytes stored are the bytes sent');
  t.equal(r.ETag, `"${md5(BIG)}"`, 'GetObject Buffer: ETag');
});

await t.test('GetObject: the stream upload, byte for byte', async () => {
  const r = await get('streamed.bin');
  t.bytesEqual(r.bytes, STREAMED, 'GetObject stream upload: the bytes stored are the bytes sent');
});

await t.test('GetObject: the Upload, byte for byte', async () => {
  const r = await get('upload/one.bin');
  t.bytesEqual(r.bytes, BIG, 'GetObject Upload: the bytes stored are the bytes sent');
});

await t.test('GetObject with a Range', async () => {
  const r = await get('dir/sub/big.bin', { Range: 'bytes=1000-1999' });
  t.equal(r.$metadata.httpStatusCode, 206, 'GetObject Range: 206');
  t.bytesEqual(r.bytes, BIG.subarray(1000, 2000), 'GetObject Range: the 1000 bytes asked');
  t.equal(r.ContentRange, `bytes 1000-1999/${BIG.length}`, 'GetObject Range: ContentRange');
});

await t.test('HeadObject', async () => {
  const h = await s3.send(new HeadObjectCommand({ Bucket, Key: 'dir/hello.txt' }));
  t.equal(h.ContentLength, TEXT.length, 'HeadObject: ContentLength');
  t.equal(h.ETag, `"${md5(TEXT)}"`, 'HeadObject: ETag');
  t.equal(h.ContentType, 'text/plain', 'HeadObject: ContentType');
  t.deepEqual(h.Metadata, { colour: 'blue' }, 'HeadObject: Metadata');
  t.ok(h.LastModified instanceof Date && !Number.isNaN(h.LastModified.getTime()), 'HeadObject: LastModified');
  await t.rejects(s3.send(new HeadObjectCommand({ Bucket, Key: 'nothere' })), 'NotFound',
    'HeadObject of a missing key: NotFound');
  await t.rejects(s3.send(new GetObjectCommand({ Bucket, Key: 'nothere' })), 'NoSuchKey',
    'GetObject of a missing key: NoSuchKey');
});

const ALL = ['dir/hello.txt', 'dir/sub/big.bin', 'streamed.bin', 'upload/one.bin'];

await t.test('ListObjectsV2', async () => {
  const all = await s3.send(new ListObjectsV2Command({ Bucket }));
  t.deepEqual((all.Contents ?? []).map((o) => o.Key), ALL, 'ListObjectsV2: every key, in order');
  t.equal(all.KeyCount, ALL.length, 'ListObjectsV2: KeyCount');
  const big = (all.Contents ?? []).find((o) => o.Key === 'dir/sub/big.bin');
  t.equal(big?.Size, BIG.length, 'ListObjectsV2: Size');
  t.equal(big?.ETag, `"${md5(BIG)}"`, 'ListObjectsV2: ETag');

  const top = await s3.send(new ListObjectsV2Command({ Bucket, Delimiter: '/' }));
  t.deepEqual((top.CommonPrefixes ?? []).map((p) => p.Prefix), ['dir/', 'upload/'],
    'ListObjectsV2 delimiter /: CommonPrefixes');
  t.deepEqual((top.Contents ?? []).map((o) => o.Key), ['streamed.bin'], 'ListObjectsV2 delimiter /: Contents');

  const dir = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'dir/', Delimiter: '/' }));
  t.deepEqual((dir.CommonPrefixes ?? []).map((p) => p.Prefix), ['dir/sub/'],
    'ListObjectsV2 prefix dir/ delimiter /: CommonPrefixes');
  t.deepEqual((dir.Contents ?? []).map((o) => o.Key), ['dir/hello.txt'],
    'ListObjectsV2 prefix dir/ delimiter /: Contents');

  const keys = [];
  let pages = 0;
  for await (const page of paginateListObjectsV2({ client: s3, pageSize: 1 }, { Bucket })) {
    pages += 1;
    for (const o of page.Contents ?? []) keys.push(o.Key);
    if (pages > 20) break;
  }
  t.deepEqual(keys, ALL, 'ListObjectsV2 MaxKeys 1, paginated by ContinuationToken: every key once');
  t.equal(pages, ALL.length, 'ListObjectsV2 MaxKeys 1: one page a key');
});

await t.test('DeleteBucket of a bucket that is not empty', async () => {
  await t.rejects(s3.send(new DeleteBucketCommand({ Bucket })), 'BucketNotEmpty',
    'DeleteBucket: BucketNotEmpty');
});

await t.test('DeleteObject', async () => {
  for (const Key of ALL) {
    const r = await s3.send(new DeleteObjectCommand({ Bucket, Key }));
    t.equal(r.$metadata.httpStatusCode, 204, `DeleteObject ${Key}: 204`);
  }
  const again = await s3.send(new DeleteObjectCommand({ Bucket, Key: ALL[0] }));
  t.equal(again.$metadata.httpStatusCode, 204, 'DeleteObject of a deleted key: 204 (idempotent)');
  await t.rejects(s3.send(new HeadObjectCommand({ Bucket, Key: ALL[0] })), 'NotFound',
    'HeadObject after DeleteObject: NotFound');
  const l = await s3.send(new ListObjectsV2Command({ Bucket }));
  t.equal(l.KeyCount, 0, 'ListObjectsV2 after the deletes: empty');
});

await t.test('DeleteBucket', async () => {
  const r = await s3.send(new DeleteBucketCommand({ Bucket }));
  t.equal(r.$metadata.httpStatusCode, 204, 'DeleteBucket: 204');
  await t.rejects(s3.send(new HeadBucketCommand({ Bucket })), 'NotFound', 'HeadBucket after DeleteBucket: NotFound');
  await t.rejects(s3.send(new DeleteBucketCommand({ Bucket })), 'NoSuchBucket',
    'DeleteBucket again: NoSuchBucket');
});

fs.rmSync(tmp, { recursive: true, force: true });
t.done();
