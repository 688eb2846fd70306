'use strict';
// The S3 server of the uploader benchmark, in a process of its own: s3rver (test/support/s3-server.js) serving
// `directory` (argv[2]) on 127.0.0.1. It gets its own core, so its CPU does not share an event loop with the client side
// being measured. Sends { port } once listening; exits when the parent goes away (the IPC channel closes) or says 'stop'.
const { S3Server } = require('../test/support/s3-server');

async function main() {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: s3rver-child.js DIRECTORY');
  const server = await new S3Server({ buckets: ['uplink-bench'], directory: dir }).start();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await server.stop();
    } finally {
      process.exit(0);
    }
  };
  process.on('disconnect', stop);
  process.on('message', (m) => {
    if (m === 'stop') void stop();
  });
  process.send({ port: server.port });
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
