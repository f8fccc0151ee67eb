'use strict';
// `daemon top`: every daemon of the state directory on one screen, a row per
// service and one per instance (pid, status, CPU%, memory, restarts and the
// last reason, uptime, listening addresses), drawn anew every second on the
// terminal's alternate screen until `q`, and the terminal restored however it
// ends (q, a signal, an error); `--once` prints one frame. The rows are
// report.js's describe(), with CPU% measured between two looks.

const { procStat } = require('../operator/control.js');
const { supervisorFiles } = require('../operator/state-dir.js');
const report = require('./report.js');
const state = require('./state.js');

/** How often the screen is drawn, and what CPU% is measured over. */
const EVERY_MS = 1000;

/** The orders of the services (the instances stay in slot order under theirs); a stable sort keeps ties by name. */
const SORTS = Object.freeze({
  __proto__: null,
  cpu: (a, b) => (b.row.cpu ?? -1) - (a.row.cpu ?? -1),
  memory: (a, b) => (b.row.memory ?? -1) - (a.row.memory ?? -1),
  name: () => 0,
});
const SORT_TITLES = Object.freeze({ __proto__: null, cpu: 'CPU%', memory: 'memory', name: 'name' });
/** The keys of the live view. */
const SORT_KEYS = Object.freeze({ __proto__: null, c: 'cpu', m: 'memory', n: 'name' });

/**
 * The columns. At 80 columns: 64 with their spaces, LISTEN gets the rest (16:
 * `127.0.0.1:65535`); a wider terminal gives NAME up to half of what it adds,
 * as much as the longest name needs, and the rest to LISTEN.
 */
const COLUMNS = Object.freeze([
  { title: 'NAME', width: 12 },
  { title: 'PID', width: 7 },
  { title: 'STATUS', width: 11 },
  { title: 'CPU%', width: 5, right: true },
  { title: 'MEMORY', width: 7, right: true },
  { title: 'RESTARTS', width: 9 },
  { title: 'UPTIME', width: 6 },
  { title: 'LISTEN' },
]);
const NARROWEST = 80;

