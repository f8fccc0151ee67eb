'use strict';
// Syslog: one message to the local syslog socket, and the count of those lost.

const { invalidType } = require('../shared/errors.js');
const { native, nativeFor } = require('../shared/native.js');
const { checkName, checkOptions, syslogNames, syslogTarget } = require('../shared/options.js');

const SYSLOG_OPTIONS = ['priority', 'facility', 'ident', 'socket'];

/**
 * Sends one message to the local syslog socket. Never throws for a missing or
 * full socket: returns false and counts the message in `syslog.dropped`.
 */
function syslog(message, options) {
  if (typeof message !== 'string') throw invalidType('message', 'of type string', message);
  const own = checkOptions(options, SYSLOG_OPTIONS, 'syslog');
  const priority = own.priority !== undefined ? checkName('options.priority', own.priority, syslogNames().priorities) : 'info';
  const target = syslogTarget(own);
  return nativeFor('syslog').syslogSend(Object.assign(target, { message, priority }));
}

Object.defineProperty(syslog, 'dropped', {
  enumerable: true,
  get: () => (native() === null ? 0 : native().syslogDropped()),
});

module.exports = { syslog };
