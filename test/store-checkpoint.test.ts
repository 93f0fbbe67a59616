import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Checkpointer } from '../src/store/checkpointer.js';
import { openDatabase } from '../src/store/db.js';
import { tempDir, waitFor } from './helpers/service.js';

/** The niceness of each thread of this process (Linux keeps one per thread; field 19 of its stat). */
function threadNiceness(): number[] {
  return fs.readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
    } catch {
      return []; // the thread ended meanwhile
    }
  });
}

describe('the background checkpointer', () => {
  it('copies the WAL into the database file from its own thread, which runs at nice 10', async () => {
    const file = path.join(tempDir(), 'checkpoint.db');
    const db = openDatabase({ file, synchronous: 'normal' });
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 500; i++) insert.run(Buffer.alloc(2000, i % 256));
    })();
    // Far below the safety net (AUTO_CHECKPOINT_PAGES), so only the thread can move these pages.
    assert.ok(fs.statSync(`${file}-wal`).size > 500 * 2000, 'the rows wait in the WAL');
    assert.ok(fs.statSync(file).size < 100_000, 'and not yet in the database file');
    const niceBefore = threadNiceness().filter((nice) => nice === 10).length;

    const checkpointer = new Checkpointer(file, 100);
    try {
      await waitFor('the thread to run at nice 10', () => threadNiceness().filter((nice) => nice === 10).length === niceBefore + 1, 10_000);
      await waitFor('a checkpoint to copy the rows into the database file', () => fs.statSync(file).size > 500 * 2000, 10_000);
      assert.equal(checkpointer.error, null);
    } finally {
      await checkpointer.stop();
      db.close();
    }
    assert.equal(threadNiceness().filter((nice) => nice === 10).length, niceBefore, 'the thread has ended');
  });
});
