// examples/hellohttpd.js, as the README tells people to run it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { alive, freePort, killAndWait, readPid, root, run, tmpdir, waitGone } from './helpers.mjs';

test('hellohttpd: ready at once, answers right after, one instance only, SIGTERM removes the pid file', async () => {
  const pidfile = path.join(tmpdir('hello'), 'hellohttpd.pid');
  const env = { PORT: String(await freePort()), HELLOHTTPD_PIDFILE: pidfile };
  const example = path.join(root, 'examples', 'hellohttpd.js');
  const first = await run([example], { env });
  let pid;
  try {
    assert.equal(first.code, 0, first.stderr);
    pid = readPid(pidfile);
    // No sleep: the launcher exits once the server listens.
    const res = await fetch(`http://127.0.0.1:${env.PORT}/`);
    assert.equal(await res.text(), 'hello\n');
    const second = await run([example], { env });
    assert.equal(second.code, 1);
    assert.match(second.stderr, /hellohttpd is already running/);
    assert.equal(readPid(pidfile), pid);
    process.kill(pid, 'SIGTERM');
    await waitGone(pid);
    assert.equal(fs.existsSync(pidfile), false);
    assert.ok(!alive(pid));
  } finally {
    await killAndWait(pid);
  }
});
