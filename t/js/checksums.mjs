// What the AWS SDK for JavaScript v3 sends with its default checksum
// settings (requestChecksumCalculation 'WHEN_SUPPORTED'), and what Plinth
// must do with it, printed as TAP (run by t/93-js-sdk.t).
//
//   node t/js/checksums.mjs ENDPOINT [--bucket NAME]
//
// 1. A PutObject whose body is a stream goes out as an aws-chunked upload:
//      Content-Encoding: aws-chunked, Transfer-Encoding: chunked,
//      x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER,
//      x-amz-decoded-content-length: N, x-amz-trailer: x-amz-checksum-crc32
//    and the body is  <hex size>\r\n<data>\r\n0\r\nx-amz-checksum-crc32:<b64>\r\n\r\n
//    Plinth must either decode it (store the N decoded bytes, check the
//    CRC32) or refuse it (501 NotImplemented); never store the framing.
// 2. A PutObject of a Buffer carries x-amz-checksum-crc32 as a header.
//    S3 checks it (400 BadDigest when it does not match) and returns it;
//    so does Plinth (README: "A CRC-32 announced as x-amz-checksum-crc32
//    (header or trailer) is verified (BadDigest) and echoed").

import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand,
  HeadObjectCommand, DeleteObjectCommand, DeleteBucketCommand, ListObjectsV2Command,
} from '@aws-sdk/client-s3';
import { tap } from './tap.mjs';

const args = process.argv.slice(2);
const endpoint = args.shift();
let Bucket = 'js-checksums';
while (args.length) {
  const a = args.shift();
  if (a === '--bucket') Bucket = args.shift();
  else { console.error(`unknown argument ${a}`); process.exit(2); }
}
if (!endpoint) {
  console.error('usage: checksums.mjs ENDPOINT [--bucket NAME]');
  process.exit(2);
}

const base = {
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: {
    accessKeyId: process.env.PLINTH_TEST_ACCESS_KEY || 'plinth',
    secretAccessKey: process.env.PLINTH_TEST_SECRET_KEY || 'plinth',
  },
  maxAttempts: 1,
  requestHandler: { requestTimeout: 60000, connectionTimeout: 5000 },
};
const s3 = new S3Client(base);   // the SDK's defaults: WHEN_SUPPORTED
// reads back with no checksum mode, so what is stored is what is compared
const plain = new S3Client({ ...base, requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED' });

const md5 = (b) => createHash('md5').update(b).digest('hex');
const t = tap();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'plinth-js-'));

// the headers of each request as sent, by key
const sent = {};
s3.middlewareStack.add((next) => async (a) => {
  const key = decodeURIComponent(a.request.path.split('/').slice(2).join('/'));
  sent[key] = { ...a.request.headers };
  return next(a);
}, { step: 'finalizeRequest', name: 'plinthRecordHeaders', priority: 'low' });

const bytesOf = async (Key) => {
  const r = await plain.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(await r.Body.transformToByteArray());
};
const exists = async (Key) => {
  try { await plain.send(new HeadObjectCommand({ Bucket, Key })); return true; } catch (e) {
    if (e?.name === 'NotFound') return false;
    throw e;
  }
};

await plain.send(new CreateBucketCommand({ Bucket }));

