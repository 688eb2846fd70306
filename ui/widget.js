// What the dashboard widgets' browser parts (components/UIUplinkStatus.vue, components/UIUplinkLive.vue) share. Each
// widget's build bundles its own copy, so a page with both widgets runs two, which share nothing but the page.

/** Puts a widget's stylesheet into the page once, as a <style> element with this id. */
export function injectStyle (id, css) {
    if (typeof document === 'undefined' || document.getElementById(id)) return
    const style = document.createElement('style')
    style.id = id
    style.textContent = css
    document.head.appendChild(style)
}

/** A root path and a tail joined with exactly one slash between them, and a leading one. */
export function joinPath (root, tail) {
    return ('/' + String(root || '') + '/' + tail).replace(/\/{2,}/g, '/')
}

/** The component options every Dashboard 2.0 widget has: what the dashboard injects and the props it passes. */
export const WIDGET = {
    inject: ['$socket', '$dataTracker'],
    props: {
        id: { type: String, required: true },
        props: { type: Object, default: () => ({}) },
        state: { type: Object, default: () => ({ enabled: false, visible: false }) }
    }
}

/** A computed property: Node-RED's settings as the dashboard's page has them (httpNodeRoot, httpAdminRoot); {} before. */
export function red () {
    const setup = this.$store && this.$store.state.setup && this.$store.state.setup.setup
    return (setup && setup.RED) || {}
}
