'use strict';
// An S3 front door that a test can make refuse uploads: PUTs get 403 AccessDenied (a permanent error, so the item
// becomes a dead letter) while reads, the connectivity probe and the size check pass through to the store behind it.
// With `down` set it answers every request 503, as a store in an outage does.
const http = require('http');
const { listenLocal } = require('./net');

function startRefusingProxy(targetPort) {
  const proxy = { refusePuts: false, down: false };
  const server = http.createServer((req, res) => {
    if (proxy.down) {
      req.resume();
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down for the test');
      return;
    }
    if (proxy.refusePuts && req.method === 'PUT') {
      req.resume();
      req.on('end', () => {
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>test</RequestId></Error>');
      });
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.setTimeout(10000, () => up.destroy(new Error('s3rver timeout')));
    up.on('error', () => {
      res.destroy();
    });
    req.pipe(up);
  });
  proxy.server = server;
  proxy.start = () => listenLocal(server);
  proxy.stop = () =>
    new Promise((r) => {
      server.closeAllConnections?.();
      server.close(() => r());
    });
  return proxy;
}

module.exports = { startRefusingProxy };
