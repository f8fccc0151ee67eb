'use strict';
// The module's own signal listeners, told apart from the script's: each of
// the module's steps back when the script handles the signal itself.

const own = new WeakSet();

/** Adds `listener` for `signal` as the module's own (`first`: before the script's). */
function addOwnListener(signal, listener, first = false) {
  own.add(listener);
  if (first) process.prependListener(signal, listener);
  else process.on(signal, listener);
}

/** Whether the script listens for `signal` itself. */
function scriptListens(signal) {
  return process.listeners(signal).some((listener) => !own.has(listener));
}

module.exports = { addOwnListener, scriptListens };
