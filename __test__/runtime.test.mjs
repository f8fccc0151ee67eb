// The daemon is the launcher's script run again under the same runtime with
// the launcher's own flags: Node's and Bun's options, Deno's subcommand and
// permissions (which Deno keeps out of process.execArgv).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cmdline, fixture, killAndWait, runtime, startFixture } from './helpers.mjs';

// A flag of each runtime that changes nothing here.
const flag = process.versions.deno !== undefined ? '--no-prompt' : process.versions.bun !== undefined ? '--smol' : '--no-warnings';

test(`the daemon runs under the launcher's runtime with its flags (${runtime.slice(1).concat(flag).join(' ')})`, async () => {
  const r = await startFixture({ nodeArgs: [flag] });
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(cmdline(r.info.pid), [...runtime, flag, fixture('daemon.js')]);
  } finally {
    await killAndWait(r.info?.pid);
  }
});
