'use strict';
// The compiled addon, loaded on first use (null on Windows, which has no Unix
// daemons): a launcher's require('daemon') that finds no readiness pipe and
// no passed sockets has no use for it yet, and loading it costs a millisecond.

const { unsupported } = require('./errors.js');

let addon;
const native =
  process.platform === 'win32'
    ? null
    : new Proxy(Object.create(null), {
        get: (_, name) => {
          addon ??= require('../native.js').load();
          return addon[name];
        },
      });

/** The addon, or a clear error where `fn` cannot work. */
function nativeFor(fn) {
  if (native === null) throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', `${fn}() is not supported on Windows`);
  return native;
}

module.exports = { native, nativeFor };
