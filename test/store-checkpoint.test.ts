import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Checkpointer } from '../src/store/checkpointer.js';
import { AUTO_CHECKPOINT_PAGES, openDatabase } from '../src/store/db.js';
import { tempDir, waitFor } from './helpers/service.js';

/** Each thread of this process by id, with its niceness (Linux keeps one per thread: field 19 of its stat). */
function threadNiceness(): Map<string, number> {
  const threads = new Map<string, number>();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      threads.set(tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return threads;
}

describe('the background checkpointer', () => {
  it('copies the WAL into the database file from its own thread, 10 nicer than the process on Linux', async () => {
    const file = path.join(tempDir(), 'checkpoint.db');
    const db = openDatabase({ file, synchronous: 'normal' });
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 500; i++) insert.run(Buffer.alloc(2000, i % 256));
    })();
    // Far below AUTO_CHECKPOINT_PAGES, so only the thread can move these pages.
    assert.ok(fs.statSync(`${file}-wal`).size > 500 * 2000, 'the rows wait in the WAL');
    assert.ok(fs.statSync(file).size < 100_000, 'and not yet in the database file');
    const linux = process.platform === 'linux';
    const before = linux ? threadNiceness() : new Map<string, number>();

    const checkpointer = new Checkpointer(file, 100);
    try {
      await waitFor('a checkpoint to copy the rows into the database file', () => fs.statSync(file).size > 500 * 2000, 10_000);
      assert.equal(checkpointer.error, null);
      if (linux) {
        const main = os.getPriority();
        const expected = Math.min(19, main + 10);
        const added = await waitFor('the checkpoint thread', () => {
          const fresh = [...threadNiceness()].filter(([tid]) => !before.has(tid));
          return fresh.length > 0 ? fresh : undefined;
        }, 10_000);
        // The worker thread itself (V8 and libuv start no threads for it): one new thread, reniced.
        assert.deepEqual(added.map(([, nice]) => nice), [expected], `one new thread at nice ${expected} (the process is at ${main})`);
        assert.ok(expected > main || main === 19, 'below the process priority');
      }
    } finally {
      await checkpointer.stop();
      db.close();
    }
  });

  it('opens the database so that a WAL grown past its usual size is cut back when it starts over', () => {
    const db = openDatabase({ file: path.join(tempDir(), 'limit.db'), synchronous: 'normal' });
    try {
      assert.equal(db.pragma('journal_size_limit', { simple: true }), 200 * 1024 * 1024);
      assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), AUTO_CHECKPOINT_PAGES);
    } finally {
      db.close();
    }
  });
});
