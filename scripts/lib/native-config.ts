// Native-mode configuration for scripts/monitoring.sh.
//
// The repository's Prometheus and Alertmanager configurations are written for docker compose: they
// name the other services by their compose host names (hookwatch:3000, alertmanager:9093, ...) and
// Alertmanager reads its templates and secrets under /etc/alertmanager. In native mode every
// component is a local process on 127.0.0.1, so the script runs a copy of each file rewritten by
// this program, and the repository's files stay the single source of truth.
//
// The rewrite is deliberately small and strict; each change is printed (one line per rewrite):
//   prometheus.yml    rule_files and *_file paths    relative to the repository file -> absolute
//                     targets "<service>:<port>"    -> the native address given in --spec (targets)
//                     scrape jobs whose targets are all services with no native binary (grafana,
//                     loki, jaeger, ...)               -> dropped
//                     scrape/evaluation interval   -> --spec scrapeInterval, when given (tests)
//   alertmanager.yml  /etc/alertmanager/templates/  -> the repository's templates directory
//                     /etc/alertmanager/secrets/    -> the secrets directory
//                     smarthost / url host names    -> the native address given in --spec
// A compose host name it has no rule for stops it with an error rather than producing a
// configuration that silently scrapes nothing.
//
// Usage: node --import tsx scripts/lib/native-config.ts <prometheus|alertmanager> <input> <output> <spec-json>
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

export interface NativeSpec {
  /** Compose service names (from docker-compose.yml): any of these as a host name must be mapped. */
  services: string[];
  /** "host:port" as written in the repository's files -> "127.0.0.1:port" of the native process. */
  targets: Record<string, string>;
  /** Services with no native binary: scrape targets on them are dropped. */
  unavailable: string[];
  /** Native replacement of /etc/alertmanager/templates and /etc/alertmanager/secrets. */
  templatesDir?: string;
  secretsDir?: string;
  /** Overrides global scrape_interval, evaluation_interval and scrape_timeout (e.g. "2s" in tests). */
  scrapeInterval?: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (value: Json | undefined): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export class NativeConfigError extends Error {}

/** Applies the rewrites; `notes` receives one human-readable line per change. */
export class Rewriter {
  readonly notes: string[] = [];

  constructor(private readonly spec: NativeSpec, private readonly baseDir: string) {}

  /** "hookwatch:3000" -> "127.0.0.1:13000"; null when the host is an unavailable service. */
  address(value: string, where: string): string | null {
    const mapped = this.spec.targets[value];
    if (mapped !== undefined) {
      if (mapped !== value) this.notes.push(`${where}: ${value} -> ${mapped}`);
      return mapped;
    }
    const host = value.replace(/:\d+$/, '');
    if (this.spec.unavailable.includes(host)) return null;
    // Not a compose service (an external host, or an address already local): left as written.
    if (!this.spec.services.includes(host)) return value;
    throw new NativeConfigError(`${where}: no native-mode address for "${value}" (a docker compose service); add it to the native target map in scripts/lib/native.sh`);
  }

  path(value: string, where: string): string {
    if (isAbsolute(value)) return value;
    const absolute = resolve(this.baseDir, value);
    this.notes.push(`${where}: ${value} -> ${absolute}`);
    return absolute;
  }

  /** /etc/alertmanager/{templates,secrets}/x -> the native directory; other absolute /etc/alertmanager paths are refused. */
  alertmanagerPath(value: string, where: string): string {
    const prefixes: Array<[string, string | undefined]> = [
      ['/etc/alertmanager/templates/', this.spec.templatesDir],
      ['/etc/alertmanager/secrets/', this.spec.secretsDir],
    ];
    for (const [prefix, replacement] of prefixes) {
      if (!value.startsWith(prefix)) continue;
      if (!replacement) throw new NativeConfigError(`${where}: ${value} needs a native directory for ${prefix}`);
      const rewritten = `${replacement.replace(/\/+$/, '')}/${value.slice(prefix.length)}`;
      this.notes.push(`${where}: ${value} -> ${rewritten}`);
      return rewritten;
    }
    if (value.startsWith('/etc/alertmanager/')) {
      throw new NativeConfigError(`${where}: ${value} exists only in the container; no native-mode rule for it`);
    }
    return this.path(value, where);
  }

  /** Rewrites every string under a key ending in _file (credentials, CA files) with `rewrite`. */
  files(node: Json, where: string, rewrite: (value: string, where: string) => string): Json {
    if (Array.isArray(node)) return node.map((item, i) => this.files(item, `${where}[${i}]`, rewrite));
    if (!isObject(node)) return node;
    const out: JsonObject = {};
    for (const [key, value] of Object.entries(node)) {
      out[key] = key.endsWith('_file') && typeof value === 'string'
        ? rewrite(value, `${where}.${key}`)
        : this.files(value, `${where}.${key}`, rewrite);
    }
    return out;
  }

