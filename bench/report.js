// Turns the bench's samples into the table, the target checks, the SVG bar
// chart and the Markdown files. No dependencies.
'use strict';

function summary(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return null;
  const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return { median, min: sorted[0], max: sorted[n - 1], n };
}

const fixed = (v, digits) => (v === null || v === undefined ? '–' : v.toFixed(digits));
const spread = (s, digits, scale = 1) =>
  s ? `${fixed(s.median / scale, digits)} (${fixed(s.min / scale, digits)}–${fixed(s.max / scale, digits)})` : '–';
const ratio = (s, ref) => (s && ref ? `${(s.median / ref.median).toFixed(2)}` : '–');
const percent = (share) => (share === null ? '–' : `${(share * 100).toFixed(0)}%`);

/**
 * One row per library: { name, firstAnswer, launcher, requireMs, rss } as
 * summaries, promptToReady as a share (or null), plus notes.
 */
function tableRows(rows) {
  const ref = rows.find((r) => r.isThis);
  const header = [
    'library',
    'first answer, ms',
    '× daemon',
    'prompt-to-ready',
    'launcher, ms',
    '× daemon',
    'require(), ms',
    '× daemon',
    'RSS 1 s after ready, MB',
    '× daemon',
  ];
  const body = rows.map((r) => [
    r.name,
    spread(r.firstAnswer, 1),
    ratio(r.firstAnswer, ref.firstAnswer),
    percent(r.promptToReady),
    r.launcher ? spread(r.launcher, 1) : '– (never returns)',
    ratio(r.launcher, ref.launcher),
    spread(r.requireMs, 2),
    ratio(r.requireMs, ref.requireMs),
    spread(r.rss, 1, 1024 * 1024),
    ratio(r.rss, ref.rss),
  ]);
  return { header, body };
}

