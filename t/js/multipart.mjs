// Multipart uploads with the AWS SDK for JavaScript v3 (lib-storage's
// Upload), printed as TAP. t/93-js-sdk.t runs it only once the gateway
// implements multipart upload ($MULTIPART at the top of the .t).
//
//   node t/js/multipart.mjs ENDPOINT [--bucket NAME]
//
// The SDK's default checksums ('WHEN_SUPPORTED': a CRC32 with each part).

import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  S3Client, CreateBucketCommand, GetObjectCommand, HeadObjectCommand,
  DeleteObjectCommand, DeleteBucketCommand, ListObjectsV2Command,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { tap } from './tap.mjs';

const args = process.argv.slice(2);
const endpoint = args.shift();
let Bucket = 'js-multipart';
while (args.length) {
  const a = args.shift();
  if (a === '--bucket') Bucket = args.shift();
  else { console.error(`unknown argument ${a}`); process.exit(2); }
}
if (!endpoint) {
  console.error('usage: multipart.mjs ENDPOINT [--bucket NAME]');
  process.exit(2);
}

const s3 = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: {
    accessKeyId: process.env.PLINTH_TEST_ACCESS_KEY || 'plinth',
    secretAccessKey: process.env.PLINTH_TEST_SECRET_KEY || 'plinth',
  },
  maxAttempts: 1,
  requestHandler: { requestTimeout: 120000, connectionTimeout: 5000 },
});

const MiB = 1024 * 1024;
// S3's multipart ETag: MD5 of the parts' binary MD5s, then -<parts>
const multipartEtag = (body, partSize) => {
  const h = createHash('md5');
  let n = 0;
  for (let o = 0; o < body.length; o += partSize, n += 1) {
    h.update(createHash('md5').update(body.subarray(o, o + partSize)).digest());
  }
  return `"${h.digest('hex')}-${n}"`;
};
const t = tap();

await s3.send(new CreateBucketCommand({ Bucket }));

const BODY = randomBytes(64 * MiB + 1);
const PART = 16 * MiB;

await t.test('Upload of a 64 MiB + 1 Buffer in 16 MiB parts', async () => {
  const up = new Upload({ client: s3, partSize: PART, queueSize: 2,
    params: { Bucket, Key: 'big/buffer.bin', Body: BODY, ContentType: 'application/x-test' } });
  const r = await up.done();
  t.equal(r.ETag, multipartEtag(BODY, PART), 'Upload Buffer: the multipart ETag of 5 parts');
  const h = await s3.send(new HeadObjectCommand({ Bucket, Key: 'big/buffer.bin' }));
  t.equal(h.ContentLength, BODY.length, 'HeadObject: ContentLength');
  t.equal(h.ContentType, 'application/x-test', 'HeadObject: ContentType given at CreateMultipartUpload');
  const g = await s3.send(new GetObjectCommand({ Bucket, Key: 'big/buffer.bin' }));
  t.bytesEqual(Buffer.from(await g.Body.transformToByteArray()), BODY, 'GetObject: the bytes sent');
  const rg = await s3.send(new GetObjectCommand({ Bucket, Key: 'big/buffer.bin', Range: `bytes=${PART - 5}-${PART + 4}` }));
  t.bytesEqual(Buffer.from(await rg.Body.transformToByteArray()), BODY.subarray(PART - 5, PART + 5),
    'GetObject Range across a part boundary');
});

await t.test('Upload of a 64 MiB + 1 stream of unknown length', async () => {
  const chunks = [];
  for (let o = 0; o < BODY.length; o += MiB) chunks.push(BODY.subarray(o, o + MiB));
  const up = new Upload({ client: s3, partSize: PART, queueSize: 2,
    params: { Bucket, Key: 'big/stream.bin', Body: Readable.from(chunks) } });
  const r = await up.done();
  t.equal(r.ETag, multipartEtag(BODY, PART), 'Upload stream: the multipart ETag of 5 parts');
  const g = await s3.send(new GetObjectCommand({ Bucket, Key: 'big/stream.bin' }));
  t.bytesEqual(Buffer.from(await g.Body.transformToByteArray()), BODY, 'GetObject: the bytes sent');
});

// With a checksum algorithm the SDK sends it at CreateMultipartUpload and
// with each part, lists the parts' values at Complete, and (ChecksumMode)
// checks a FULL_OBJECT value against every byte it reads back: CRC64NVME
// combined from the parts by Plinth, recomputed by the SDK's own code.
for (const [alg, type] of [['CRC64NVME', 'FULL_OBJECT'], ['CRC32', 'COMPOSITE'], ['SHA256', 'COMPOSITE']]) {
  await t.test(`Upload with ChecksumAlgorithm ${alg}: the object's ${type} checksum`, async () => {
    const Key = `cks/${alg}.bin`;
    const body = BODY.subarray(0, 20 * MiB + 7);
    const up = new Upload({ client: s3, partSize: 8 * MiB, queueSize: 2,
      params: { Bucket, Key, Body: body, ChecksumAlgorithm: alg } });
    const r = await up.done();
    t.ok(r[`Checksum${alg}`], `${alg}: CompleteMultipartUpload answers Checksum${alg}`);
    const h = await s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    t.equal(h.ChecksumType, type, `${alg}: HeadObject ChecksumType ${type}`);
    t.equal(h[`Checksum${alg}`], r[`Checksum${alg}`], `${alg}: HeadObject returns the completed value`);
    if (type === 'COMPOSITE') t.ok(/-3$/.test(h[`Checksum${alg}`] ?? ''), `${alg}: a composite of 3 parts ("-3")`);
    const g = await s3.send(new GetObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    t.bytesEqual(Buffer.from(await g.Body.transformToByteArray()), body,
      `${alg}: GetObject with ChecksumMode: the bytes${type === 'FULL_OBJECT' ? ', validated by the SDK against the combined CRC' : ''}`);
    await s3.send(new DeleteObjectCommand({ Bucket, Key }));
  });
}

const l = await s3.send(new ListObjectsV2Command({ Bucket }));
t.deepEqual((l.Contents ?? []).map((o) => [o.Key, o.Size]),
  [['big/buffer.bin', BODY.length], ['big/stream.bin', BODY.length]], 'ListObjectsV2: both, with their sizes');
for (const o of l.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket, Key: o.Key }));
await s3.send(new DeleteBucketCommand({ Bucket }));
t.done();
