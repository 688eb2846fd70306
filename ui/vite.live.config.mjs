// Builds the live camera widget's Vue component into resources/ui-uplink-live.umd.js, as ui/vite.config.mjs builds the
// status widget (a build of its own, so each file carries only what its widget needs; the build both share is
// ui/vite.widget.mjs). HLS.js (light: no subtitles, no alternate audio, no DRM) is bundled in: the dashboard may be
// opened where there is no internet, so nothing is fetched from a CDN. Its license notice heads the file.
// Rebuild with `npm run build:widget` after changing ui/; test/ui-uplink-live.test.js checks the file is current.
import fs from 'fs'
import { createRequire } from 'module'
import { widgetConfig } from './vite.widget.mjs'

const require = createRequire(import.meta.url)
const hlsPackage = require.resolve('hls.js/package.json')
const hls = JSON.parse(fs.readFileSync(hlsPackage, 'utf8'))
const hlsLicense = fs.readFileSync(new URL('LICENSE', 'file://' + hlsPackage), 'utf8').trim().replace(/\*\//g, '* /')
const banner = `/*!\n * Uplink live camera widget. Bundles ${hls.name} ${hls.version} (${hls.license}), https://github.com/video-dev/hls.js:\n *\n${hlsLicense.split('\n').map((l) => (' * ' + l).trimEnd()).join('\n')}\n */`

export default widgetConfig({ entry: 'live.js', name: 'ui-uplink-live', banner })
