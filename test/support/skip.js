'use strict';
// What a suite needs of this machine (GStreamer, ffmpeg): the first need not met, in words to print before skipping.
//
//   const why = missingNeed([[available(), unavailableReason()], [hasFfmpeg(), 'ffmpeg is not installed']]);
//   if (why) { console.log(`      skipped: ${why}`); this.skip(); }

/**
 * @param {Array<[boolean, string | null]>} needs each [met, why not]
 * @returns {string | null}
 */
function missingNeed(needs) {
  for (const [ok, why] of needs) if (!ok) return why || 'a part it needs is missing';
  return null;
}

module.exports = { missingNeed };
