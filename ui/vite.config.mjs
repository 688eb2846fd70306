// Builds the widget's Vue component into one UMD file, resources/ui-uplink-status.umd.js, which Node-RED serves at
// /resources/<package>/ and Dashboard 2.0 loads. Vue comes from the dashboard's page (window.Vue), so it is not
// bundled. The build is committed: `npm run build` (TypeScript) never needs Vite, and a clean clone ships the widget.
// Rebuild with `npm run build:widget` after changing ui/; test/ui-uplink-status.test.js checks the file is current.
import { fileURLToPath } from 'url'
import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vite'

const here = (p) => fileURLToPath(new URL(p, import.meta.url))

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
            entry: here('index.js'),
            name: 'ui-uplink-status',
            formats: ['umd'],
            fileName: () => 'ui-uplink-status.umd.js'
        },
        rollupOptions: {
            external: ['vue'],
            output: { globals: { vue: 'Vue' } }
        }
    }
})
