// Builds the live camera widget's Vue component into resources/ui-uplink-live.umd.js, as ui/vite.config.mjs builds the
// status widget (a build of its own, so each file carries only what its widget needs). HLS.js (light: no subtitles,
// no alternate audio, no DRM) is bundled in: the dashboard may be opened where there is no internet, so nothing is
// fetched from a CDN. Its license notice heads the file. Vue comes from the dashboard's page (window.Vue).
// Rebuild with `npm run build:widget` after changing ui/; test/ui-uplink-live.test.js checks the file is current.
import fs from 'fs'
import { createRequire } from 'module'
import { fileURLToPath } from 'url'
import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vite'

const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const require = createRequire(import.meta.url)
const hlsPackage = require.resolve('hls.js/package.json')
const hls = JSON.parse(fs.readFileSync(hlsPackage, 'utf8'))
const hlsLicense = fs.readFileSync(new URL('LICENSE', 'file://' + hlsPackage), 'utf8').trim().replace(/\*\//g, '* /')
const banner = `/*!\n * Uplink live camera widget. Bundles ${hls.name} ${hls.version} (${hls.license}), https://github.com/video-dev/hls.js:\n *\n${hlsLicense.split('\n').map((l) => (' * ' + l).trimEnd()).join('\n')}\n */`

export default defineConfig({
    root: here('.'),
    logLevel: 'warn',
    plugins: [vue()],
    define: { 'process.env.NODE_ENV': '"production"' },
    build: {
        outDir: process.env.UPLINK_WIDGET_OUT_DIR || here('../resources'),
        emptyOutDir: false,
        sourcemap: false,
        lib: {
            entry: here('live.js'),
            name: 'ui-uplink-live',
            formats: ['umd'],
            fileName: () => 'ui-uplink-live.umd.js'
        },
        rollupOptions: {
            external: ['vue'],
            output: { globals: { vue: "Vue" }, postBanner: banner }
        }
    }
})
