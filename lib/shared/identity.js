'use strict';
// Whom the process runs as and what it sees as `/`: the user database lookup,
// dropPrivileges() and chroot().

const { native, nativeFor } = require('./native.js');
const { bare, checkId, checkOptions, checkPath, optionalId } = require('./options.js');

/** Reads the user database (in Rust): throws ERR_UNKNOWN_CREDENTIAL for an unknown name or id. */
function lookupAccount(user, group) {
  if (user === undefined && group === undefined) return undefined;
  // Prototype-less: what the addon returns without a field must not inherit one.
  return bare(native().lookupAccount(user, group));
}

/** HOME, USER and LOGNAME of the account a daemon runs as; none for a group alone. */
function accountEnv(account) {
  if (account?.name == null) return bare({});
  return bare({ HOME: account.home, USER: account.name, LOGNAME: account.name });
}

/** Switches this running process (every thread) to `account`, and its HOME, USER, LOGNAME. */
function become(account) {
  native().dropPrivileges(account);
  Object.assign(process.env, accountEnv(account));
}

/**
 * Becomes `user` (with its primary group, or `group`) and its supplementary
 * groups: setgroups, setgid, setuid, in that order, each checked, in every
 * thread. For a daemon that needs root to start (ports below 1024).
 */
function dropPrivileges(user, group) {
  const [userId, groupId] = [checkId('user', user), optionalId('group', group)];
  nativeFor('dropPrivileges');
  become(lookupAccount(userId, groupId));
}

/**
 * chroot(dir), then chdir('/'). Modules not loaded yet must exist inside
 * `dir`. With `user` (and `group`), then drops to that user, looked up before
 * the chroot: the user database inside `dir` is usually missing.
 */
function chroot(dir, options) {
  const absolute = checkPath('dir', dir);
  const own = checkOptions(options, ['user', 'group'], 'chroot');
  const [userId, groupId] = [optionalId('options.user', own.user), optionalId('options.group', own.group)];
  nativeFor('chroot');
  const account = lookupAccount(userId, groupId);
  native().changeRoot(absolute);
  // Node caches the working directory; only its own chdir() renews the cache.
  process.chdir('/');
  if (account) become(account);
}

module.exports = { lookupAccount, accountEnv, dropPrivileges, chroot };
