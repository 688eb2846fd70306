'use strict';
// Listening on 127.0.0.1 and reading back the port, in one typed place: `server.address()` answers a string for a pipe
// or Unix socket, which the servers here never are.
const net = require('net');

/**
 * The TCP port a listening server is bound to.
 * @param {import('net').Server} server
 * @returns {number}
 */
function portOf(server) {
  return /** @type {import('net').AddressInfo} */ (server.address()).port;
}

/**
 * Starts `server` listening on 127.0.0.1 (`port` 0: one the kernel picks) and answers the port it got.
 * @param {import('net').Server} server
 * @param {number} [port]
 * @returns {Promise<number>}
 */
function listenLocal(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(portOf(server));
    });
  });
}

/**
 * Whether a TCP connection to 127.0.0.1:`port` is refused (nothing listens there any more).
 * @param {number} port
 * @returns {Promise<boolean>}
 */
function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
}

module.exports = { portOf, listenLocal, refused };
