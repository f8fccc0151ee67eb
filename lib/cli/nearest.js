'use strict';
// The word a mistyped one was meant to be: the nearest of the known commands
// or daemon names, for a "did you mean" hint.

/** Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`. */
function distance(a, b) {
  // Optimal string alignment: rows of the previous two prefixes of `a`.
  let before = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j], before[j - 2] + 1);
    }
    before = previous;
    previous = row;
  }
  return previous[b.length];
}

/**
 * The candidate nearest to `word` (the first of equals), or undefined when
 * none is near: within 2 edits (1 for a word of 2 letters or less, a third
 * of the length of a word longer than 6), or starting with it.
 */
function nearest(word, candidates) {
  const limit = word.length <= 2 ? 1 : Math.max(2, Math.floor(word.length / 3));
  let best;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const edits = distance(word, candidate);
    const score = edits <= limit ? edits : word.length > 1 && candidate.startsWith(word) ? limit + 1 : Number.POSITIVE_INFINITY;
    if (score < bestScore) [best, bestScore] = [candidate, score];
  }
  return best;
}

module.exports = { nearest, distance };
