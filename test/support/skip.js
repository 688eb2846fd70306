'use strict';
// Skipping a suite whose real parts are missing on this machine (GStreamer, ffmpeg), saying why in the test output.

/**
 * From a `before` hook: skips the suite at the first need not met, printing its reason.
 * @param {Mocha.Context} context the hook's `this`
 * @param {Array<[boolean, string | null]>} needs each [met, why not]
 */
function skipUnless(context, needs) {
  for (const [ok, why] of needs) {
    if (!ok) {
      console.log(`      skipped: ${why}`);
      context.skip();
    }
  }
}

module.exports = { skipUnless };
