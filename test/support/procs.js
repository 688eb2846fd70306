'use strict';
// Process checks for tests that must prove no ffmpeg outlives its node.

/**
 * Whether a process runs. A zombie does not count: in a container whose first process never reaps orphans, a killed
 * ffmpeg whose parent died stays a zombie for good, and `process.kill(pid, 0)` would still find it.
 */
function alive(pid) {
  try {
    const stat = require('fs').readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

module.exports = { alive };
