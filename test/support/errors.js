'use strict';
// Checks for assert.throws and assert.rejects. Their callback receives the thrown value as `unknown`; this one reads
// it as the coded errors lib throws (CaptureError, ClipError, ...).

/**
 * Accepts an error whose `code` is `code` and whose message matches every one of `patterns`.
 * @param {string} code
 * @param {...RegExp} patterns
 * @returns {(thrown: unknown) => boolean}
 */
function errorWith(code, ...patterns) {
  return (thrown) => {
    const e = /** @type {Error & { code?: unknown }} */ (thrown);
    return e.code === code && patterns.every((re) => re.test(e.message));
  };
}

module.exports = { errorWith };