await t.test('aws-chunked PutObject (a stream, the SDK defaults)', async () => {
  const data = randomBytes(200 * 1024 + 3);
  const file = path.join(tmp, 'chunked.bin');
  fs.writeFileSync(file, data);
  let put = null;
  let err = null;
  try {
    put = await s3.send(new PutObjectCommand({ Bucket, Key: 'chunked.bin', Body: fs.createReadStream(file) }));
  } catch (e) { err = e; }
  const h = sent['chunked.bin'] ?? {};
  t.diag(`  sent: content-encoding=${h['content-encoding']} transfer-encoding=${h['transfer-encoding']} `
    + `x-amz-content-sha256=${h['x-amz-content-sha256']} x-amz-decoded-content-length=${h['x-amz-decoded-content-length']} `
    + `x-amz-trailer=${h['x-amz-trailer']}`);
  t.equal(h['content-encoding'], 'aws-chunked', 'the SDK sent an aws-chunked upload (Content-Encoding: aws-chunked)');
  if (err) {
    // refusing it is right until aws-chunked is implemented
    t.equal(`${err.$metadata?.httpStatusCode} ${err.name}`, '501 NotImplemented',
      'aws-chunked PutObject: refused with 501 NotImplemented');
    t.ok(!(await exists('chunked.bin')), 'aws-chunked PutObject refused: nothing stored');
  } else {
    t.equal(put.ETag, `"${md5(data)}"`, 'aws-chunked PutObject accepted: ETag is the MD5 of the decoded bytes');
    t.bytesEqual(await bytesOf('chunked.bin'), data,
      'aws-chunked PutObject accepted: GetObject gives the decoded bytes, not the aws-chunked framing');
  }
});

await t.test('PutObject with a CRC32 header (a Buffer, the SDK defaults)', async () => {
  const data = randomBytes(64 * 1024);
  const r = await s3.send(new PutObjectCommand({ Bucket, Key: 'crc.bin', Body: data }));
  const h = sent['crc.bin'] ?? {};
  t.diag(`  sent: x-amz-sdk-checksum-algorithm=${h['x-amz-sdk-checksum-algorithm']} x-amz-checksum-crc32=${h['x-amz-checksum-crc32']}`);
  t.ok(r.ChecksumCRC32 && r.ChecksumCRC32 === h['x-amz-checksum-crc32'],
    'PutObject with x-amz-checksum-crc32: the answer returns it (x-amz-checksum-crc32)');
});

await t.test('PutObject with a CRC32 that does not match', async () => {
  let err = null;
  try {
    await s3.send(new PutObjectCommand({ Bucket, Key: 'badcrc.bin', Body: Buffer.from('hello'), ChecksumCRC32: 'AAAAAA==' }));
  } catch (e) { err = e; }
  t.equal(err ? `${err.$metadata?.httpStatusCode} ${err.name}` : 'success', '400 BadDigest',
    'a wrong x-amz-checksum-crc32 is refused (400 BadDigest)');
  t.ok(!(await exists('badcrc.bin')), 'a wrong x-amz-checksum-crc32: nothing stored');
});

// Every algorithm the SDK offers, CRC64NVME included (the SDK computes it
// with its own code, independent of Plinth's): stored, then returned with
// ChecksumMode ENABLED, which makes the SDK check it against the bytes it
// receives (a wrong stored value fails the GetObject).
for (const alg of ['CRC32', 'CRC32C', 'SHA1', 'SHA256', 'CRC64NVME']) {
  await t.test(`PutObject with ChecksumAlgorithm ${alg}, then GetObject/HeadObject with ChecksumMode ENABLED`, async () => {
    const data = randomBytes(100 * 1024 + alg.length);
    const Key = `alg-${alg}.bin`;
    const put = await s3.send(new PutObjectCommand({ Bucket, Key, Body: data, ChecksumAlgorithm: alg }));
    const field = `Checksum${alg}`;
    t.ok(put[field], `${alg}: PutObject answers ${field}`);
    const head = await s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    t.equal(head[field], put[field], `${alg}: HeadObject returns the stored ${field}`);
    t.equal(head.ChecksumType, 'FULL_OBJECT', `${alg}: ChecksumType FULL_OBJECT`);
    const get = await s3.send(new GetObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    t.equal(get[field], put[field], `${alg}: GetObject returns it`);
    t.bytesEqual(Buffer.from(await get.Body.transformToByteArray()), data,
      `${alg}: the body, validated by the SDK against ${field}, is the data`);
  });
}

// clean up whatever was stored
const l = await plain.send(new ListObjectsV2Command({ Bucket }));
for (const o of l.Contents ?? []) await plain.send(new DeleteObjectCommand({ Bucket, Key: o.Key }));
await plain.send(new DeleteBucketCommand({ Bucket }));
fs.rmSync(tmp, { recursive: true, force: true });
t.done();