// The terminal: the alternate screen and a hidden cursor while it runs; home, and erase to the ends.
const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?25h\x1b[?1049l';
const HOME = '\x1b[H';
const LINE_END = '\x1b[K';
const SCREEN_END = '\x1b[J';
/** What a signal that ends the view makes its exit status (128 + its number). */
const ENDING_SIGNALS = Object.freeze({ SIGINT: 130, SIGTERM: 143, SIGHUP: 129 });
const CTRL_C = '\x03';

/** CPU% between two looks: each process's CPU time since the last look (since it started, at its first). */
class CpuSampler {
  constructor() {
    this.last = new Map();
    this.next = new Map();
    this.at = 0;
  }

  /** Starts a look: what the last one saw is what this one measures from. */
  look() {
    this.last = this.next;
    this.next = new Map();
    this.at = report.clock();
  }

  /** `pid`'s CPU% since the last look (null once it is gone). */
  percent(pid) {
    const stat = procStat(pid);
    if (stat === null) return null;
    this.next.set(pid, { start: stat.start, cpu: stat.cpu, at: this.at });
    return report.cpuPercent(stat, this.at, this.last.get(pid) ?? null);
  }
}

/**
 * The network tables of /proc the listening addresses come from, read anew
 * every 10 s, and (at most every 2 s) once a process not seen at the last
 * read runs: the kernel writes out every socket of the host for them, a
 * quarter of a second for 50,000.
 */
class NetTables {
  constructor() {
    this.tables = new Map();
    this.readAt = Number.NEGATIVE_INFINITY;
    this.seen = new Set();
  }

  /** The tables (filled as listeningOf() needs them) to use for a look at the processes `pids`. */
  for(pids) {
    const now = Date.now();
    const fresh = pids.some((pid) => !this.seen.has(pid));
    if (now - this.readAt >= 10000 || (fresh && now - this.readAt >= 2000)) {
      Object.assign(this, { tables: new Map(), readAt: now, seen: new Set(pids) });
    }
    return this.tables;
  }
}

/**
 * Every daemon of the state directory, as describe() has it (CPU% from
 * `sampler`), with `listen`, the addresses its processes listen on (from
 * /proc, `net`'s tables; the recorded --listen flags where /proc shows another
 * user's process to no one but root, and where there is no /proc), and `uptime`, the service's (a
 * supervisor's own, with the generations' in its instances).
 */
function look(sampler, net) {
  sampler.look();
  const st = state.openState();
  let records;
  try {
    records = st.records();
  } finally {
    st.close();
  }
  const services = records.map((record) => {
    const row = report.describe(record.name, record.pidfile, record, (pid) => sampler.percent(pid));
    const supervised = row.instances !== undefined;
    const instances = row.running && supervised ? row.instances : [];
    const pids = row.running ? [row.pid, ...instances.map((instance) => instance.pid)].filter((pid) => pid !== null) : [];
    const uptime = supervised && row.running ? report.uptimeOf(row.pid) : row.uptime;
    return { record, row, instances, pids, uptime };
  });
  const tables = net.for(services.flatMap((service) => service.pids));
  return services.map(({ record, pids, ...service }) => {
    const found = pids.length > 0 ? report.listeningOf(pids, tables) : [];
    // Its supervisor's control channel is the supervisor's own socket, not the service's.
    const control = supervisorFiles(record.pidfile).control;
    const listen = found === null ? (record.flags?.listen ?? []) : found.filter((address) => address !== control);
    return { ...service, listen };
  });
}

/** `3 memory`: restarts, and why the last one was (null: not supervised). */
function restartsCell(count, lastRestart) {
  if (count === null) return '-';
  return count > 0 && lastRestart ? `${count} ${lastRestart.reason}` : String(count);
}

/** `text` within `width` columns, cut with `~`. */
const cut = (text, width) => (text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}~`);

/** The widths of the columns but LISTEN, for `services` on `width` columns. */
function widthsFor(services, width) {
  const longest = Math.max(0, ...services.map((service) => service.row.name.length));
  const name = Math.min(Math.max(COLUMNS[0].width, longest), COLUMNS[0].width + Math.floor(Math.max(0, width - NARROWEST) / 2));
  return [name, ...COLUMNS.slice(1, -1).map((column) => column.width)];
}

/** One line of cells, the columns `widths` wide, LISTEN taking what they leave of `width`. */
function line(cells, widths, width) {
  const fixed = widths.map((w, i) => (COLUMNS[i].right ? cut(cells[i], w).padStart(w) : cut(cells[i], w).padEnd(w)));
  const used = fixed.join(' ').length + 1;
  return cut(`${fixed.join(' ')} ${cut(cells[widths.length], Math.max(0, width - used))}`, width).trimEnd();
}

/** A service's row and, when supervised, one per instance. */
function serviceLines({ row, instances, listen, uptime }, widths, width) {
  const { percent, size, duration } = report;
  const status = `${row.status}${row.running ? report.readyCount(row) : ''}`;
  const lastRestart = instances.length === 1 ? instances[0].lastRestart : null;
  const service = [
    row.name,
    row.pid === null ? '-' : String(row.pid),
    status,
    percent(row.cpu),
    size(row.memory),
    restartsCell(row.restarts, lastRestart),
    duration(uptime),
    listen.join(' '),
  ];
  const each = instances.map((instance) => [
    `  ${instance.slot}`,
    instance.pid === null ? '-' : String(instance.pid),
    report.instanceWord(instance),
    percent(instance.cpu),
    size(instance.memory),
    restartsCell(instance.restarts, instance.lastRestart),
    duration(instance.uptime),
    '',
  ]);
  return [service, ...each].map((cells) => line(cells, widths, width));
}

/** A frame's lines: a title, with `keys` a line naming the keys, the columns' titles and the rows, within `width` and `height` (null: all). */
function frame(services, { sort, width, height = null, keys = null }) {
  const count = `${services.length} daemon${services.length === 1 ? '' : 's'}`;
  const time = new Date().toTimeString().slice(0, 8);
  const head = [cut(`daemon top  ${time}  ${count} in ${state.stateDir()}, by ${SORT_TITLES[sort]}`, width)];
  if (keys !== null) head.push(cut(keys, width));
  const widths = widthsFor(services, width);
  head.push(
    line(
      COLUMNS.map(({ title }) => title),
      widths,
      width,
    ),
  );
  const rows = [...services].sort(SORTS[sort]).flatMap((service) => serviceLines(service, widths, width));
  if (services.length === 0) rows.push(`no daemons in ${state.stateDir()}`);
  const room = height === null ? rows.length : Math.max(0, height - head.length);
  if (rows.length <= room) return [...head, ...rows];
  const shown = rows.slice(0, Math.max(0, room - 1));
  return [...head, ...shown, cut(`... ${rows.length - shown.length} more rows (a taller terminal shows them)`, width)];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `--once`: one frame, its CPU% measured over one second. */
async function once(sort) {
  const sampler = new CpuSampler();
  const net = new NetTables();
  look(sampler, net);
  await sleep(EVERY_MS);
  const width = process.stdout.isTTY ? process.stdout.columns : NARROWEST;
  process.stdout.write(`${frame(look(sampler, net), { sort, width }).join('\n')}\n`);
  return 0;
}

/**
 * The live view, until `q` (exit 0), Ctrl-C or a signal (128 + its number)
 * or an error (thrown, once the terminal is restored).
 */
function live(initialSort) {
  const { stdin, stdout } = process;
  if (!stdout.isTTY) throw new Error('daemon top draws on a terminal, and its stdout is none: daemon top --once prints one frame');
  const keyboard = stdin.isTTY === true;
  const sampler = new CpuSampler();
  const net = new NetTables();
  let sort = initialSort;
  let timer = null;
  let restored = false;
  const keys = keyboard ? 'q quits; c, m, n sort by CPU%, memory, name' : 'Ctrl-C quits (stdin is no terminal: no keys)';

  const restore = () => {
    if (restored) return;
    restored = true;
    if (keyboard) {
      stdin.setRawMode(false);
      stdin.pause();
    }
    stdout.write(LEAVE);
  };

  return new Promise((resolve, reject) => {
    const listeners = [];
    const on = (emitter, event, listener) => {
      emitter.on(event, listener);
      listeners.push([emitter, event, listener]);
    };
    const end = (code, error) => {
      if (restored) return;
      clearTimeout(timer);
      for (const [emitter, event, listener] of listeners) emitter.removeListener(event, listener);
      try {
        restore();
      } finally {
        if (error === undefined) resolve(code);
        else reject(error);
      }
    };
    let services = [];
    // Draws the last look (again, on a key or a resize: CPU% stays measured over a whole second).
    const draw = () => {
      const lines = frame(services, { sort, keys, width: stdout.columns, height: stdout.rows });
      stdout.write(`${HOME}${lines.map((text) => `${text}${LINE_END}`).join('\r\n')}${SCREEN_END}`);
    };
    const tick = () => {
      try {
        services = look(sampler, net);
        draw();
      } catch (error) {
        end(1, error);
      }
      if (!restored) timer = setTimeout(tick, EVERY_MS);
    };
    // An exit by any other way (an exception elsewhere) still leaves the terminal as it was.
    on(process, 'exit', restore);
    for (const [name, code] of Object.entries(ENDING_SIGNALS)) on(process, name, () => end(code));
    on(stdout, 'resize', draw);
    on(stdout, 'error', (error) => end(1, error));
    if (keyboard) {
      on(stdin, 'data', (data) => {
        for (const key of String(data)) {
          if (key === 'q' || key === 'Q') return end(0);
          if (key === CTRL_C) return end(ENDING_SIGNALS.SIGINT);
          if (SORT_KEYS[key.toLowerCase()] !== undefined) {
            sort = SORT_KEYS[key.toLowerCase()];
            draw();
          }
        }
      });
      stdin.setRawMode(true);
      stdin.resume();
    }
    stdout.write(ENTER);
    tick();
  });
}

/** `daemon top [--once] [--sort cpu|memory|name]`. */
function topCommand(parsed) {
  const sort = parsed.flags.sort ?? 'cpu';
  return parsed.flags.once ? once(sort) : live(sort);
}

module.exports = { top: topCommand };
