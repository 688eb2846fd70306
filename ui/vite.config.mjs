// Builds the status widget's Vue component into resources/ui-uplink-status.umd.js (the build both widgets share is
// ui/vite.widget.mjs). Rebuild with `npm run build:widget` after changing ui/; test/ui-uplink-status.test.js checks the
// file is current.
import { widgetConfig } from './vite.widget.mjs'

export default widgetConfig({ entry: 'index.js', name: 'ui-uplink-status' })