function textTable({ header, body }) {
  const rows = [header, ...body];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function markdownTable({ header, body }) {
  const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
  return [header, align, ...body].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** Time to first answer, at most: × the fastest daemonizing peer's, × the foreground floor's (issue 21). */
const FIRST_ANSWER_VS_PEER = 1.0;
const FIRST_ANSWER_VS_FLOOR = 2.05;

/** The targets, each with the figure, the limit and whether it holds. */
function targets(rows, me = rows.find((r) => r.isThis)) {
  const peers = rows.filter((r) => r.isPeer && r.firstAnswer);
  const floor = rows.find((r) => r.isFloor);
  const fastest = peers.reduce((best, r) => (!best || r.firstAnswer.median < best.firstAnswer.median ? r : best), null);
  const checks = [];
  const add = (what, figure, limit, ok) => checks.push({ what, figure, limit, ok });
  if (fastest) {
    const x = me.firstAnswer.median / fastest.firstAnswer.median;
    add(
      `first answer vs the fastest daemonizing peer (${fastest.name})`,
      `${x.toFixed(3)} ×`,
      `≤ ${FIRST_ANSWER_VS_PEER.toFixed(2)} ×`,
      x <= FIRST_ANSWER_VS_PEER,
    );
  }
  if (floor) {
    const x = me.firstAnswer.median / floor.firstAnswer.median;
    add('first answer vs the foreground floor', `${x.toFixed(2)} ×`, `≤ ${FIRST_ANSWER_VS_FLOOR} ×`, x <= FIRST_ANSWER_VS_FLOOR);
  }
  add('prompt-to-ready', percent(me.promptToReady), '100%', me.promptToReady === 1);
  add('require() (median, fresh process)', `${me.requireMs.median.toFixed(2)} ms`, '< 5 ms', me.requireMs.median < 5);
  if (floor?.rss) {
    const x = me.rss.median / floor.rss.median;
    add('daemon RSS vs the foreground floor', `${x.toFixed(3)} × (${((x - 1) * 100).toFixed(1)}%)`, '≤ 1.05 ×', x <= 1.05);
  }
  return checks;
}

function targetsText(checks) {
  return checks.map((c) => `${c.ok ? 'MET   ' : 'MISSED'}  ${c.what}: ${c.figure} (target ${c.limit})`).join('\n');
}

function targetsMarkdown(checks) {
  const rows = checks.map((c) => `| ${c.what} | ${c.figure} | ${c.limit} | ${c.ok ? 'met' : '**missed**'} |`);
  return ['| target | figure | limit | |', '| --- | ---: | ---: | --- |', ...rows].join('\n');
}

const escapeXml = (s) => String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);

/** A horizontal bar chart of the median time to first answer, with min–max whiskers. */
function svgChart(rows, { title, subtitle }) {
  const charted = rows.filter((r) => r.firstAnswer);
  const floor = charted.find((r) => r.isFloor);
  const width = 720;
  const labelW = 210;
  const valueW = 150;
  const top = 58;
  const barH = 26;
  const gap = 14;
  const plotW = width - labelW - valueW - 20;
  const height = top + charted.length * (barH + gap) + 34;
  const limit = floor ? floor.firstAnswer.median * FIRST_ANSWER_VS_FLOOR : 0;
  // The axis ends a little past the slowest median (or the target's line over the floor):
  // a whisker that reaches further (an outlier run) is cut and ends in an arrow.
  const maxValue = Math.max(...charted.map((r) => r.firstAnswer.median), limit) * 1.3;
  const x = (v) => labelW + (Math.min(v, maxValue) / maxValue) * plotW;
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="13">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="12" y="22" font-size="15" font-weight="bold" fill="#222">${escapeXml(title)}</text>`);
  out.push(`<text x="12" y="41" fill="#555">${escapeXml(subtitle)}</text>`);
  // Grid: a tick every 20 or 50 ms.
  const step = maxValue > 300 ? 100 : maxValue > 150 ? 25 : 20;
  const axisY = top + charted.length * (barH + gap);
  for (let v = 0; v <= maxValue; v += step) {
    out.push(`<line x1="${x(v).toFixed(1)}" y1="${top - 6}" x2="${x(v).toFixed(1)}" y2="${axisY}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${x(v).toFixed(1)}" y="${axisY + 16}" fill="#777" font-size="11" text-anchor="middle">${v} ms</text>`);
  }
  if (limit) {
    out.push(
      `<line x1="${x(limit).toFixed(1)}" y1="${top - 6}" x2="${x(limit).toFixed(1)}" y2="${axisY}" stroke="#c0392b" stroke-dasharray="4 3"/>`,
    );
    out.push(`<text x="${(x(limit) + 4).toFixed(1)}" y="${top - 8}" fill="#c0392b" font-size="11">${FIRST_ANSWER_VS_FLOOR} × floor</text>`);
  }
  charted.forEach((r, i) => {
    const y = top + i * (barH + gap);
    const s = r.firstAnswer;
    const fill = r.isThis ? '#2b6cb0' : r.isCandidate ? '#90cdf4' : r.isFloor ? '#a0aec0' : '#718096';
    out.push(
      `<text x="${labelW - 10}" y="${y + barH / 2 + 5}" text-anchor="end" fill="#222"${r.isThis ? ' font-weight="bold"' : ''}>${escapeXml(r.name)}</text>`,
    );
    out.push(`<rect x="${labelW}" y="${y}" width="${(x(s.median) - labelW).toFixed(1)}" height="${barH}" fill="${fill}"/>`);
    const wy = y + barH / 2;
    out.push(`<line x1="${x(s.min).toFixed(1)}" y1="${wy}" x2="${x(s.max).toFixed(1)}" y2="${wy}" stroke="#222" stroke-width="1.2"/>`);
    for (const v of [s.min, s.max]) {
      if (v > maxValue) {
        const tip = x(v);
        out.push(
          `<path d="M${(tip - 7).toFixed(1)},${wy - 5} L${tip.toFixed(1)},${wy} L${(tip - 7).toFixed(1)},${wy + 5}" fill="none" stroke="#222" stroke-width="1.2"/>`,
        );
      } else {
        out.push(`<line x1="${x(v).toFixed(1)}" y1="${wy - 6}" x2="${x(v).toFixed(1)}" y2="${wy + 6}" stroke="#222" stroke-width="1.2"/>`);
      }
    }
    out.push(
      `<text x="${width - valueW}" y="${y + barH / 2 + 5}" fill="#222">${s.median.toFixed(1)} ms (${s.min.toFixed(0)}–${s.max.toFixed(0)})</text>`,
    );
  });
  out.push(
    `<text x="${labelW}" y="${height - 4}" fill="#777" font-size="11">bar: median · whisker: min–max (an arrow: beyond the axis) · shorter is better</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

module.exports = { summary, tableRows, textTable, markdownTable, targets, targetsText, targetsMarkdown, svgChart };
