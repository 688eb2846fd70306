'use strict';
// The Prometheus files shipped in examples/prometheus/ are checked by Prometheus' own tool: the scrape config and the
// alert rules load, each alert fires on the series its unit tests feed it (uplink-alerts.test.yml) and not before
// its `for:` or on a healthy device, and those unit tests catch a rule that is changed.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { promtool, unavailableReason } = require('./support/prometheus');
const { tmpDir, rmrf } = require('./support/tmp');

const yaml = require(require.resolve('js-yaml', { paths: [path.dirname(require.resolve('@node-red/nodes/package.json', { paths: [path.dirname(require.resolve('node-red'))] }))] }));

const DIR = path.join(__dirname, '..', 'examples', 'prometheus');
const CONFIG = path.join(DIR, 'prometheus.yml');
const RULES = path.join(DIR, 'uplink-alerts.yml');
const RULE_TESTS = path.join(DIR, 'uplink-alerts.test.yml');

/** The alerts the rules must hold, each with the metric its expression reads. */
const ALERTS = {
  UplinkDeviceDown: 'up',
  UplinkTargetOffline: 'uplink_connectivity_up',
  UplinkQueueGrowing: 'uplink_queue_pending_items',
  UplinkCameraFailing: 'uplink_capture_failures_in_a_row',
  UplinkDiskLow: 'uplink_disk_free_bytes',
  UplinkFailedItems: 'uplink_queue_items',
  UplinkRecorderStopped: 'uplink_recorder_recording',
};

function rules() {
  return yaml.load(fs.readFileSync(RULES, 'utf8')).groups.flatMap((g) => g.rules);
}

describe('the shipped Prometheus config and alert rules', function () {
  this.timeout(60000);

  before(function () {
    const reason = unavailableReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
  });

  it('hold a valid scrape config that loads the rules', function () {
    const r = promtool('check', 'config', CONFIG);
    assert.ok(r.ok, r.output);
    assert.match(r.output, /SUCCESS: 1 rule files found/);
    const config = yaml.load(fs.readFileSync(CONFIG, 'utf8'));
    const job = config.scrape_configs.find((j) => j.job_name === 'uplink');
    assert.ok(job, 'a scrape job named uplink, which UplinkDeviceDown watches');
    assert.strictEqual(job.metrics_path, '/uplink/metrics');
  });

  it('hold valid rules: one per alert, each with a severity, a summary and a description', function () {
    const r = promtool('check', 'rules', RULES);
    assert.ok(r.ok, r.output);
    const all = rules();
    assert.deepStrictEqual(all.map((x) => x.alert).sort(), Object.keys(ALERTS).sort());
    for (const rule of all) {
      assert.ok(rule.expr.includes(ALERTS[rule.alert]), `${rule.alert} reads ${ALERTS[rule.alert]}: ${rule.expr}`);
      assert.match(rule.labels.severity, /^(warning|critical)$/, `${rule.alert} severity`);
      assert.ok(rule.annotations.summary && rule.annotations.description, `${rule.alert} has a summary and a description`);
      assert.match(rule.for, /^\d+m$/, `${rule.alert} waits before it fires`);
    }
  });

  it('fire each alert on the series of its unit tests, and not on a healthy device', function () {
    const tests = yaml.load(fs.readFileSync(RULE_TESTS, 'utf8')).tests;
    const expected = new Set(tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const quiet = new Set(tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname)));
    assert.deepStrictEqual([...expected].sort(), Object.keys(ALERTS).sort(), 'every alert is expected to fire somewhere');
    assert.deepStrictEqual([...quiet].sort(), Object.keys(ALERTS).sort(), 'every alert is expected to stay quiet somewhere');
    const r = promtool('test', 'rules', RULE_TESTS);
    assert.ok(r.ok, r.output);
    assert.match(r.output, /SUCCESS/);
  });

  it('the unit tests catch a changed threshold and a changed duration', function () {
    const dir = tmpDir('uplink-prom-rules-');
    try {
      fs.copyFileSync(RULE_TESTS, path.join(dir, 'uplink-alerts.test.yml'));
      const original = fs.readFileSync(RULES, 'utf8');
      const edits = [
        ['UplinkDiskLow', original.replace('uplink_disk_free_bytes < 500 * 1024 * 1024', 'uplink_disk_free_bytes < 300 * 1024 * 1024')],
        ['UplinkTargetOffline', original.replace(/(expr: uplink_connectivity_up == 0\n\s+for: )10m/, '$12m')],
      ];
      for (const [alert, changed] of edits) {
        assert.notStrictEqual(changed, original, `the ${alert} edit applies`);
        fs.writeFileSync(path.join(dir, 'uplink-alerts.yml'), changed);
        const r = promtool('test', 'rules', path.join(dir, 'uplink-alerts.test.yml'));
        assert.ok(!r.ok, `promtool test rules passed a changed ${alert}:\n${r.output}`);
        assert.match(r.output, new RegExp(`alertname: ${alert}\\b`));
      }
    } finally {
      rmrf(dir);
    }
  });
});
