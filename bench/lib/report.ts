import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './servers.js';

/** A titled table: header row and body rows, rendered as Markdown and kept as JSON. */
export interface Table {
  title: string;
  header: string[];
  rows: (string | number)[][];
  note?: string;
}

export function markdownTable(table: Table): string {
  const lines = [`### ${table.title}`, '', `| ${table.header.join(' | ')} |`, `|${table.header.map(() => '---').join('|')}|`];
  for (const row of table.rows) lines.push(`| ${row.join(' | ')} |`);
  if (table.note) lines.push('', table.note);
  return lines.join('\n');
}

/** Plain-text table for the terminal. */
export function textTable(table: Table): string {
  const cells = [table.header, ...table.rows.map((row) => row.map(String))];
  const widths = table.header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ');
  return [`== ${table.title}`, line(table.header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line), ...(table.note ? [table.note] : [])].join('\n');
}

export function writeResults(name: string, data: unknown, tables: Table[], header: string): { json: string; markdown: string } {
  const dir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const json = path.join(dir, `${name}.json`);
  const markdown = path.join(dir, `${name}.md`);
  fs.writeFileSync(json, `${JSON.stringify(data, null, 2)}\n`);
  fs.writeFileSync(markdown, `${header}\n\n${tables.map(markdownTable).join('\n\n')}\n`);
  fs.copyFileSync(json, path.join(dir, 'latest.json'));
  fs.copyFileSync(markdown, path.join(dir, 'latest.md'));
  return { json, markdown };
}
