'use strict';
// Chromium for browser tests and benchmarks: Debian's (apt-get install -y chromium), driven by playwright-core,
// headless, with a fresh profile folder that close() removes.
//
//   const why = chromiumMissing(); if (why) { console.log(`      skipped: ${why}`); this.skip(); }
//   const browser = await launchChromium({ viewport: { width: 390, height: 844 } });
//   const page = await browser.context.newPage(); ... await browser.close();
const fs = require('fs');
const os = require('os');
const path = require('path');

const CHROMIUM = process.env.UPLINK_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--autoplay-policy=no-user-gesture-required'];

/** Why Chromium cannot run here, or null. */
function chromiumMissing() {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} is not installed (apt-get install -y chromium)`;
  try {
    require.resolve('playwright-core');
  } catch {
    return 'playwright-core is not installed (npm install)';
  }
  return null;
}

/**
 * @param {{ viewport?: { width: number, height: number } }} [opts]
 * @returns {Promise<{ context: import('playwright-core').BrowserContext, close: () => Promise<void> }>}
 */
async function launchChromium(opts = {}) {
  const { chromium } = require('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      args: ARGS,
      ...(opts.viewport ? { viewport: opts.viewport } : {}),
    });
    context.setDefaultTimeout(15000);
    context.setDefaultNavigationTimeout(30000);
    return {
      context,
      async close() {
        await context.close().catch(() => undefined);
        fs.rmSync(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    fs.rmSync(userDataDir, { recursive: true, force: true });
    throw e;
  }
}

module.exports = { CHROMIUM, chromiumMissing, launchChromium };
