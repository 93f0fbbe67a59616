// scripts/monitoring.sh, for real: a native stack (prometheus, prometheus-alertmanager,
// prometheus-node-exporter and hookwatch as processes on random ports, in a temp state dir) driven
// through init → check → metrics → report → backup → reset → restore → check, and the failures
// it must report: a stopped component, a tampered archive, usage errors, shellcheck findings.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeRun, eventually, NativeStack, onPath, REPO, requireCommands, run, SCRIPT, sleep, type NativeComponent } from './helpers/script-harness.js';

/** hookwatch's DATA_DIR and database hold every endpoint's signing secret: private to their owner. */
function assertPrivateData(stateDir: string, when: string): void {
  assert.equal((statSync(join(stateDir, 'hookwatch')).mode & 0o777).toString(8), '700', `${when}: the data directory is 0700`);
  assert.equal((statSync(join(stateDir, 'hookwatch', 'hookwatch.db')).mode & 0o777).toString(8), '600', `${when}: the database is 0600`);
}

const NATIVE_TOOLS = ['prometheus', 'promtool', 'prometheus-alertmanager', 'amtool', 'prometheus-node-exporter', 'sqlite3', 'curl', 'jq'];

describe('scripts/monitoring.sh: usage', () => {
  it('passes shellcheck', async () => {
    requireCommands(['shellcheck']);
    const libs = readdirSync(join(REPO, 'scripts/lib')).filter((f) => f.endsWith('.sh')).map((f) => `scripts/lib/${f}`);
    const result = await run('shellcheck', ['scripts/monitoring.sh', ...libs]);
    assert.equal(result.code, 0, describeRun(result));
  });

  it('exits 2 with usage on stderr for no, unknown or incomplete commands', async () => {
    const cases: string[][] = [[], ['bogus'], ['restore'], ['report', '--since'], ['report', '--since', 'yesterday'], ['report', '--since', '99999999999999999999d'], ['report', '--since', '11y'], ['reset', '--force'], ['check', 'extra'], ['backup', '--yes']];
    for (const args of cases) {
      const result = await run(SCRIPT, args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${describeRun(result)}`);
      assert.match(result.stderr, /usage: scripts\/monitoring\.sh/, args.join(' '));
      assert.equal(result.stdout, '', args.join(' '));
    }
  });

  it('prints help for every subcommand and exits 0', async () => {
    for (const command of ['init', 'urls', 'check', 'metrics', 'report', 'backup', 'restore', 'update', 'reset']) {
      const result = await run(SCRIPT, [command, '--help']);
      assert.equal(result.code, 0, `${command}: ${describeRun(result)}`);
      assert.match(result.stdout, new RegExp(`^usage: scripts/monitoring\\.sh ${command}`), command);
    }
    const top = await run(SCRIPT, ['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /restore \[--yes\] FILE/);
  });
});

describe('scripts/monitoring.sh: the env file', () => {
  it('takes the last line of a key set twice, as docker compose and init do; the environment still wins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hookwatch-monitoring-env-'));
    try {
      const envFile = join(dir, 'env');
      // As after copying .env.example and appending one's own values below it.
      writeFileSync(envFile, ['HOOKWATCH_PORT=3000', 'MONITORING_PROMETHEUS_PORT=9090', 'MONITORING_ALERTMANAGER_PORT=9093', '',
        'HOOKWATCH_PORT=43101', 'MONITORING_PROMETHEUS_PORT="43102"', 'MONITORING_ALERTMANAGER_PORT=43103', ''].join('\n'));
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const key of Object.keys(env)) if (key.startsWith('MONITORING_') || key === 'HOOKWATCH_PORT') delete env[key];
      Object.assign(env, { MONITORING_MODE: 'native', MONITORING_STATE_DIR: join(dir, 'state'), MONITORING_ENV_FILE: envFile, MONITORING_ALERTMANAGER_PORT: '43199' });
      const result = await run(SCRIPT, ['urls'], { env });
      assert.equal(result.code, 0, describeRun(result));
      assert.match(result.stdout, /^ {2}hookwatch +http:\/\/127\.0\.0\.1:43101 /m, 'the last HOOKWATCH_PORT of the file');
      assert.match(result.stdout, /^ {2}Prometheus +http:\/\/127\.0\.0\.1:43102 /m, 'the last MONITORING_PROMETHEUS_PORT of the file');
      assert.match(result.stdout, /^ {2}Alertmanager +http:\/\/127\.0\.0\.1:43199$/m, 'the environment over both lines of the file');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('scripts/monitoring.sh: a native stack from init to restore', { timeout: 240_000 }, () => {
  let stack: NativeStack;
  let eventId = '';
  let seenAt = 0;
  let archive = '';
  const silenceComment = `monitoring-script test ${Date.now()}`;
  // Active when the backup is taken, ended by the time of the restore.
  const shortComment = `monitoring-script short silence ${Date.now()}`;
  let shortEndsAt = 0;

  /** Silences one alert name in the stack's Alertmanager until `endsAt`; the answer's status. */
  const addSilence = async (alertname: string, endsAt: number, comment: string): Promise<number> => {
    const res = await fetch(stack.url('alertmanager', '/api/v2/silences'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        matchers: [{ name: 'alertname', value: alertname, isRegex: false, isEqual: true }],
        startsAt: new Date().toISOString(),
        endsAt: new Date(endsAt).toISOString(),
        createdBy: 'test',
        comment,
      }),
    });
    await res.arrayBuffer();
    return res.status;
  };

  before(async () => {
    requireCommands(NATIVE_TOOLS);
    stack = await NativeStack.create();
  });

  after(async () => {
    await stack?.destroy();
  });

  it('init creates the env file with generated secrets, validates, starts and waits until healthy', async () => {
    const result = await stack.script(['init'], { timeoutMs: 180_000 });
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /mode: native/);
    assert.match(result.stdout, /created .* from \.env\.example/);
    assert.match(result.stdout, /promtool check config: ok/);
    assert.match(result.stdout, /amtool check-config: ok/);
    // docker-compose.yml is validated too, in native mode, when a compose command is installed.
    if (onPath('docker-compose')) assert.match(result.stdout, /docker compose config: ok/);
    assert.match(result.stdout, /scrape job grafana .*dropped, not available in native mode/);
    assert.match(result.stdout, /every target up/);
    assert.ok(stack.envValue('ADMIN_TOKEN').length >= 32, 'ADMIN_TOKEN generated');
    assert.ok(stack.envValue('GRAFANA_ADMIN_PASSWORD').length >= 32, 'GRAFANA_ADMIN_PASSWORD generated');
    assert.equal(statSync(stack.envFile).mode & 0o777, 0o600, 'the env file is private');
    assertPrivateData(stack.stateDir, 'after init');
    for (const secret of ['slack_webhook_url', 'pagerduty_routing_key', 'smtp_password']) {
      assert.ok(existsSync(join(stack.dir, 'secrets', secret)), `secret file ${secret}`);
    }
  });

  it('receives an event that reaches the database and Prometheus', async () => {
    eventId = await stack.sendEvent('order.created');
    await eventually('the event in the admin API', 20_000, async () => ((await stack.adminGet(`/events/${eventId}`)).status === 200 ? true : undefined));
    seenAt = await eventually('the event in Prometheus', 30_000, async () => {
      const [sample] = await stack.query('webhook_events_by_type_total{source="shop"} >= 1');
      return sample ? sample.value[0] : undefined;
    });
    assert.equal(await addSilence('MonitoringScriptTest', Date.now() + 3_600_000, silenceComment), 200);
  });

  it('check passes everything and reports what native mode lacks as not available', async () => {
    const result = await stack.script(['check']);
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /check: all \d+ checks passed/);
    for (const component of ['grafana', 'loki', 'jaeger', 'mailpit']) {
      assert.match(result.stdout, new RegExp(`^${component} .*N/A .*not available in native mode`, 'm'));
    }
    assert.match(result.stdout, /^prometheus +rules loaded +PASS/m);
    assert.doesNotMatch(result.stdout, / FAIL /);
  });

  it('urls lists every component', async () => {
    const result = await stack.script(['urls']);
    assert.equal(result.code, 0, describeRun(result));
    assert.ok(result.stdout.includes(stack.url('prometheus', '')), result.stdout);
    assert.match(result.stdout, /Grafana +not available in native mode/);
    assert.match(result.stdout, /dashboard .*\/d\/hookwatch-overview/);
  });

  it('metrics shows the key figures', async () => {
    const result = await stack.script(['metrics']);
    assert.equal(result.code, 0, describeRun(result));
    for (const figure of ['Request rate', 'Error rate', 'p95 latency', 'Queue size', 'Dead-letter queue', 'Delivery success', 'Alerts firing']) {
      assert.match(result.stdout, new RegExp(`^  ${figure} `, 'm'), figure);
    }
    assert.match(result.stdout, /Request rate +[\d.]+ req\/s +\(shop /);
    assert.match(result.stdout, /Alerts firing +\d+: .*Watchdog/);
  });

  it('update validates and hot-reloads Prometheus and Alertmanager', async () => {
    const result = await stack.script(['update']);
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /==> reloading Prometheus\n +ok \(\d+ rules loaded\)/);
    assert.match(result.stdout, /==> reloading Alertmanager\n +ok/);
    assert.match(result.stdout, /Grafana: not available in native mode/);
  });

  it('report writes Markdown to the reports directory and prints it', async () => {
    const result = await stack.script(['report', '--since', '1h']);
    assert.equal(result.code, 0, describeRun(result));
    const [file] = readdirSync(stack.reportDir).filter((f) => /^hookwatch-report-\d{8}-\d{6}\.md$/.test(f));
    assert.ok(file, 'a report file');
    assert.equal(readFileSync(join(stack.reportDir, file), 'utf8'), result.stdout);
    for (const section of ['Summary', 'Traffic', 'Errors', 'Latency', 'Events by type', 'Deliveries per endpoint', 'Top failure reasons', 'Alerts that fired', 'Recommended actions']) {
      assert.match(result.stdout, new RegExp(`^## ${section}$`, 'm'), section);
    }
    assert.match(result.stdout, /^\| shop \| 202 \| \d+ \|$/m, 'requests by source and status');
    assert.match(result.stdout, /^\| Watchdog \| none \|/m, 'alerts that fired');
  });

  it('backup writes a checksummed archive of every data store', async () => {
    shortEndsAt = Date.now() + 30_000;
    assert.equal(await addSilence('Short', shortEndsAt, shortComment), 200);
    const result = await stack.script(['backup']);
    assert.equal(result.code, 0, describeRun(result));
    for (let step = 1; step <= 7; step++) assert.match(result.stdout, new RegExp(`^\\[${step}/7\\] `, 'm'), `progress step ${step}`);
    const [written] = stack.backups();
    assert.ok(written && /monitoring-\d{8}-\d{6}\.tar\.gz$/.test(written), `archive name: ${written}`);
    archive = written;
    assert.ok(existsSync(`${archive}.sha256`));
    assert.equal(statSync(archive).mode & 0o077, 0, 'the archive (hookwatch\'s database, with the endpoints\' signing secrets) is private');
    const listing = execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' });
    for (const entry of ['manifest.json', 'SHA256SUMS', 'hookwatch/hookwatch.db', 'alertmanager/silences.json', 'prometheus/snapshot/', 'config/monitoring/prometheus/prometheus.yml']) {
      assert.ok(listing.includes(entry), `${entry} in the archive`);
    }
    assert.doesNotMatch(listing, /secrets\//, 'no secret files in the archive');
    const name = archive.replace(/^.*\//, '').replace(/\.tar\.gz$/, '');
    const manifest = JSON.parse(execFileSync('tar', ['-xzOf', archive, `${name}/manifest.json`], { encoding: 'utf8' })) as {
      mode: string;
      components: Record<string, { included: boolean; reason?: string }>;
    };
    assert.equal(manifest.mode, 'native');
    assert.equal(manifest.components.grafana?.included, false);
    assert.match(manifest.components.grafana?.reason ?? '', /not available in native mode/);
    const silences = JSON.parse(execFileSync('tar', ['-xzOf', archive, `${name}/alertmanager/silences.json`], { encoding: 'utf8' })) as Array<{ comment: string; status: { state: string } }>;
    assert.equal(silences.find((s) => s.comment === shortComment)?.status.state, 'active', 'the short silence is active in the backup');
  });

  it('restore refuses a tampered archive and changes nothing', async () => {
    const work = mkdtempSync(join(stack.dir, 'tamper-'));
    const name = archive.replace(/^.*\//, '').replace(/\.tar\.gz$/, '');
    execFileSync('tar', ['-xzf', archive, '-C', work]);
    appendFileSync(join(work, name, 'alertmanager/silences.json'), ' ');
    const tampered = join(work, `${name}.tar.gz`);
    execFileSync('tar', ['-czf', tampered, '-C', work, name]);
    // Markers inside the data directories: a restore that moved or replaced them would lose these.
    const markers = ['prometheus', 'hookwatch'].map((dir) => join(stack.stateDir, dir, 'tamper-test-marker'));
    for (const marker of markers) writeFileSync(marker, 'still here');
    const running: NativeComponent[] = ['prometheus', 'hookwatch', 'alertmanager'];
    const pids = running.map((c) => stack.pidOf(c));

    const inside = await stack.script(['restore', '--yes', tampered]);
    assert.equal(inside.code, 1, describeRun(inside));
    assert.match(inside.stderr, /restore REFUSED: checksum verification failed/);
    assert.match(inside.stderr, /alertmanager\/silences\.json: FAILED/);
    assert.match(inside.stderr, /nothing was stopped, changed or overwritten/);

    // With the genuine archive's .sha256 beside it, the archive checksum already fails.
    writeFileSync(`${tampered}.sha256`, readFileSync(`${archive}.sha256`));
    const outside = await stack.script(['restore', '--yes', tampered]);
    assert.equal(outside.code, 1, describeRun(outside));
    assert.match(outside.stderr, /restore REFUSED: .*does not match its checksum file/);

    for (const marker of markers) assert.equal(readFileSync(marker, 'utf8'), 'still here');
    assert.deepEqual(running.map((c) => stack.pidOf(c)), pids, 'nothing was restarted');
    for (const pid of pids) assert.ok(pid !== undefined && stack.alive(pid));
    assert.equal((await stack.adminGet(`/events/${eventId}`)).status, 200);
  });

  it('restore without --yes and without a terminal is a usage error, and stops and changes nothing', async () => {
    const markers = ['prometheus', 'hookwatch'].map((dir) => join(stack.stateDir, dir, 'no-yes-test-marker'));
    for (const marker of markers) writeFileSync(marker, 'still here');
    const running: NativeComponent[] = ['prometheus', 'hookwatch', 'alertmanager'];
    const pids = running.map((c) => stack.pidOf(c));
    const result = await stack.script(['restore', archive]);
    assert.equal(result.code, 2, describeRun(result));
    assert.match(result.stderr, /restore replaces Prometheus's TSDB and hookwatch's database .*confirm with --yes/);
    assert.match(result.stderr, /usage: scripts\/monitoring\.sh restore/);
    assert.equal(result.stdout, '', 'not even the verification started');
    for (const marker of markers) assert.equal(readFileSync(marker, 'utf8'), 'still here');
    assert.deepEqual(running.map((c) => stack.pidOf(c)), pids, 'nothing was stopped or restarted');
    for (const pid of pids) assert.ok(pid !== undefined && stack.alive(pid));
  });

  it('reset --yes stops the stack and deletes its data; without --yes and a terminal it refuses', async () => {
    const refused = await stack.script(['reset']);
    assert.equal(refused.code, 2, `a usage error: ${describeRun(refused)}`);
    assert.match(refused.stderr, /--yes/);
    assert.ok(existsSync(join(stack.stateDir, 'hookwatch', 'hookwatch.db')), 'nothing deleted without confirmation');

    const all: NativeComponent[] = ['prometheus', 'hookwatch', 'alertmanager', 'node-exporter'];
    const pids = all.map((c) => stack.pidOf(c));
    const result = await stack.script(['reset', '--yes'], { timeoutMs: 90_000 });
    assert.equal(result.code, 0, describeRun(result));
    assert.ok(!existsSync(stack.stateDir), 'state directory removed');
    for (const pid of pids) assert.ok(pid !== undefined && !stack.alive(pid), `pid ${pid} stopped`);
    assert.ok(existsSync(archive), 'backups are kept');
  });

  it('restore brings back the Prometheus series, the hookwatch event and the silence, and check passes', async () => {
    // The archive with one more silence, which Alertmanager refuses (an invalid regular expression),
    // and SHA256SUMS updated to match: a genuine archive as far as restore can tell.
    const work = mkdtempSync(join(stack.dir, 'refused-silence-'));
    const name = archive.replace(/^.*\//, '').replace(/\.tar\.gz$/, '');
    execFileSync('tar', ['-xzf', archive, '-C', work]);
    const silencesFile = join(work, name, 'alertmanager/silences.json');
    const backedUp = JSON.parse(readFileSync(silencesFile, 'utf8')) as unknown[];
    backedUp.push({
      id: 'refused-silence-test',
      matchers: [{ name: 'alertname', value: '(', isRegex: true, isEqual: true }],
      startsAt: new Date().toISOString(),
      endsAt: new Date(Date.now() + 3_600_000).toISOString(),
      createdBy: 'test',
      comment: 'refused',
      status: { state: 'active' },
    });
    writeFileSync(silencesFile, JSON.stringify(backedUp));
    const sums = join(work, name, 'SHA256SUMS');
    const digest = createHash('sha256').update(readFileSync(silencesFile)).digest('hex');
    writeFileSync(sums, readFileSync(sums, 'utf8').replace(/^[0-9a-f]{64}(  alertmanager\/silences\.json)$/m, `${digest}$1`));
    const crafted = join(work, `${name}.tar.gz`);
    execFileSync('tar', ['-czf', crafted, '-C', work, name]);
    // The short silence was active in the backup; by now it has ended.
    while (Date.now() < shortEndsAt + 1_000) await sleep(250);

    const result = await stack.script(['restore', '--yes', crafted], { timeoutMs: 180_000 });
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /files verified/);
    assert.match(result.stdout, /silences: 1 re-created, 0 already present, 1 ended by now and not restored, 1 refused by Alertmanager/);
    assert.match(result.stderr, /warning: silence refused-silence-test \(alertname=~"\("; .*\) not re-created: Alertmanager answered 400 /);
    assert.match(result.stdout, /check: all \d+ checks passed/);
    assert.match(result.stdout, /^restore: done, except: 1 of the backup's silences could not be re-created/m);
    assertPrivateData(stack.stateDir, 'after restore');

    const event = await stack.adminGet(`/events/${eventId}`);
    assert.equal(event.status, 200, 'the event from before the backup');
    assert.equal(((await event.json()) as { id: string }).id, eventId);

    // Queried at the time it was seen before the backup: only the restored TSDB can answer.
    const series = await stack.query('webhook_events_by_type_total{source="shop"}', seenAt);
    assert.ok(series.some((s) => Number(s.value[1]) >= 1), `series before the backup: ${JSON.stringify(series)}`);

    const silences = (await (await fetch(stack.url('alertmanager', '/api/v2/silences'))).json()) as Array<{ comment: string; status: { state: string } }>;
    assert.ok(silences.some((s) => s.comment === silenceComment && s.status.state === 'active'), 'silence restored');
  });

  it('check exits non-zero and names the component that is stopped', async () => {
    const pid = stack.pidOf('alertmanager');
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGTERM');
    await eventually('alertmanager to exit', 15_000, async () => (stack.alive(pid) ? undefined : true));
    const result = await stack.script(['check']);
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stdout, /^alertmanager +process +FAIL +not running/m);
    assert.match(result.stdout, /^alertmanager +health +FAIL /m);
    assert.match(result.stdout, /check: FAILED: alertmanager \(/);
    assert.match(result.stderr, /check failed for: alertmanager/);
    assert.doesNotMatch(result.stdout, /^(hookwatch|prometheus|node-exporter) .* FAIL /m, 'only alertmanager fails');
  });
});
