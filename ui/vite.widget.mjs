// The build both dashboard widgets share (ui/vite.config.mjs: status, ui/vite.live.config.mjs: live): a widget's Vue
// component into one UMD file, resources/<name>.umd.js, which Node-RED serves at /resources/<package>/ and Dashboard
// 2.0 loads. Vue comes from the dashboard's page (window.Vue), so it is not bundled. The builds are committed: `npm run
// build` (TypeScript) never needs Vite, and a clean clone ships the widgets. UPLINK_WIDGET_OUT_DIR builds elsewhere
// (the tests that check the committed files are current).
import { fileURLToPath } from 'url'
import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vite'

/** A path relative to ui/. */
export const here = (p) => fileURLToPath(new URL(p, import.meta.url))

/**
 * @param {{ entry: string, name: string, banner?: string }} widget entry: the file in ui/ that exports the component;
 *   name: the widget's node type (the file is <name>.umd.js); banner: a comment to head the file (a bundled license).
 */
export function widgetConfig ({ entry, name, banner }) {
    return defineConfig({
        root: here('.'),
        logLevel: 'warn',
        plugins: [vue()],
        define: { 'process.env.NODE_ENV': '"production"' },
        build: {
            outDir: process.env.UPLINK_WIDGET_OUT_DIR || here('../resources'),
            emptyOutDir: false,
            sourcemap: false,
            lib: {
                entry: here(entry),
                name,
                formats: ['umd'],
                fileName: () => `${name}.umd.js`
            },
            rollupOptions: {
                external: ['vue'],
                output: { globals: { vue: 'Vue' }, ...(banner ? { postBanner: banner } : {}) }
            }
        }
    })
}