  /** Host names inside smarthost values and URLs. */
  hosts(node: Json, where: string): Json {
    if (Array.isArray(node)) return node.map((item, i) => this.hosts(item, `${where}[${i}]`));
    if (!isObject(node)) return node;
    const out: JsonObject = {};
    for (const [key, value] of Object.entries(node)) {
      const here = `${where}.${key}`;
      if (typeof value === 'string' && (key === 'smtp_smarthost' || key === 'smarthost')) {
        out[key] = this.address(value, here) ?? value;
      } else if (typeof value === 'string' && (key === 'url' || key === 'api_url') && /^https?:\/\//.test(value)) {
        const url = new URL(value);
        const mapped = this.address(url.host, here);
        out[key] = mapped === null || mapped === url.host ? value : value.replace(url.host, mapped);
      } else {
        out[key] = this.hosts(value, here);
      }
    }
    return out;
  }
}

export function rewritePrometheus(config: JsonObject, rewriter: Rewriter, spec: NativeSpec): JsonObject {
  const out = rewriter.files(config, 'prometheus', (v, w) => rewriter.path(v, w)) as JsonObject;

  const ruleFiles = out.rule_files;
  if (Array.isArray(ruleFiles)) {
    out.rule_files = ruleFiles.map((file, i) => (typeof file === 'string' ? rewriter.path(file, `rule_files[${i}]`) : file));
  }

  if (spec.scrapeInterval) {
    const global = isObject(out.global) ? out.global : {};
    for (const key of ['scrape_interval', 'evaluation_interval', 'scrape_timeout']) {
      rewriter.notes.push(`global.${key}: ${String(global[key] ?? '(default)')} -> ${spec.scrapeInterval}`);
      global[key] = spec.scrapeInterval;
    }
    out.global = global;
  }

  const mapTargets = (staticConfigs: Json, where: string): Json[] => {
    if (!Array.isArray(staticConfigs)) return [];
    const kept: Json[] = [];
    staticConfigs.forEach((group, g) => {
      if (!isObject(group) || !Array.isArray(group.targets)) return;
      const targets = group.targets.flatMap((target, t) => {
        if (typeof target !== 'string') return [];
        const mapped = rewriter.address(target, `${where}.static_configs[${g}].targets[${t}]`);
        return mapped === null ? [] : [mapped];
      });
      if (targets.length) kept.push({ ...group, targets });
    });
    return kept;
  };

  const alerting = out.alerting;
  if (isObject(alerting) && Array.isArray(alerting.alertmanagers)) {
    alerting.alertmanagers = alerting.alertmanagers.map((am, i) => {
      if (!isObject(am)) return am;
      return { ...am, static_configs: mapTargets(am.static_configs ?? null, `alerting.alertmanagers[${i}]`) };
    });
  }

  if (Array.isArray(out.scrape_configs)) {
    out.scrape_configs = out.scrape_configs.filter((job, i) => {
      if (!isObject(job)) return true;
      const name = typeof job.job_name === 'string' ? job.job_name : `#${i}`;
      const discovery = Object.keys(job).filter((key) => key.endsWith('_sd_configs'));
      if (discovery.length) {
        throw new NativeConfigError(`scrape job ${name}: ${discovery.join(', ')} cannot be rewritten for native mode (only static_configs)`);
      }
      const before = Array.isArray(job.static_configs) ? job.static_configs.flatMap((g) => (isObject(g) && Array.isArray(g.targets) ? g.targets : [])) : [];
      const kept = mapTargets(job.static_configs ?? null, `scrape job ${name}`);
      if (!kept.length) {
        rewriter.notes.push(`scrape job ${name} (${before.join(', ')}): dropped, not available in native mode`);
        return false;
      }
      job.static_configs = kept;
      return true;
    });
  }
  return out;
}

export function rewriteAlertmanager(config: JsonObject, rewriter: Rewriter): JsonObject {
  const out = rewriter.files(config, 'alertmanager', (v, w) => rewriter.alertmanagerPath(v, w)) as JsonObject;
  if (Array.isArray(out.templates)) {
    out.templates = out.templates.map((t, i) => (typeof t === 'string' ? rewriter.alertmanagerPath(t, `templates[${i}]`) : t));
  }
  return rewriter.hosts(out, 'alertmanager') as JsonObject;
}

function main(argv: string[]): void {
  const [kind, input, output, specJson] = argv;
  if ((kind !== 'prometheus' && kind !== 'alertmanager') || !input || !output || !specJson) {
    process.stderr.write('usage: native-config.ts <prometheus|alertmanager> <input> <output> <spec-json>\n');
    process.exit(2);
  }
  const spec = JSON.parse(specJson) as NativeSpec;
  const config = parse(readFileSync(input, 'utf8')) as Json;
  if (!isObject(config)) throw new NativeConfigError(`${input}: not a YAML mapping`);
  const rewriter = new Rewriter(spec, dirname(resolve(input)));
  const rewritten = kind === 'prometheus' ? rewritePrometheus(config, rewriter, spec) : rewriteAlertmanager(config, rewriter);
  const header = [
    `# GENERATED by scripts/monitoring.sh (native mode) from ${resolve(input)}; do not edit.`,
    '# Edit the repository file and run `scripts/monitoring.sh update`. Rewrites applied:',
    ...(rewriter.notes.length ? rewriter.notes.map((note) => `#   ${note}`) : ['#   (none)']),
    '',
  ].join('\n');
  mkdirSync(dirname(output), { recursive: true });
  // Written next to its destination and renamed, so a reload never reads half a file.
  writeFileSync(`${output}.tmp`, header + stringify(rewritten, { lineWidth: 0 }));
  renameSync(`${output}.tmp`, output);
  for (const note of rewriter.notes) process.stdout.write(`${note}\n`);
}

// fileURLToPath, not URL.pathname: the pathname keeps percent-encoding (a space is %20), so in a
// checkout whose path has a space the comparison failed and nothing was written, silently.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`native-config: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
