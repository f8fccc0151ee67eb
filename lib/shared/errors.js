'use strict';
// Errors in Node's own shapes: TypeError/RangeError with `code` for bad
// arguments, Error with `code`, `errno`, `syscall`, `path` for system errors.

/** How Node's own argument errors show a received value. */
function describeValue(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'symbol') return `type symbol (${String(value)})`;
  if (typeof value === 'object') {
    if (Array.isArray(value)) return 'an instance of Array';
    const proto = Object.getPrototypeOf(value);
    const name = proto === null ? undefined : Object.hasOwn(proto, 'constructor') ? proto.constructor?.name : undefined;
    return `an instance of ${name ?? 'Object'}`;
  }
  const shown = typeof value === 'string' ? `'${value.length > 28 ? `${value.slice(0, 25)}...` : value}'` : String(value);
  return `type ${typeof value} (${shown})`;
}

function codedError(Class, code, message) {
  const error = new Class(message);
  error.code = code;
  return error;
}

function invalidType(name, expected, value) {
  return codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" argument must be ${expected}. Received ${describeValue(value)}`);
}

function invalidValue(name, reason, value) {
  return codedError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument '${name}' ${reason}. Received ${describeValue(value)}`);
}

function outOfRange(name, range, value) {
  return codedError(RangeError, 'ERR_OUT_OF_RANGE', `The value of "${name}" is out of range. It must be ${range}. Received ${value}`);
}

/** What this module cannot do here (Windows, a worker thread, stdin as the script). */
function unsupported(code, message, Class = Error) {
  return codedError(Class, code, `daemon: ${message}`);
}

/** A failed system call as Node's fs reports one: `ESRCH: no process holds the lock, kill '/run/x.pid'`. */
function systemError(code, text, syscall, path) {
  const error = codedError(Error, code, `${code}: ${text}, ${syscall} '${path}'`);
  // node:os loaded here: it costs 0.1 ms at every require('daemon').
  return Object.assign(error, { errno: -require('node:os').constants.errno[code], syscall, path });
}

module.exports = { describeValue, codedError, invalidType, invalidValue, outOfRange, unsupported, systemError };
