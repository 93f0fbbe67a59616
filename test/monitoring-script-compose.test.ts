// scripts/monitoring.sh in compose mode, without a Docker engine: a `docker` shim on PATH answers
// `docker info` and `docker compose version` and records every other call, so the test sees the
// exact docker compose commands the script issues, and nothing real is started or deleted.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeRun, pathWithout, REPO, run, SCRIPT } from './helpers/script-harness.js';

describe('scripts/monitoring.sh: compose mode (docker shim)', () => {
  let dir = '';
  let log = '';
  let env: NodeJS.ProcessEnv = {};

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hookwatch-monitoring-compose-'));
    log = join(dir, 'docker.log');
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    // A POSIX sh shim: `info` and `compose version` succeed, every call is logged. A `run` reads
    // its input to the end, as a container would: exiting first broke the pipe of a `tar |` that
    // had not written yet, and the restore stopped there (seen under load in CI).
    const shim = join(bin, 'docker');
    writeFileSync(shim, [
      '#!/bin/sh',
      'printf "%s\\n" "$*" >> "$DOCKER_SHIM_LOG"',
      'case " $* " in *" run "*) cat > /dev/null ;; esac',
      'if [ "$1" = compose ] && [ "$2" = version ]; then echo "Docker Compose version v2.29.0 (shim)"; fi',
      'exit 0',
      '',
    ].join('\n'));
    chmodSync(shim, 0o755);
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const key of Object.keys(base)) if (key.startsWith('MONITORING_')) delete base[key];
    env = { ...base, PATH: `${bin}:${process.env.PATH ?? ''}`, DOCKER_SHIM_LOG: log, MONITORING_STATE_DIR: join(dir, 'state') };
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const calls = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

  it('is chosen when a Docker engine answers, and reset runs docker compose down --volumes', async () => {
    const result = await run(SCRIPT, ['reset', '--yes'], { env });
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /reset \(compose mode\)/);
    const compose = `compose --project-directory ${REPO} -f ${REPO}/docker-compose.yml --env-file ${REPO}/.env`;
    assert.ok(calls().includes(`${compose} down --volumes --remove-orphans`), calls().join('\n'));
  });

  it('urls lists Grafana with every dashboard, Loki, Jaeger and the mail catcher', async () => {
    const result = await run(SCRIPT, ['urls'], { env });
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /URLs \(compose mode\)/);
    assert.match(result.stdout, /Grafana +http:\/\/127\.0\.0\.1:3001/);
    for (const uid of ['hookwatch-overview', 'hookwatch-performance', 'hookwatch-events', 'hookwatch-deliveries']) {
      assert.match(result.stdout, new RegExp(`/d/${uid}`), uid);
    }
    assert.match(result.stdout, /Loki +http:\/\/127\.0\.0\.1:3100/);
    assert.match(result.stdout, /Jaeger +http:\/\/127\.0\.0\.1:16686/);
    assert.match(result.stdout, /mail catcher +http:\/\/127\.0\.0\.1:8025/);
    assert.match(result.stdout, /node-exporter +not published on the host/);
  });

  it('backup and restore stop at once, with the install hint, when the host has no sqlite3', async () => {
    // The database is copied inside the container, but checked with the host's sqlite3: without it
    // the backup used to fail late with a misleading "integrity check" error.
    const noSqlite = { ...env, PATH: `${join(dir, 'bin')}:${pathWithout(['sqlite3'], join(dir, 'no-sqlite3'))}` };
    const before = calls().length;
    for (const args of [['backup'], ['restore', '--yes', join(dir, 'monitoring-20240101-000000.tar.gz')]]) {
      const result = await run(SCRIPT, args, { env: noSqlite });
      assert.equal(result.code, 1, `${args[0]}: ${describeRun(result)}`);
      assert.match(result.stderr, /missing: sqlite3 \(install: apt-get install sqlite3\)/, args[0]);
    }
    assert.deepEqual(calls().slice(before).filter((c) => !/^(info|compose version)$/.test(c)), [], 'no docker compose command was issued');
  });

  /** A minimal archive that restore verifies as genuine: manifest, checksums, a sound database. */
  function backupArchive(): string {
    const name = 'monitoring-20240101-000000';
    const root = join(dir, 'archive');
    const top = join(root, name);
    rmSync(root, { recursive: true, force: true });
    for (const sub of ['prometheus/snapshot', 'hookwatch', 'alertmanager']) mkdirSync(join(top, sub), { recursive: true });
    execFileSync('sqlite3', [join(top, 'hookwatch/hookwatch.db'), 'CREATE TABLE t (x); INSERT INTO t VALUES (1);']);
    writeFileSync(join(top, 'alertmanager/silences.json'), '[]');
    writeFileSync(join(top, 'manifest.json'), JSON.stringify({
      format: 'hookwatch-monitoring-backup', format_version: 1, name, created_at: '2024-01-01T00:00:00Z', mode: 'compose',
      components: { grafana: { included: false, reason: 'not in this test archive' } },
    }));
    const files = ['alertmanager/silences.json', 'hookwatch/hookwatch.db', 'manifest.json'];
    writeFileSync(join(top, 'SHA256SUMS'), files.map((f) => `${createHash('sha256').update(readFileSync(join(top, f))).digest('hex')}  ${f}\n`).join(''));
    const archive = join(root, `${name}.tar.gz`);
    execFileSync('tar', ['-czf', archive, '-C', root, name]);
    return archive;
  }

  // Nothing listens on these ports: the restore stops at the health wait, after writing the data.
  const deadPorts = { MONITORING_HOOKWATCH_PORT: '43917', MONITORING_PROMETHEUS_PORT: '43918', MONITORING_ALERTMANAGER_PORT: '43919', MONITORING_WAIT_TIMEOUT: '1' };

  it('restore without --yes and without a terminal is a usage error that issues no docker compose command', async () => {
    const archive = backupArchive();
    const before = calls().length;
    const result = await run(SCRIPT, ['restore', archive], { env: { ...env, ...deadPorts } });
    assert.equal(result.code, 2, describeRun(result));
    assert.match(result.stderr, /restore replaces .*Docker volumes.*the replaced data is NOT kept.*confirm with --yes/);
    assert.deepEqual(calls().slice(before).filter((c) => !/^(info|compose version)$/.test(c)), [], 'nothing stopped or written');
  });

  it('restore --yes writes the database into its volume private to its owner: directory 0700, file 0600', async () => {
    const archive = backupArchive();
    const before = calls().length;
    const result = await run(SCRIPT, ['restore', '--yes', archive], { env: { ...env, ...deadPorts } });
    assert.match(result.stdout, /\[3\/6\] putting the data back/, describeRun(result));
    const compose = `compose --project-directory ${REPO} -f ${REPO}/docker-compose.yml --env-file ${REPO}/.env`;
    const written = calls().slice(before).find((c) => c.startsWith(`${compose} run --rm --no-deps -T --entrypoint sh hookwatch -c `));
    assert.ok(written, calls().slice(before).join('\n'));
    const script = written.slice(`${compose} run --rm --no-deps -T --entrypoint sh hookwatch -c `.length);
    // What the shell in the container runs: private from the first byte, and the modes set.
    assert.match(script, /^umask 077 && /);
    assert.match(script, /chmod 700 \/app\/data && /);
    assert.match(script, /cat > \/app\/data\/hookwatch\.db && chmod 600 \/app\/data\/hookwatch\.db$/);
  });

  it('refuses an env file outside the repository, which docker-compose.yml would not read', async () => {
    const result = await run(SCRIPT, ['urls'], { env: { ...env, MONITORING_ENV_FILE: join(dir, 'elsewhere.env') } });
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stderr, /compose mode uses .*\/\.env/);
  });
});
