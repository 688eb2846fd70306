'use strict';
// A real S3-protocol server (s3rver) on 127.0.0.1 for tests and benchmarks, stoppable and restartable on its port.
// s3rver checks access key ids but not signatures, and stores aws-chunked framing as data: the uploader's own size
// check is what catches the latter.
const fs = require('fs');
const os = require('os');
const path = require('path');
const S3rver = require('s3rver');
const { S3Client, GetObjectCommand, ListObjectsV2Command } = require('@aws-sdk/client-s3');

class S3Server {
  constructor({ buckets = ['uplink'], directory } = {}) {
    this.buckets = buckets;
    this.ownDir = !directory;
    this.directory = directory || fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-s3rver-'));
  }

  async start(port = 0) {
    this.server = new S3rver({
      port,
      address: '127.0.0.1',
      silent: true,
      directory: this.directory,
      configureBuckets: this.buckets.map((name) => ({ name })),
    });
    const info = await this.server.run();
    this.port = info.port;
    this.endpoint = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async stop() {
    if (this.server) await this.server.close();
    this.server = undefined;
  }

  async destroy() {
    await this.stop();
    this.client?.destroy();
    if (this.ownDir) fs.rmSync(this.directory, { recursive: true, force: true });
  }

  /** The settings an S3 config node needs to reach this server. */
  config(extra = {}) {
    return { endpoint: this.endpoint, region: 'us-east-1', bucket: this.buckets[0], forcePathStyle: true, ...extra };
  }

  get credentials() {
    return { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  }

  s3() {
    if (!this.client || this.clientPort !== this.port) {
      this.client?.destroy();
      this.client = new S3Client({ region: 'us-east-1', endpoint: this.endpoint, forcePathStyle: true, credentials: this.credentials });
      this.clientPort = this.port;
    }
    return this.client;
  }

  async list(bucket = this.buckets[0]) {
    const out = [];
    let token;
    for (let i = 0; i < 100; i++) {
      const r = await this.s3().send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      out.push(...(r.Contents || []).map((o) => ({ key: o.Key, size: o.Size })));
      if (!r.IsTruncated) break;
      token = r.NextContinuationToken;
    }
    return out;
  }

  async get(key, bucket = this.buckets[0]) {
    const r = await this.s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { body: Buffer.from(await r.Body.transformToByteArray()), contentType: r.ContentType, metadata: r.Metadata };
  }
}

module.exports = { S3Server };
