// The Uplink status widget's browser part: Dashboard 2.0 loads the UMD build of this file (resources/) and renders
// the component named in package.json's "node-red-dashboard-2" section.
export { default as UIUplinkStatus } from './components/UIUplinkStatus.vue'
