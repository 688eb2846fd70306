'use strict';
// A tiny UDP DNS responder for tests, bound to 127.0.0.1 on a port the system picks. It only ever answers the
// socket that asked, so a DNS probe pointed at it never reaches any other address.
//
//   names under .invalid        -> NXDOMAIN
//   names starting "v6only."    -> no A record (NOERROR, empty), AAAA ::1
//   anything else               -> A 127.0.0.1 (AAAA and other types: NOERROR, empty)
//   mode 'silent'               -> reads the query, never answers
const dgram = require('dgram');

const TYPE_A = 1;
const TYPE_AAAA = 28;
const CLASS_IN = 1;
const RCODE_NXDOMAIN = 3;
const RCODE_FORMERR = 1;

/** Reads the header and first question of a query; null when it is not one we can answer. */
function parseQuery(msg) {
  if (msg.length < 12) return null;
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) return null; // a response, not a query
  const qdcount = msg.readUInt16BE(4);
  if (qdcount < 1) return { id, flags, question: null };
  const labels = [];
  let off = 12;
  for (let guard = 0; ; guard++) {
    if (guard > 127 || off >= msg.length) return { id, flags, question: null };
    const len = msg[off];
    if (len === 0) {
      off += 1;
      break;
    }
    if (len & 0xc0 || off + 1 + len > msg.length) return { id, flags, question: null }; // no compression in a question
    labels.push(msg.toString('latin1', off + 1, off + 1 + len));
    off += 1 + len;
  }
  if (off + 4 > msg.length) return { id, flags, question: null };
  return {
    id,
    flags,
    question: {
      name: labels.join('.'),
      type: msg.readUInt16BE(off),
      cls: msg.readUInt16BE(off + 2),
      bytes: msg.subarray(12, off + 4), // echoed back exactly, case and all
    },
  };
}

function header(id, queryFlags, rcode, qdcount, ancount) {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  // QR=1, opcode copied, AA=1, RD copied, RA=1, rcode.
  h.writeUInt16BE(0x8000 | (queryFlags & 0x7800) | 0x0400 | (queryFlags & 0x0100) | 0x0080 | (rcode & 0xf), 2);
  h.writeUInt16BE(qdcount, 4);
  h.writeUInt16BE(ancount, 6);
  h.writeUInt16BE(0, 8);
  h.writeUInt16BE(0, 10);
  return h;
}

function answerRecord(type, rdata) {
  const rr = Buffer.alloc(12);
  rr.writeUInt16BE(0xc00c, 0); // pointer to the question name at offset 12
  rr.writeUInt16BE(type, 2);
  rr.writeUInt16BE(CLASS_IN, 4);
  rr.writeUInt32BE(60, 6); // TTL
  rr.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([rr, rdata]);
}

function respond(q) {
  if (!q.question) return header(q.id, q.flags, RCODE_FORMERR, 0, 0);
  const { name, type, cls, bytes } = q.question;
  const lower = name.toLowerCase();
  if (lower === 'invalid' || lower.endsWith('.invalid')) return Buffer.concat([header(q.id, q.flags, RCODE_NXDOMAIN, 1, 0), bytes]);
  const answers = [];
  if (cls === CLASS_IN) {
    const v6only = lower.startsWith('v6only.');
    if (type === TYPE_A && !v6only) answers.push(answerRecord(TYPE_A, Buffer.from([127, 0, 0, 1])));
    if (type === TYPE_AAAA && v6only) {
      const ip = Buffer.alloc(16);
      ip[15] = 1; // ::1
      answers.push(answerRecord(TYPE_AAAA, ip));
    }
  }
  return Buffer.concat([header(q.id, q.flags, 0, 1, answers.length), bytes, ...answers]);
}

/**
 * Starts the responder. Resolves to { port, address ("127.0.0.1:PORT", the form a DNS probe's `server` takes),
 * queries ([{ name, type }] in arrival order), mode (settable: 'answer' | 'silent'), close() }.
 */
function startDnsServer({ mode = 'answer' } = {}) {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const server = {
      port: 0,
      address: '',
      mode,
      queries: [],
      close() {
        return new Promise((done) => {
          try {
            socket.close(() => done());
          } catch {
            done(); // already closed
          }
        });
      },
    };
    socket.on('message', (msg, rinfo) => {
      const q = parseQuery(msg);
      if (!q) return;
      server.queries.push(q.question ? { name: q.question.name, type: q.question.type } : { name: null, type: null });
      if (server.mode === 'silent') return;
      // Only ever back to the asker, which in the tests is this process on 127.0.0.1.
      socket.send(respond(q), rinfo.port, rinfo.address);
    });
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.removeListener('error', reject);
      socket.on('error', () => {}); // e.g. ICMP port unreachable for a reply after the asker gave up
      server.port = socket.address().port;
      server.address = `127.0.0.1:${server.port}`;
      resolve(server);
    });
  });
}

module.exports = { startDnsServer, TYPE_A, TYPE_AAAA };
