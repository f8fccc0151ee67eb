// The documentation's shape: README.md stays a front door (at most 16 KiB),
// and every relative link in README.md and docs/*.md names a file that
// exists, and a heading that exists when it names one. No process is started.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..', '..');
const README_LIMIT = 16 * 1024;

/** README.md and every docs/*.md, as absolute paths. */
function documents() {
  const docs = path.join(root, 'docs');
  const inDocs = fs.existsSync(docs) ? fs.readdirSync(docs).filter((name) => name.endsWith('.md')) : [];
  return [path.join(root, 'README.md'), ...inDocs.map((name) => path.join(docs, name))];
}

/** The text without fenced code blocks and inline code, where brackets are not links. */
function prose(markdown) {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** Targets of `[text](target)` and `![alt](target)` links. */
function linkTargets(markdown) {
  return [...prose(markdown).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((match) => match[1]);
}

/** GitHub's anchors for a document's headings: lower case, punctuation gone, spaces as hyphens, repeats numbered. */
function anchors(markdown) {
  const seen = new Map();
  const result = new Set();
  for (const [, heading] of markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').matchAll(/^#{1,6}\s+(.*?)\s*#*\s*$/gm)) {
    const slug = heading
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

/** What is wrong with each relative link of `file`: a missing file, or a missing heading. */
function brokenLinks(file) {
  const broken = [];
  for (const target of linkTargets(fs.readFileSync(file, 'utf8'))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
    const [pathPart, fragment] = target.split('#');
    const resolved = pathPart === '' ? file : path.resolve(path.dirname(file), decodeURIComponent(pathPart));
    const where = `${path.relative(root, file)}: ${target}`;
    if (!fs.existsSync(resolved)) {
      broken.push(`${where} (no such file)`);
    } else if (fragment !== undefined && resolved.endsWith('.md') && !anchors(fs.readFileSync(resolved, 'utf8')).has(fragment)) {
      broken.push(`${where} (no such heading)`);
    }
  }
  return broken;
}

test('README.md is at most 16 KiB: long-form material belongs in docs/', () => {
  const size = fs.statSync(path.join(root, 'README.md')).size;
  assert.ok(size <= README_LIMIT, `README.md is ${size} bytes, over ${README_LIMIT}: move long-form material to docs/`);
});

test('every relative link in README.md and docs/*.md names an existing file (and heading)', () => {
  const files = documents();
  assert.ok(files.length > 1, 'docs/*.md exist');
  assert.deepEqual(files.flatMap(brokenLinks), []);
});

test('the link checker finds links, skips code, and knows GitHub anchors', () => {
  const sample = [
    'See [a](docs/a.md#the-daemon-command) and ![img](b.svg "title").',
    '`[not](a-link.md)` and',
    '```sh',
    'echo [not](either.md)',
    '```',
    'a [split',
    'text](c.md), <https://example.org> and [web](https://example.org/x).',
  ].join('\n');
  assert.deepEqual(linkTargets(sample), ['docs/a.md#the-daemon-command', 'b.svg', 'c.md', 'https://example.org/x']);
  const heads = anchors('# Top\n## The `daemon` command\n## `syslog(message[, options])`\n## Top\n```\n# not a heading\n```\n');
  assert.deepEqual([...heads], ['top', 'the-daemon-command', 'syslogmessage-options', 'top-1']);
});
