'use strict';
// The hand-written design QueueStore replaces: the whole queue is an array in memory, and every change rewrites
// pending_uploads.json (to a temp name, then rename). With `fsync` it also flushes the temp file and the folder,
// which it needs to survive a power cut; without it (the usual hand-written version) a crash can lose the file.
const fs = require('fs');
const path = require('path');

class JsonFileQueue {
  constructor(file, { fsync = false } = {}) {
    this.file = file;
    this.fsync = fsync;
    this.items = [];
    this.nextId = 1;
  }

  /** Puts n items in without writing n times, then writes the file once. */
  prefill(n, makeMessage) {
    const t = Date.now();
    for (let i = 0; i < n; i++) this.items.push(this.entry(makeMessage(i), t));
    this.save();
  }

  enqueue(msg) {
    const item = this.entry(msg, Date.now());
    this.items.push(item);
    this.save();
    return item.id;
  }

  entry(msg, t) {
    return { id: this.nextId++, state: 'pending', priority: 5, createdAt: t, attempts: 0, msg };
  }

  save() {
    const tmp = `${this.file}.tmp`;
    const text = JSON.stringify(this.items);
    if (this.fsync) {
      const fd = fs.openSync(tmp, 'w');
      try {
        fs.writeSync(fd, text);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.file);
      const dir = fs.openSync(path.dirname(this.file), 'r');
      try {
        fs.fsyncSync(dir);
      } finally {
        fs.closeSync(dir);
      }
    } else {
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, this.file);
    }
  }
}

module.exports = { JsonFileQueue };
