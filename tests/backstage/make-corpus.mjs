#!/usr/bin/env node
// make-corpus.mjs OUTDIR
//
// Writes the differential-test corpus: YAML files of catalog entities, grouped
// by theme, each document preceded by a `# probe:` comment saying what it
// probes. Deterministic (no randomness, no clock, no environment): the same
// input always gives byte-identical files.
//
// Most documents are built as JS objects and serialized with `yaml`'s
// stringify; documents whose point is YAML-level syntax (scalar types, empty
// documents, non-mapping roots, anchors, syntax errors, BOM, CRLF, directives)
// are written as raw text.
//
// The verdicts are NOT encoded here: Backstage (validate.mjs) is the oracle.

import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const yaml = require('yaml');

const outDir = process.argv[2];
if (!outDir) {
  process.stderr.write('usage: node make-corpus.mjs OUTDIR\n');
  process.exit(2);
}

// ---------------------------------------------------------------------------
// helpers

const DEL = Symbol('delete');
// REPLACE(v): use v as is instead of deep-merging it into the base value.
const REPL = Symbol('replace');
const REPLACE = v => ({ [REPL]: v });
const files = new Map(); // file name -> { docs: [text], raw: string|undefined }

function stringify(obj) {
  return yaml.stringify(obj, { aliasDuplicateObjects: false, lineWidth: 0 });
}

function commentLines(text) {
  return text
    .split('\n')
    .map(l => `# ${l}`.trimEnd())
    .join('\n');
}

// Adds one document (object -> YAML, or raw YAML text) to `file`.
function add(file, probe, body) {
  if (!files.has(file)) files.set(file, []);
  const text = typeof body === 'string' ? body : stringify(body);
  const trimmed = text.endsWith('\n') ? text : `${text}\n`;
  files.get(file).push(`${commentLines(`probe: ${probe}`)}\n${trimmed}`);
}

// Deep-merge `over` into a copy of `base`; DEL removes a key; REPLACE(v),
// arrays and non-plain values replace.
function merge(base, over) {
  if (over === undefined) return clone(base);
  if (isPlain(over) && REPL in over) return clone(over[REPL]);
  if (!isPlain(base) || !isPlain(over)) return clone(over);
  const out = clone(base);
  for (const [k, v] of Object.entries(over)) {
    if (v === DEL) delete out[k];
    else out[k] = k in out ? merge(out[k], v) : clone(v);
  }
  return out;
}
function isPlain(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function clone(v) {
  if (isPlain(v) && REPL in v) return clone(v[REPL]);
  if (Array.isArray(v)) return v.map(clone);
  if (isPlain(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]));
  return v;
}

const BASE_SPEC = {
  Component: { type: 'service', lifecycle: 'production', owner: 'team-a' },
  API: {
    type: 'openapi',
    lifecycle: 'production',
    owner: 'team-a',
    definition: 'openapi: 3.0.0\ninfo:\n  title: Example\n  version: 1.0.0\npaths: {}\n',
  },
  Resource: { type: 'database', owner: 'team-a' },
  System: { owner: 'team-a' },
  Domain: { owner: 'team-a' },
  Group: { type: 'team', children: [] },
  User: { memberOf: [] },
  Location: { type: 'url', target: 'https://github.com/acme/repo/blob/main/catalog-info.yaml' },
  Template: {
    type: 'service',
    steps: [{ id: 'fetch', name: 'Fetch', action: 'fetch:template', input: { url: './skeleton' } }],
  },
};

function defaultApiVersion(kind) {
  return kind === 'Template' ? 'scaffolder.backstage.io/v1beta3' : 'backstage.io/v1alpha1';
}

// A valid entity of `kind` named `name`, then `over` deep-merged at the root.
// Use over.spec = DEL to drop spec, etc.
function E(kind, name, over = {}) {
  const base = {
    apiVersion: defaultApiVersion(kind),
    kind,
    metadata: { name },
  };
  const specBase = BASE_SPEC[kind];
  if (specBase) base.spec = specBase;
  else base.spec = { type: 'thing', owner: 'team-a' };
  return merge(base, over);
}

// Entity with spec fields overridden.
function S(kind, name, spec) {
  return E(kind, name, { spec });
}

const rep = (c, n) => c.repeat(n);
const len63 = 'a' + rep('b', 61) + 'c'; // 63 chars
const len64 = 'a' + rep('b', 62) + 'c'; // 64 chars

// ---------------------------------------------------------------------------
// names.yaml: metadata.name

{
  const f = 'names.yaml';
  const C = (probe, name) => add(f, probe, E('Component', name));
  C('name: single lower-case letter', 'a');
  C('name: single upper-case letter', 'A');
  C('name: single digit', '0');
  C('name: digits only', '123');
  C('name: 63 characters (maximum)', len63);
  C('name: 64 characters (one over maximum)', len64);
  C('name: 63 upper-case characters', rep('X', 63));
  C('name: 63 characters with separators inside', 'a' + rep('-_.', 20) + 'bc');
  C('name: 64 characters with separators inside', 'a' + rep('-_.', 20) + 'bcd');
  C('name: 100 characters', rep('a', 100));
  C('name: hyphen inside', 'my-service');
  C('name: underscore inside', 'my_service');
  C('name: dot inside', 'my.service');
  C('name: run of hyphens inside', 'a--b');
  C('name: mixed run of separators inside', 'a._-b');
  C('name: dot-dot inside', 'a..b');
  C('name: starts with hyphen', '-abc');
  C('name: ends with hyphen', 'abc-');
  C('name: starts with underscore', '_abc');
  C('name: ends with underscore', 'abc_');
  C('name: starts with dot', '.abc');
  C('name: ends with dot', 'abc.');
  C('name: only a hyphen', '-');
  C('name: only separators', '-_.');
  C('name: upper-case', 'MyService');
  C('name: camelCase with digits', 'serviceV2');
  C('name: contains space', 'my service');
  C('name: contains slash', 'my/service');
  C('name: contains colon', 'my:service');
  C('name: contains at sign', 'my@service');
  C('name: contains plus', 'c++');
  C('name: contains hash', 'c#');
  C('name: leading space', ' abc');
  C('name: trailing space', 'abc ');
  C('name: trailing newline', 'abc\n');
  C('name: contains tab', 'a\tb');
  C('name: empty string', '');
  C('name: string "null"', 'null');
  C('name: string "true"', 'true');
  add(f, 'name: missing', E('Component', 'x', { metadata: { name: DEL } }));
  add(f, 'name: integer', E('Component', 'x', { metadata: { name: 42 } }));
  add(f, 'name: boolean', E('Component', 'x', { metadata: { name: true } }));
  add(f, 'name: null', E('Component', 'x', { metadata: { name: null } }));
  add(f, 'name: list', E('Component', 'x', { metadata: { name: ['a'] } }));
  add(f, 'name: mapping', E('Component', 'x', { metadata: { name: { a: 'b' } } }));
  add(f, 'name: 64 characters on a Group', E('Group', len64));
  add(f, 'name: ends with dot on a User', E('User', 'jdoe.'));
}

// ---------------------------------------------------------------------------
// namespaces.yaml: metadata.namespace

{
  const f = 'namespaces.yaml';
  const N = (probe, ns, kind = 'Component') =>
    add(f, probe, E(kind, 'ns-probe', { metadata: { namespace: ns } }));
  N('namespace: explicit "default"', 'default');
  N('namespace: simple lower-case', 'team-a');
  N('namespace: digits only', '123');
  N('namespace: single character', 'a');
  N('namespace: run of hyphens inside', 'a--b');
  N('namespace: 63 characters (maximum)', len63);
  N('namespace: 64 characters (one over maximum)', len64);
  N('namespace: upper-case letters', 'Team-A');
  N('namespace: all upper-case', 'PROD');
  N('namespace: starts with hyphen', '-abc');
  N('namespace: ends with hyphen', 'abc-');
  N('namespace: underscore', 'a_b');
  N('namespace: dot', 'a.b');
  N('namespace: space', 'a b');
  N('namespace: slash', 'a/b');
  N('namespace: colon', 'a:b');
  N('namespace: empty string', '');
  N('namespace: integer', 7);
  N('namespace: boolean', false);
  N('namespace: null', null);
  N('namespace: list', ['a']);
  N('namespace: non-ASCII letter', 'ñ');
  N('namespace: upper-case on a Group', 'Platform', 'Group');
  N('namespace: valid on a User', 'people', 'User');
  N('namespace: valid on a Template', 'templates', 'Template');
  N('namespace: 64 characters on a System', len64, 'System');
  add(
    f,
    'namespace: owner ref resolved in entity namespace (unprefixed owner)',
    E('Component', 'ns-owner', { metadata: { namespace: 'infra' }, spec: { owner: 'team-b' } }),
  );
  add(
    f,
    'namespace: same name different namespace (ref differs)',
    E('Component', 'ns-probe', { metadata: { namespace: 'other' } }),
  );
}

// ---------------------------------------------------------------------------
// labels.yaml: metadata.labels

{
  const f = 'labels.yaml';
  const prefix253 = [rep('a', 63), rep('b', 63), rep('c', 63), rep('d', 61)].join('.');
  const prefix254 = [rep('a', 63), rep('b', 63), rep('c', 63), rep('d', 62)].join('.');
  const L = (probe, labels, kind = 'Component') =>
    add(f, probe, E(kind, 'labels-probe', { metadata: { labels } }));
  L('labels: simple key and value', { tier: 'backend' });
  L('labels: empty mapping', {});
  L('labels: prefixed key with DNS subdomain prefix', { 'example.com/tier': 'backend' });
  L('labels: prefix of one DNS label', { 'acme/tier': 'backend' });
  L('labels: prefix of exactly 253 characters', { [`${prefix253}/x`]: 'v' });
  L('labels: prefix of 254 characters (too long)', { [`${prefix254}/x`]: 'v' });
  L('labels: prefix with a 64-character DNS label', { [`${len64}.com/x`]: 'v' });
  L('labels: upper-case prefix', { 'Example.com/tier': 'backend' });
  L('labels: upper-case name part after prefix', { 'example.com/Tier': 'backend' });
  L('labels: upper-case key without prefix', { Tier: 'backend' });
  L('labels: key with two slashes', { 'a/b/c': 'v' });
  L('labels: empty prefix', { '/tier': 'v' });
  L('labels: empty name after prefix', { 'example.com/': 'v' });
  L('labels: prefix with empty DNS label', { 'example..com/tier': 'v' });
  L('labels: prefix starting with hyphen', { '-example.com/tier': 'v' });
  L('labels: prefix with underscore', { 'ex_ample.com/tier': 'v' });
  L('labels: prefix with run of hyphens', { 'ex--ample.com/tier': 'v' });
  L('labels: key name 63 characters', { [len63]: 'v' });
  L('labels: key name 64 characters', { [len64]: 'v' });
  L('labels: key name with separators inside', { 'a_b.c-d': 'v' });
  L('labels: key ending with separator', { 'tier-': 'v' });
  L('labels: key with space', { 'my tier': 'v' });
  L('labels: value empty string (allowed)', { tier: '' });
  L('labels: value 63 characters', { tier: len63 });
  L('labels: value 64 characters', { tier: len64 });
  L('labels: value upper-case', { tier: 'Backend' });
  L('labels: value with separators inside', { tier: 'a.b_c-d' });
  L('labels: value starting with hyphen', { tier: '-backend' });
  L('labels: value with space', { tier: 'back end' });
  L('labels: value with slash', { tier: 'a/b' });
  L('labels: value integer', { tier: 3 });
  L('labels: value boolean', { tier: true });
  L('labels: value null', { tier: null });
  L('labels: value list', { tier: ['a'] });
  L('labels: null', null);
  L('labels: list instead of mapping', ['tier']);
  L('labels: string instead of mapping', 'tier=backend');
  L('labels: backstage.io prefix (reserved by convention only)', { 'backstage.io/custom': 'x' });
  L('labels: valid labels on a Resource', { 'acme.io/cost-center': 'cc-12' }, 'Resource');
  L('labels: bad key on a Template', { 'A/b': 'v' }, 'Template');
}

// ---------------------------------------------------------------------------
// annotations.yaml: metadata.annotations

{
  const f = 'annotations.yaml';
  const prefix253 = [rep('a', 63), rep('b', 63), rep('c', 63), rep('d', 61)].join('.');
  const prefix254 = [rep('a', 63), rep('b', 63), rep('c', 63), rep('d', 62)].join('.');
  const A = (probe, annotations, kind = 'Component') =>
    add(f, probe, E(kind, 'annotations-probe', { metadata: { annotations } }));
  A('annotations: well-known key', { 'backstage.io/techdocs-ref': 'dir:.' });
  A('annotations: github slug', { 'github.com/project-slug': 'acme/repo' });
  A('annotations: empty mapping', {});
  A('annotations: value empty string', { 'acme.io/note': '' });
  A('annotations: value with spaces and punctuation', { 'acme.io/note': 'Hello, world! (see: #42)' });
  A('annotations: multi-line value', { 'acme.io/note': 'line one\nline two\n' });
  A('annotations: long value (5000 characters)', { 'acme.io/note': rep('x', 5000) });
  A('annotations: value integer', { 'acme.io/replicas': 3 });
  A('annotations: value float', { 'acme.io/ratio': 0.5 });
  A('annotations: value boolean true', { 'acme.io/enabled': true });
  A('annotations: value boolean false', { 'acme.io/enabled': false });
  A('annotations: value null', { 'acme.io/note': null });
  A('annotations: value list', { 'acme.io/note': ['a'] });
  A('annotations: value mapping', { 'acme.io/note': { a: 'b' } });
  A('annotations: key without prefix', { note: 'x' });
  A('annotations: prefix of exactly 253 characters', { [`${prefix253}/x`]: 'v' });
  A('annotations: prefix of 254 characters (too long)', { [`${prefix254}/x`]: 'v' });
  A('annotations: upper-case prefix', { 'Acme.io/note': 'x' });
  A('annotations: upper-case name part', { 'acme.io/Note': 'x' });
  A('annotations: key with two slashes', { 'acme.io/a/b': 'x' });
  A('annotations: empty prefix', { '/note': 'x' });
  A('annotations: empty name after prefix', { 'acme.io/': 'x' });
  A('annotations: prefix with empty DNS label', { 'acme..io/note': 'x' });
  A('annotations: key name 64 characters', { [`acme.io/${len64}`]: 'x' });
  A('annotations: key name 63 characters', { [`acme.io/${len63}`]: 'x' });
  A('annotations: key with space', { 'acme.io/my note': 'x' });
  A('annotations: null (replaced by the catalog with an object)', null);
  A('annotations: list instead of mapping', ['a']);
  A('annotations: string instead of mapping', 'a=b');
  A('annotations: integer instead of mapping', 5);
  A(
    'annotations: managed-by-location set by user with a non-string value (overwritten by the catalog)',
    { 'backstage.io/managed-by-location': 3 },
  );
  A(
    'annotations: managed-by-origin-location set by user to null (overwritten by the catalog)',
    { 'backstage.io/managed-by-origin-location': null },
  );
  A('annotations: source-location with a non-string value', { 'backstage.io/source-location': 3 });
  A('annotations: integer value on a User', { 'acme.io/uid': 1001 }, 'User');
  A('annotations: valid on a Location', { 'acme.io/owner': 'team-a' }, 'Location');
}

// ---------------------------------------------------------------------------
// tags.yaml: metadata.tags

{
  const f = 'tags.yaml';
  const T = (probe, tags, kind = 'Component') =>
    add(f, probe, E(kind, 'tags-probe', { metadata: { tags } }));
  T('tags: simple', ['java', 'backend']);
  T('tags: empty list', []);
  T('tags: colon', ['lang:java']);
  T('tags: plus', ['c++']);
  T('tags: hash', ['c#']);
  T('tags: only a colon', [':']);
  T('tags: only plus and hash', ['+#']);
  T('tags: digits', ['123']);
  T('tags: single hyphen inside', ['a-b']);
  T('tags: run of hyphens inside', ['a--b']);
  T('tags: starts with hyphen', ['-a']);
  T('tags: ends with hyphen', ['a-']);
  T('tags: underscore', ['a_b']);
  T('tags: dot', ['a.b']);
  T('tags: slash', ['a/b']);
  T('tags: space', ['a b']);
  T('tags: upper-case', ['Java']);
  T('tags: 63 characters', [len63]);
  T('tags: 64 characters', [len64]);
  T('tags: empty string', ['']);
  T('tags: whitespace only', [' ']);
  T('tags: non-ASCII', ['ü']);
  T('tags: duplicated values', ['java', 'java']);
  T('tags: second tag invalid', ['java', 'Bad']);
  T('tags: integer item', [1]);
  T('tags: boolean item', [true]);
  T('tags: null item', [null]);
  T('tags: mapping item', [{ a: 'b' }]);
  T('tags: null', null);
  T('tags: string instead of list', 'java');
  T('tags: mapping instead of list', { java: true });
  T('tags: valid on an API', ['rest', 'v2'], 'API');
  T('tags: invalid on a Domain', ['Payments'], 'Domain');
}

// ---------------------------------------------------------------------------
// links.yaml: metadata.links

{
  const f = 'links.yaml';
  const K = (probe, links, kind = 'Component') =>
    add(f, probe, E(kind, 'links-probe', { metadata: { links } }));
  K('links: url only', [{ url: 'https://example.com' }]);
  K('links: url, title, icon, type', [
    { url: 'https://example.com/dash', title: 'Dashboard', icon: 'dashboard', type: 'admin-dashboard' },
  ]);
  K('links: empty list', []);
  K('links: relative url with leading slash', [{ url: '/docs' }]);
  K('links: relative url without slash', [{ url: 'docs/index.html' }]);
  K('links: url without scheme', [{ url: 'example.com' }]);
  K('links: mailto url', [{ url: 'mailto:team@example.com' }]);
  K('links: javascript url (valid URL syntax)', [{ url: 'javascript:alert(1)' }]);
  K('links: file url', [{ url: 'file:///etc/hosts' }]);
  K('links: IPv6 host', [{ url: 'http://[::1]:8080/' }]);
  K('links: IDN host', [{ url: 'https://例え.jp/' }]);
  K('links: space in host', [{ url: 'https://exa mple.com/' }]);
  K('links: scheme only', [{ url: 'https://' }]);
  K('links: custom scheme', [{ url: 'slack://channel?id=1' }]);
  K('links: missing url', [{ title: 'No url' }]);
  K('links: empty url', [{ url: '' }]);
  K('links: integer url', [{ url: 42 }]);
  K('links: null url', [{ url: null }]);
  K('links: empty title', [{ url: 'https://example.com', title: '' }]);
  K('links: whitespace-only title', [{ url: 'https://example.com', title: '   ' }]);
  K('links: integer title', [{ url: 'https://example.com', title: 5 }]);
  K('links: empty icon', [{ url: 'https://example.com', icon: '' }]);
  K('links: whitespace-only icon', [{ url: 'https://example.com', icon: ' ' }]);
  K('links: icon with upper-case and spaces', [{ url: 'https://example.com', icon: 'My Icon' }]);
  K('links: empty type', [{ url: 'https://example.com', type: '' }]);
  K('links: whitespace-only type', [{ url: 'https://example.com', type: ' ' }]);
  K('links: extra unknown property', [{ url: 'https://example.com', color: 'red' }]);
  K('links: string item instead of object', ['https://example.com']);
  K('links: null item', [null]);
  K('links: second link invalid', [{ url: 'https://example.com' }, { url: 'nope' }]);
  K('links: null', null);
  K('links: mapping instead of list', { url: 'https://example.com' });
  K('links: valid on a Group', [{ url: 'https://chat.example.com/team' }], 'Group');
  K('links: relative url on a Template', [{ url: './docs' }], 'Template');
}

// ---------------------------------------------------------------------------
// metadata.yaml: other metadata fields (title, description, uid, etag, extras)

{
  const f = 'metadata.yaml';
  const M = (probe, meta, kind = 'Component') => add(f, probe, E(kind, 'meta-probe', { metadata: meta }));
  M('title: plain', { title: 'My Service' });
  M('title: empty string', { title: '' });
  M('title: whitespace only', { title: '  ' });
  M('title: integer', { title: 42 });
  M('title: null', { title: null });
  M('title: list', { title: ['a'] });
  M('description: plain', { description: 'Does things.' });
  M('description: empty string', { description: '' });
  M('description: integer', { description: 42 });
  M('description: boolean', { description: true });
  M('description: null', { description: null });
  M('description: list', { description: ['a', 'b'] });
  M('description: mapping', { description: { a: 'b' } });
  M('description: very long (20000 characters)', { description: rep('d', 20000) });
  M('uid: string', { uid: '8d5c3ad0-0000-4000-8000-000000000000' });
  M('uid: empty string', { uid: '' });
  M('uid: integer', { uid: 1 });
  M('etag: string', { etag: 'abc' });
  M('etag: empty string', { etag: '' });
  M('metadata: unknown extra key', { owner: 'team-a' });
  M('metadata: removed generation field', { generation: 1 });
  M('metadata: extra key with mapping value', { custom: { a: [1, 2] } });
  M('title: empty on a Template', { title: '' }, 'Template');
  M('description: integer on a Template', { description: 1 }, 'Template');
  add(f, 'metadata: missing', E('Component', 'x', { metadata: DEL }));
  add(f, 'metadata: null', E('Component', 'x', { metadata: null }));
  add(f, 'metadata: list', E('Component', 'x', { metadata: [{ name: 'x' }] }));
  add(f, 'metadata: string', E('Component', 'x', { metadata: 'x' }));
  add(f, 'metadata: empty mapping', E('Component', 'x', { metadata: REPLACE({}) }));
  add(f, 'metadata: name only (minimal metadata)', E('Component', 'meta-minimal', { metadata: REPLACE({ name: 'meta-minimal' }) }));
}

// ---------------------------------------------------------------------------
// root-fields.yaml: envelope root fields, apiVersion and kind forms

{
  const f = 'root-fields.yaml';
  const R = (probe, over, kind = 'Component') => add(f, probe, E(kind, 'root-probe', over));
  R('root: status block (output-only field)', { status: { items: [] } });
  R('root: empty status', { status: {} });
  R('root: relations list (output-only field)', {
    relations: [{ type: 'ownedBy', targetRef: 'group:default/team-a' }],
  });
  R('root: empty relations list', { relations: [] });
  R('root: malformed relations (not a list)', { relations: 'x' });
  R('root: malformed status (not a mapping)', { status: 'ok' });
  R('root: unknown field foo', { foo: 'bar' });
  R('root: capitalised Spec alongside spec', { Spec: {} });
  R('root: unknown field with null value', { extra: null });
  R('root: unknown field on a Template', { foo: 1 }, 'Template');
  R('root: status on a Location', { status: {} }, 'Location');
  R('apiVersion: missing', { apiVersion: DEL });
  R('apiVersion: empty string', { apiVersion: '' });
  R('apiVersion: integer', { apiVersion: 1 });
  R('apiVersion: null', { apiVersion: null });
  R('apiVersion: v1 (no group)', { apiVersion: 'v1' });
  R('apiVersion: backstage.io/v1beta1 (accepted alias)', { apiVersion: 'backstage.io/v1beta1' });
  R('apiVersion: backstage.io/v1 (unknown version)', { apiVersion: 'backstage.io/v1' });
  R('apiVersion: three parts a/b/c', { apiVersion: 'a/b/c' });
  R('apiVersion: upper-case group', { apiVersion: 'Backstage.io/v1alpha1' });
  R('apiVersion: empty version part', { apiVersion: 'backstage.io/' });
  R('apiVersion: empty group part', { apiVersion: '/v1alpha1' });
  R('apiVersion: underscore in version', { apiVersion: 'backstage.io/v1_alpha1' });
  R('apiVersion: version of 64 characters', { apiVersion: `backstage.io/${len64}` });
  R('apiVersion: foreign group for a built-in kind', { apiVersion: 'example.com/v1alpha1' });
  R('apiVersion: scaffolder group for a Component', { apiVersion: 'scaffolder.backstage.io/v1beta3' });
  R('kind: missing', { kind: DEL });
  R('kind: empty string', { kind: '' });
  R('kind: integer', { kind: 3 });
  R('kind: null', { kind: null });
  R('kind: lower-case component', { kind: 'component' });
  R('kind: all upper-case COMPONENT', { kind: 'COMPONENT' });
  R('kind: with digits', { kind: 'Component2' });
  R('kind: with underscore', { kind: 'My_Kind' });
  R('kind: with hyphen', { kind: 'My-Kind' });
  R('kind: starting with digit', { kind: '2Component' });
  R('kind: 63 characters', { kind: `K${rep('k', 62)}` });
  R('kind: 64 characters', { kind: `K${rep('k', 63)}` });
  R('kind: leading space', { kind: ' Component' });
}

// ---------------------------------------------------------------------------
// spec.yaml: spec presence and shape for every kind

{
  const f = 'spec.yaml';
  for (const kind of ['Component', 'API', 'Resource', 'System', 'Domain', 'Group', 'User', 'Location', 'Template']) {
    const n = `spec-${kind.toLowerCase()}`;
    add(f, `spec: missing on ${kind}`, E(kind, n, { spec: DEL }));
    add(f, `spec: null on ${kind}`, E(kind, n, { spec: null }));
    add(f, `spec: empty mapping on ${kind}`, E(kind, n, { spec: REPLACE({}) }));
    add(f, `spec: list on ${kind}`, E(kind, n, { spec: [] }));
    add(f, `spec: string on ${kind}`, E(kind, n, { spec: 'x' }));
  }
  add(f, 'spec: missing on an unknown kind', E('Widget', 'spec-widget', { spec: DEL }));
  add(f, 'spec: null on an unknown kind', E('Widget', 'spec-widget', { spec: null }));
}

// ---------------------------------------------------------------------------
// component.yaml

{
  const f = 'component.yaml';
  const C = (probe, spec, over) => add(f, probe, merge(S('Component', 'component-probe', spec), over));
  C('Component: minimal valid', {});
  C('Component: all optional fields valid', {
    system: 'payments',
    subcomponentOf: 'component:parent-svc',
    providesApis: ['api-a', 'api:ns/api-b'],
    consumesApis: ['api-c'],
    dependsOn: ['resource:db', 'component:default/other'],
    dependencyOf: ['component:consumer'],
  });
  C('Component: v1beta1 apiVersion', {}, { apiVersion: 'backstage.io/v1beta1' });
  C('Component: unknown extra spec key', { tier: 1 });
  C('Component: free-form type and lifecycle', { type: 'whatever', lifecycle: 'sunset-2030' });
  C('Component: missing type', { type: DEL });
  C('Component: missing lifecycle', { lifecycle: DEL });
  C('Component: missing owner', { owner: DEL });
  C('Component: missing type, lifecycle and owner', { type: DEL, lifecycle: DEL, owner: DEL });
  C('Component: owner integer', { owner: 3 });
  C('Component: owner empty string', { owner: '' });
  C('Component: owner null', { owner: null });
  C('Component: owner list', { owner: ['team-a'] });
  C('Component: type integer', { type: 1 });
  C('Component: type empty string', { type: '' });
  C('Component: lifecycle boolean', { lifecycle: true });
  C('Component: system empty string', { system: '' });
  C('Component: system integer', { system: 5 });
  C('Component: subcomponentOf list', { subcomponentOf: ['a'] });
  C('Component: providesApis string instead of list', { providesApis: 'x' });
  C('Component: providesApis integer item', { providesApis: [3] });
  C('Component: providesApis empty-string item', { providesApis: [''] });
  C('Component: providesApis empty list', { providesApis: [] });
  C('Component: consumesApis string instead of list', { consumesApis: 'api-a' });
  C('Component: consumesApis null', { consumesApis: null });
  C('Component: dependsOn unprefixed item (no default kind)', { dependsOn: ['db'] });
  C('Component: dependsOn string instead of list', { dependsOn: 'resource:db' });
  C('Component: dependsOn empty list', { dependsOn: [] });
  C('Component: dependencyOf unprefixed item (not in the schema)', { dependencyOf: ['consumer'] });
  C('Component: dependencyOf string (not in the schema)', { dependencyOf: 'component:consumer' });
  C('Component: dependencyOf integer item (not in the schema)', { dependencyOf: [5] });
  C('Component: owner user ref', { owner: 'user:jdoe' });
  C('Component: owner with namespace', { owner: 'group:platform/team-a' });
  C('Component: unknown apiVersion version', {}, { apiVersion: 'backstage.io/v2' });
}

// ---------------------------------------------------------------------------
// api.yaml

{
  const f = 'api.yaml';
  const A = (probe, spec, over) => add(f, probe, merge(S('API', 'api-probe', spec), over));
  const remotes = [{ type: 'streamable-http', url: 'https://mcp.example.com/mcp' }];
  A('API: minimal valid (openapi with definition)', {});
  A('API: grpc type with system', { type: 'grpc', system: 'payments' });
  A('API: v1beta1 apiVersion', {}, { apiVersion: 'backstage.io/v1beta1' });
  A('API: missing definition', { definition: DEL });
  A('API: empty definition', { definition: '' });
  A('API: definition as mapping instead of string', { definition: { openapi: '3.0.0' } });
  A('API: definition integer', { definition: 1 });
  A('API: missing owner', { owner: DEL });
  A('API: missing lifecycle', { lifecycle: DEL });
  A('API: missing type', { type: DEL });
  A('API: owner integer', { owner: 3 });
  A('API: system empty', { system: '' });
  A('API: mcp-server with remotes and no definition', { type: 'mcp-server', definition: DEL, remotes });
  A('API: mcp-server with remotes and a definition', { type: 'mcp-server', remotes });
  A('API: mcp-server with definition and no remotes', { type: 'mcp-server' });
  A('API: mcp-server with empty remotes and no definition', { type: 'mcp-server', definition: DEL, remotes: [] });
  A('API: mcp-server with malformed remotes and a definition', { type: 'mcp-server', remotes: [{ url: 3 }] });
  A('API: mcp-server with neither remotes nor definition', { type: 'mcp-server', definition: DEL });
  A('API: openapi type with remotes instead of definition', { definition: DEL, remotes });
  A('API: providesApis is not an API field (ignored)', { providesApis: ['x'] });
  A('API: owner unparseable ref', { owner: 'group:' });
  add(f, 'API: kind spelled Api', E('API', 'api-probe', { kind: 'Api' }));
  add(f, 'API: kind spelled api', E('API', 'api-probe', { kind: 'api' }));
  A('API: unknown extra spec key', { tier: 'gold' });
}

// ---------------------------------------------------------------------------
// resource.yaml

{
  const f = 'resource.yaml';
  const R = (probe, spec, over) => add(f, probe, merge(S('Resource', 'resource-probe', spec), over));
  R('Resource: minimal valid', {});
  R('Resource: all optional fields valid', {
    system: 'payments',
    dependsOn: ['resource:other-db'],
    dependencyOf: ['component:svc'],
  });
  R('Resource: v1beta1 apiVersion', {}, { apiVersion: 'backstage.io/v1beta1' });
  R('Resource: missing type', { type: DEL });
  R('Resource: missing owner', { owner: DEL });
  R('Resource: lifecycle is not required', { lifecycle: DEL });
  R('Resource: owner integer', { owner: 3 });
  R('Resource: type empty', { type: '' });
  R('Resource: dependsOn unprefixed item', { dependsOn: ['db'] });
  R('Resource: dependsOn string', { dependsOn: 'resource:db' });
  R('Resource: dependsOn integer item', { dependsOn: [1] });
  R('Resource: dependencyOf unprefixed item', { dependencyOf: ['svc'] });
  R('Resource: system integer', { system: 2 });
  R('Resource: system ref with kind and namespace', { system: 'system:ops/payments' });
  R('Resource: owner group ref in another namespace', { owner: 'ops/dba' });
  R('Resource: unknown extra spec key', { region: 'eu-west-1' });
  R('Resource: foreign apiVersion', {}, { apiVersion: 'acme.io/v1' });
  add(f, 'Resource: kind resource lower-case', E('Resource', 'resource-probe', { kind: 'resource' }));
}

// ---------------------------------------------------------------------------
// system.yaml

{
  const f = 'system.yaml';
  const Y = (probe, spec, over) => add(f, probe, merge(S('System', 'system-probe', spec), over));
  Y('System: minimal valid', {});
  Y('System: domain and type valid', { domain: 'commerce', type: 'product' });
  Y('System: v1beta1 apiVersion', {}, { apiVersion: 'backstage.io/v1beta1' });
  Y('System: missing owner', { owner: DEL });
  Y('System: owner integer', { owner: 10 });
  Y('System: owner empty', { owner: '' });
  Y('System: domain empty', { domain: '' });
  Y('System: domain list', { domain: ['commerce'] });
  Y('System: type integer', { type: 1 });
  Y('System: domain unparseable ref', { domain: 'domain:' });
  Y('System: domain ref with namespace', { domain: 'biz/commerce' });
  Y('System: lifecycle not in schema (ignored)', { lifecycle: 42 });
  Y('System: owner unparseable ref (empty namespace)', { owner: '/team-a' });
  Y('System: owner ref with colon inside name after slash', { owner: 'ns/a:b' });
  Y('System: unknown extra spec key', { tier: 1 });
  add(f, 'System: foreign apiVersion', E('System', 'system-probe', { apiVersion: 'v1' }));
  add(f, 'System: kind SYSTEM', E('System', 'system-probe', { kind: 'SYSTEM' }));
}

// ---------------------------------------------------------------------------
// domain.yaml

{
  const f = 'domain.yaml';
  const D = (probe, spec, over) => add(f, probe, merge(S('Domain', 'domain-probe', spec), over));
  D('Domain: minimal valid', {});
  D('Domain: subdomainOf and type valid', { subdomainOf: 'commerce', type: 'business' });
  D('Domain: v1beta1 apiVersion', {}, { apiVersion: 'backstage.io/v1beta1' });
  D('Domain: missing owner', { owner: DEL });
  D('Domain: owner integer', { owner: 1 });
  D('Domain: owner boolean', { owner: false });
  D('Domain: subdomainOf empty', { subdomainOf: '' });
  D('Domain: subdomainOf integer', { subdomainOf: 3 });
  D('Domain: subdomainOf unparseable ref', { subdomainOf: ':x' });
  D('Domain: subdomainOf with kind and namespace', { subdomainOf: 'domain:biz/commerce' });
  D('Domain: type empty', { type: '' });
  D('Domain: owner with trailing slash (empty name)', { owner: 'group:ns/' });
  D('Domain: unknown extra spec key', { color: 'blue' });
  add(f, 'Domain: foreign apiVersion', E('Domain', 'domain-probe', { apiVersion: 'backstage.io/v1alpha2' }));
  add(f, 'Domain: kind domain lower-case', E('Domain', 'domain-probe', { kind: 'domain' }));
}

// ---------------------------------------------------------------------------
// group.yaml

{
  const f = 'group.yaml';
  const G = (probe, spec, over) => add(f, probe, merge(S('Group', 'group-probe', spec), over));
  G('Group: minimal valid (empty children)', {});
  G('Group: all optional fields valid', {
    parent: 'org',
    children: ['team-b', 'group:ns/team-c'],
    members: ['jdoe', 'user:ns/alice'],
    profile: { displayName: 'Team A', email: 'team-a@example.com', picture: 'https://example.com/a.png' },
  });
  G('Group: v1beta1 apiVersion', {}, { apiVersion: 'backstage.io/v1beta1' });
  G('Group: missing children', { children: DEL });
  G('Group: missing type', { type: DEL });
  G('Group: children string', { children: 'team-b' });
  G('Group: children null', { children: null });
  G('Group: children empty-string item', { children: [''] });
  G('Group: children integer item', { children: [1] });
  G('Group: children unparseable ref item', { children: ['group:'] });
  G('Group: parent integer', { parent: 3 });
  G('Group: parent empty', { parent: '' });
  G('Group: parent unparseable ref', { parent: 'ns/' });
  G('Group: members string', { members: 'jdoe' });
  G('Group: members unprefixed (default kind User)', { members: ['jdoe'] });
  G('Group: members unparseable item', { members: [':jdoe'] });
  G('Group: profile not a mapping', { profile: 'Team A' });
  G('Group: profile email integer', { profile: { email: 1 } });
  G('Group: profile displayName empty', { profile: { displayName: '' } });
  G('Group: profile extra key', { profile: { slack: '#team-a' } });
  G('Group: type empty', { type: '' });
  G('Group: owner is not a Group field (ignored)', { owner: 5 });
  add(f, 'Group: kind group lower-case', E('Group', 'group-probe', { kind: 'group' }));
  add(f, 'Group: foreign apiVersion', E('Group', 'group-probe', { apiVersion: 'example.com/v1' }));
}

// ---------------------------------------------------------------------------
// user.yaml

{
  const f = 'user.yaml';
  const U = (probe, spec, over) => add(f, probe, merge(S('User', 'user-probe', spec), over));
  U('User: minimal valid (empty memberOf)', {});
  U('User: memberOf and profile valid', {
    memberOf: ['team-a', 'group:ns/team-b'],
    profile: { displayName: 'Jane Doe', email: 'jane@example.com', picture: 'https://example.com/j.png' },
  });
  U('User: v1beta1 apiVersion', {}, { apiVersion: 'backstage.io/v1beta1' });
  U('User: missing memberOf', { memberOf: DEL });
  U('User: memberOf string', { memberOf: 'team-a' });
  U('User: memberOf null', { memberOf: null });
  U('User: memberOf mapping', { memberOf: { team: 'a' } });
  U('User: memberOf integer item', { memberOf: [1] });
  U('User: memberOf empty-string item', { memberOf: [''] });
  U('User: memberOf ref with empty name', { memberOf: ['group:default/'] });
  U('User: memberOf ref with empty kind', { memberOf: [':team-a'] });
  U('User: memberOf namespace/name ref', { memberOf: ['ns/team-a'] });
  U('User: memberOf user-kind ref (allowed by parsing)', { memberOf: ['user:other'] });
  U('User: profile email empty', { profile: { email: '' } });
  U('User: profile picture integer', { profile: { picture: 1 } });
  U('User: profile null', { profile: null });
  U('User: profile list', { profile: [] });
  U('User: profile extra keys', { profile: { phone: '555' } });
  U('User: type is not a User field (ignored)', { type: 3 });
  add(f, 'User: name that looks like an email (invalid)', E('User', 'jane@example.com'));
  add(f, 'User: name with dot (valid)', E('User', 'jane.doe'));
  add(f, 'User: kind user lower-case', E('User', 'user-probe', { kind: 'user' }));
  add(f, 'User: foreign apiVersion', E('User', 'user-probe', { apiVersion: 'backstage.io/v1' }));
}

// ---------------------------------------------------------------------------
// location.yaml (targets are not followed)

{
  const f = 'location.yaml';
  const L = (probe, spec, over) => add(f, probe, merge(E('Location', 'location-probe', { spec: DEL }), { spec, ...over }));
  L('Location: type and target', { type: 'url', target: 'https://github.com/acme/repo/blob/main/catalog-info.yaml' });
  L('Location: relative target only', { target: './services/a/catalog-info.yaml' });
  L('Location: targets list only', { targets: ['./a.yaml', './b.yaml'] });
  L('Location: target and targets together', { target: './a.yaml', targets: ['./b.yaml'] });
  L('Location: glob target', { target: './services/*/catalog-info.yaml' });
  L('Location: empty spec (no target at all)', {});
  L('Location: presence optional', { target: './maybe.yaml', presence: 'optional' });
  L('Location: presence required', { target: './a.yaml', presence: 'required' });
  L('Location: presence Optional (wrong case)', { target: './a.yaml', presence: 'Optional' });
  L('Location: presence unknown value', { target: './a.yaml', presence: 'sometimes' });
  L('Location: presence boolean', { target: './a.yaml', presence: true });
  L('Location: target empty', { target: '' });
  L('Location: target integer', { target: 3 });
  L('Location: target list', { target: ['./a.yaml'] });
  L('Location: targets string', { targets: './a.yaml' });
  L('Location: targets integer item', { targets: [1] });
  L('Location: targets empty-string item', { targets: [''] });
  L('Location: targets empty list', { targets: [] });
  L('Location: type empty', { type: '', target: './a.yaml' });
  L('Location: type integer', { type: 1, target: './a.yaml' });
  L('Location: type file', { type: 'file', target: './a.yaml' });
  L('Location: type github-discovery', { type: 'github-discovery', target: 'https://github.com/acme/*/blob/-/catalog-info.yaml' });
  L('Location: absolute path target (not followed here)', { target: '/etc/passwd' });
  L('Location: escaping relative target (not followed here)', { target: '../../../etc/passwd' });
  L('Location: target with trailing slash', { type: 'file', target: './dir/' });
  L('Location: unknown extra spec key', { target: './a.yaml', rules: [{ allow: ['Component'] }] });
  L('Location: v1beta1 apiVersion', { target: './a.yaml' }, { apiVersion: 'backstage.io/v1beta1' });
  add(f, 'Location: spec missing', E('Location', 'location-probe', { spec: DEL }));
  add(f, 'Location: kind location lower-case', E('Location', 'location-probe', { kind: 'location' }));
}

// ---------------------------------------------------------------------------
// template.yaml (scaffolder.backstage.io/v1beta3)

{
  const f = 'template.yaml';
  const T = (probe, spec, over) => add(f, probe, merge(S('Template', 'template-probe', spec), over));
  T('Template: minimal valid', {});
  T('Template: full valid', {
    owner: 'group:platform/team-a',
    lifecycle: 'production',
    parameters: [
      {
        title: 'Basics',
        required: ['name'],
        properties: { name: { type: 'string', 'ui:autofocus': true } },
      },
      { title: 'Advanced', when: true, 'backstage:permissions': { tags: ['admin'] } },
    ],
    steps: [
      { id: 'fetch', name: 'Fetch', action: 'fetch:template', input: { url: './skeleton', values: { name: '${{ parameters.name }}' } } },
      { id: 'publish', action: 'publish:github', if: '${{ parameters.publish }}', input: { repoUrl: 'github.com?repo=x&owner=acme' } },
      { id: 'register', action: 'catalog:register', input: { repoContentsUrl: '${{ steps.publish.output.repoContentsUrl }}', catalogInfoPath: '/catalog-info.yaml' } },
    ],
    output: {
      links: [{ title: 'Repository', url: '${{ steps.publish.output.remoteUrl }}' }, { entityRef: '${{ steps.register.output.entityRef }}', icon: 'catalog' }],
      text: [{ title: 'Done', content: 'All good' }],
    },
  });
  T('Template: parameters as one object', { parameters: { properties: { name: { type: 'string' } } } });
  T('Template: parameters empty list', { parameters: [] });
  T('Template: parameters string', { parameters: 'name' });
  T('Template: parameters list with string item', { parameters: ['name'] });
  T('Template: parameters page when integer', { parameters: [{ when: 1 }] });
  T('Template: parameters permissions tags not strings', { parameters: [{ 'backstage:permissions': { tags: [1] } }] });
  T('Template: missing steps', { steps: DEL });
  T('Template: steps empty list', { steps: [] });
  T('Template: steps mapping instead of list', { steps: { fetch: { action: 'fetch:template' } } });
  T('Template: step without action', { steps: [{ id: 'x', input: {} }] });
  T('Template: step action integer', { steps: [{ action: 1 }] });
  T('Template: step input string', { steps: [{ action: 'debug:log', input: 'x' }] });
  T('Template: step if integer', { steps: [{ action: 'debug:log', if: 1 }] });
  T('Template: step if boolean', { steps: [{ action: 'debug:log', if: false }] });
  T('Template: step id integer', { steps: [{ id: 1, action: 'debug:log' }] });
  T('Template: step each and extra keys', { steps: [{ action: 'debug:log', each: ['a'], foo: 1 }] });
  T('Template: missing type', { type: DEL });
  T('Template: type empty', { type: '' });
  T('Template: owner empty', { owner: '' });
  T('Template: owner integer', { owner: 1 });
  T('Template: owner unparseable ref', { owner: 'group:' });
  T('Template: lifecycle empty', { lifecycle: '' });
  T('Template: output extra key with string value', { output: { summary: 'x' } });
  T('Template: output extra key with non-string value', { output: { summary: 1 } });
  T('Template: output link with empty url', { output: { links: [{ url: '' }] } });
  T('Template: output text content integer', { output: { text: [{ content: 1 }] } });
  T('Template: secrets schema not a mapping', { secrets: { schema: 'x' } });
  T('Template: presentation button label integer', { presentation: { buttonLabels: { createButtonText: 1 } } });
  T('Template: formDecorators valid', { formDecorators: [{ id: 'acme:decorator', input: { a: 1 } }] });
  T('Template: formDecorators item input string', { formDecorators: [{ id: 'x', input: 'y' }] });
  T('Template: EXPERIMENTAL_recovery strategy', { EXPERIMENTAL_recovery: { EXPERIMENTAL_strategy: 'startOver' } });
  T('Template: unknown extra spec key', { foo: { bar: 1 } });
  add(f, 'Template: apiVersion backstage.io/v1beta2 (legacy)', E('Template', 'template-probe', { apiVersion: 'backstage.io/v1beta2' }));
  add(f, 'Template: apiVersion scaffolder.backstage.io/v1beta2', E('Template', 'template-probe', { apiVersion: 'scaffolder.backstage.io/v1beta2' }));
  add(f, 'Template: apiVersion backstage.io/v1alpha1', E('Template', 'template-probe', { apiVersion: 'backstage.io/v1alpha1' }));
  add(f, 'Template: kind template lower-case', E('Template', 'template-probe', { kind: 'template' }));
  add(f, 'Template: spec missing', E('Template', 'template-probe', { spec: DEL }));
}

// ---------------------------------------------------------------------------
// kinds-valid.yaml: realistic valid entities of every kind, exercising
// metadata features on each kind

{
  const f = 'kinds-valid.yaml';
  const fullSpec = {
    Component: {
      system: 'payments',
      subcomponentOf: 'checkout',
      providesApis: ['payments-api'],
      consumesApis: ['api:billing/invoices-api'],
      dependsOn: ['resource:payments-db'],
      dependencyOf: ['component:storefront'],
    },
    API: { system: 'payments', type: 'asyncapi' },
    Resource: { system: 'payments', dependsOn: ['resource:network/vpc'], dependencyOf: ['component:checkout'] },
    System: { domain: 'commerce', type: 'product' },
    Domain: { subdomainOf: 'business', type: 'product-area' },
    Group: {
      parent: 'engineering',
      children: ['payments-backend', 'payments-frontend'],
      members: ['alice', 'user:contractors/bob'],
      profile: { displayName: 'Payments', email: 'payments@example.com' },
    },
    User: { memberOf: ['payments', 'group:guilds/rust'], profile: { displayName: 'Alice', email: 'alice@example.com' } },
    Location: { type: 'url', targets: ['https://github.com/acme/a/blob/main/catalog-info.yaml', 'https://github.com/acme/b/blob/main/catalog-info.yaml'], presence: 'optional' },
    Template: {
      owner: 'payments',
      lifecycle: 'experimental',
      parameters: [{ title: 'Name', required: ['name'], properties: { name: { type: 'string' } } }],
      steps: [{ id: 'log', name: 'Log', action: 'debug:log', input: { message: 'hi' } }],
      output: { links: [{ title: 'Docs', url: 'https://example.com/docs' }] },
    },
  };
  for (const kind of ['Component', 'API', 'Resource', 'System', 'Domain', 'Group', 'User', 'Location', 'Template']) {
    const k = kind.toLowerCase();
    add(f, `${kind}: valid, minimal`, E(kind, `valid-${k}-minimal`));
    add(f, `${kind}: valid, namespace, title and description`, E(kind, `valid-${k}-described`, {
      metadata: { namespace: 'payments', title: `The ${kind}`, description: `A ${kind} used by the differential test.` },
    }));
    add(f, `${kind}: valid, labels, annotations, tags and links`, E(kind, `valid-${k}-decorated`, {
      metadata: {
        labels: { 'acme.io/tier': 'gold', team: '' },
        annotations: { 'backstage.io/techdocs-ref': 'dir:.', 'github.com/project-slug': 'acme/payments' },
        tags: ['payments', 'lang:rust', 'c++'],
        links: [{ url: 'https://example.com/runbook', title: 'Runbook', icon: 'docs' }],
      },
    }));
    if (kind === 'Template') {
      add(f, `${kind}: valid, parameters as one object`, E(kind, `valid-${k}-params`, {
        spec: { parameters: { required: ['name'], properties: { name: { type: 'string' } } } },
      }));
    } else {
      add(f, `${kind}: valid, v1beta1 apiVersion`, E(kind, `valid-${k}-beta`, { apiVersion: 'backstage.io/v1beta1' }));
    }
    add(f, `${kind}: valid, 63-character name with separators and upper case`, E(kind, `V.${rep('x', 30)}_${rep('Y', 28)}-z`));
    add(f, `${kind}: valid, all optional spec fields`, E(kind, `valid-${k}-full`, { spec: fullSpec[kind] }));
  }
}

// ---------------------------------------------------------------------------
// unknown-kinds.yaml

{
  const f = 'unknown-kinds.yaml';
  const U = (probe, kind, over) => add(f, probe, E(kind, 'unknown-probe', over));
  U('unknown kind: Widget with backstage.io apiVersion', 'Widget');
  U('unknown kind: Widget with own apiVersion', 'Widget', { apiVersion: 'acme.io/v1' });
  U('unknown kind: Widget without spec', 'Widget', { spec: DEL });
  U('unknown kind: Widget with invalid name (policy runs first)', 'Widget', { metadata: { name: 'Bad Name' } });
  U('unknown kind: Widget with unknown root field (policy runs first)', 'Widget', { extra: 1 });
  U('unknown kind: Resource2', 'Resource2');
  U('unknown kind: Service', 'Service');
  U('unknown kind: Team', 'Team');
  U('unknown kind: Environment (alpha, not built in)', 'Environment');
  U('unknown kind: Capability (alpha, not built in)', 'Capability');
  U('unknown kind: AiResource (alpha, not built in)', 'AiResource', { apiVersion: 'backstage.io/v1alpha1' });
  U('unknown kind: Template kind with backstage.io apiVersion', 'Template', { apiVersion: 'backstage.io/v1beta1' });
  U('unknown kind: Component with scaffolder apiVersion', 'Component', { apiVersion: 'scaffolder.backstage.io/v1beta3' });
  U('unknown kind: kind with digits', 'Kind42');
  U('unknown kind: kind with underscore', 'My_Kind');
  U('unknown kind: single letter kind', 'X');
  U('unknown kind: lower-case kind', 'widget');
  U('unknown kind: apiVersion v1 only', 'Widget', { apiVersion: 'v1' });
  U('unknown kind: ComponentV2', 'ComponentV2');
  U('unknown kind: Users (plural)', 'Users');
  U('unknown kind: Apis', 'Apis');
  U('unknown kind: Location-like kind Locations', 'Locations');
}

// ---------------------------------------------------------------------------
// refs.yaml: entity references in relation fields, with and without kind/namespace

{
  const f = 'refs.yaml';
  const O = (probe, owner) => add(f, probe, S('Component', 'refs-probe', { owner }));
  O('ref: owner name only', 'team-a');
  O('ref: owner kind and name', 'group:team-a');
  O('ref: owner kind, namespace and name', 'group:platform/team-a');
  O('ref: owner namespace and name', 'platform/team-a');
  O('ref: owner mixed case', 'Group:Platform/Team-A');
  O('ref: owner user kind', 'user:jdoe');
  O('ref: owner foreign kind', 'component:other');
  O('ref: owner empty kind', ':team-a');
  O('ref: owner empty name after kind', 'group:');
  O('ref: owner empty namespace', 'group:/team-a');
  O('ref: owner empty name after namespace', 'platform/');
  O('ref: owner two colons', 'group:a:b');
  O('ref: owner slash before colon', 'platform/team:a');
  O('ref: owner two slashes', 'group:a/b/c');
  O('ref: owner with spaces (no character validation in refs)', 'team a');
  O('ref: owner whitespace only', ' ');
  O('ref: owner non-ASCII', 'équipe');
  O('ref: owner with upper-case name', 'TEAM-A');
  O('ref: owner with kind only and slash', 'group:/');
  const D = (probe, dependsOn) => add(f, probe, S('Component', 'refs-probe', { dependsOn }));
  D('ref: dependsOn with kind', ['resource:db']);
  D('ref: dependsOn with kind and namespace', ['resource:data/db']);
  D('ref: dependsOn namespace/name without kind', ['data/db']);
  D('ref: dependsOn name only', ['db']);
  D('ref: dependsOn one good one bad', ['resource:db', 'cache']);
  D('ref: dependsOn empty kind', [':db']);
  add(f, 'ref: system with namespace', S('Component', 'refs-probe', { system: 'biz/payments' }));
  add(f, 'ref: subcomponentOf with kind', S('Component', 'refs-probe', { subcomponentOf: 'component:parent' }));
  add(f, 'ref: subcomponentOf empty kind', S('Component', 'refs-probe', { subcomponentOf: ':parent' }));
  add(f, 'ref: providesApis mixed forms', S('Component', 'refs-probe', { providesApis: ['a', 'api:b', 'ns/c', 'api:ns/d'] }));
  add(f, 'ref: consumesApis empty name', S('Component', 'refs-probe', { consumesApis: ['api:ns/'] }));
  add(
    f,
    'ref: entity in a namespace, owner without namespace',
    E('Component', 'refs-probe', { metadata: { namespace: 'platform' }, spec: { owner: 'team-a' } }),
  );
  add(f, 'ref: mixed-case kind and name give a lower-case ref', E('Component', 'Refs-Probe-UPPER'));
  add(f, 'ref: mixed-case unknown kind (ref still computed)', E('WidGet', 'Some-Name'));
  add(f, 'ref: namespace upper-case (ref lower-cased, entity invalid)', E('Component', 'x', { metadata: { namespace: 'Prod' } }));
}

// ---------------------------------------------------------------------------
// types.yaml: YAML scalar typing (YAML 1.2 core schema, as `yaml` v2 parses)

{
  const f = 'types.yaml';
  const head = (kind = 'Component') => `apiVersion: ${defaultApiVersion(kind)}\nkind: ${kind}\n`;
  const spec = '  type: service\n  lifecycle: production\n  owner: team-a\n';
  const comp = (meta, specText = spec) => `${head()}metadata:\n${meta}spec:\n${specText}`;
  add(f, 'types: name plain integer', comp('  name: 123\n'));
  add(f, 'types: name quoted integer', comp("  name: '123'\n"));
  add(f, 'types: name !!str integer', comp('  name: !!str 123\n'));
  add(f, 'types: name float', comp('  name: 1.5\n'));
  add(f, 'types: name exponent', comp('  name: 1e3\n'));
  add(f, 'types: name hex integer', comp('  name: 0x1F\n'));
  add(f, 'types: name octal 0o', comp('  name: 0o17\n'));
  add(f, 'types: name leading-zero digits (YAML 1.2: integer)', comp('  name: 0123\n'));
  add(f, 'types: name yes (YAML 1.2: string)', comp('  name: yes\n'));
  add(f, 'types: name on (YAML 1.2: string)', comp('  name: on\n'));
  add(f, 'types: name True (YAML 1.2 core: boolean)', comp('  name: True\n'));
  add(f, 'types: name tilde (null)', comp('  name: ~\n'));
  add(f, 'types: name empty value (null)', comp('  name:\n'));
  add(f, 'types: name Null (null in core schema)', comp('  name: Null\n'));
  add(f, 'types: name date-like (YAML 1.2: string)', comp('  name: 2024-01-31\n'));
  add(f, 'types: name .inf', comp('  name: .inf\n'));
  add(f, 'types: name with underscores in digits (string in YAML 1.2)', comp('  name: 1_000\n'));
  add(f, 'types: annotation value yes (string)', comp("  name: types-a\n  annotations:\n    acme.io/flag: yes\n"));
  add(f, 'types: annotation value true (boolean)', comp("  name: types-a\n  annotations:\n    acme.io/flag: true\n"));
  add(f, "types: annotation value 'true' (quoted string)", comp("  name: types-a\n  annotations:\n    acme.io/flag: 'true'\n"));
  add(f, 'types: annotation value date-like (string)', comp('  name: types-a\n  annotations:\n    acme.io/since: 2024-01-31\n'));
  add(f, 'types: annotation value .nan', comp('  name: types-a\n  annotations:\n    acme.io/x: .nan\n'));
  add(f, 'types: annotation value 0x10', comp('  name: types-a\n  annotations:\n    acme.io/x: 0x10\n'));
  add(f, 'types: annotation value ~', comp('  name: types-a\n  annotations:\n    acme.io/x: ~\n'));
  add(f, 'types: annotation value block literal', comp('  name: types-a\n  annotations:\n    acme.io/x: |\n      multi\n      line\n'));
  add(f, 'types: annotation value folded', comp('  name: types-a\n  annotations:\n    acme.io/x: >-\n      folded\n      text\n'));
  add(f, 'types: label value date-like (string, valid label value)', comp('  name: types-a\n  labels:\n    since: 2024-01-31\n'));
  add(f, 'types: label value integer', comp('  name: types-a\n  labels:\n    version: 2\n'));
  add(f, 'types: label value quoted integer', comp("  name: types-a\n  labels:\n    version: '2'\n"));
  add(f, 'types: label value no (string in YAML 1.2)', comp('  name: types-a\n  labels:\n    enabled: no\n'));
  add(f, 'types: label key integer', comp('  name: types-a\n  labels:\n    1: a\n'));
  add(f, 'types: annotation key boolean', comp('  name: types-a\n  annotations:\n    true: a\n'));
  add(f, 'types: tags yes/no/on/off (strings)', comp('  name: types-a\n  tags: [yes, no, on, off]\n'));
  add(f, 'types: tags date-like (string)', comp('  name: types-a\n  tags: [2024-01-31]\n'));
  add(f, 'types: tags integer', comp('  name: types-a\n  tags: [42]\n'));
  add(f, 'types: tags float', comp('  name: types-a\n  tags: [1.0]\n'));
  add(f, 'types: spec.owner integer', comp('  name: types-a\n', '  type: service\n  lifecycle: production\n  owner: 3\n'));
  add(f, 'types: spec.owner tilde', comp('  name: types-a\n', '  type: service\n  lifecycle: production\n  owner: ~\n'));
  add(f, 'types: spec.lifecycle yes (string)', comp('  name: types-a\n', '  type: service\n  lifecycle: yes\n  owner: team-a\n'));
  add(f, 'types: spec.type !!int-tagged', comp('  name: types-a\n', '  type: !!int "5"\n  lifecycle: production\n  owner: team-a\n'));
  add(f, 'types: spec.type unknown local tag', comp('  name: types-a\n', '  type: !custom service\n  lifecycle: production\n  owner: team-a\n'));
  add(f, 'types: kind !!str-tagged', `apiVersion: backstage.io/v1alpha1\nkind: !!str Component\nmetadata:\n  name: types-a\nspec:\n${spec}`);
  add(f, 'types: apiVersion with quoted scalar', `apiVersion: "backstage.io/v1alpha1"\nkind: 'Component'\nmetadata:\n  name: "types-a"\nspec:\n${spec}`);
  add(f, 'types: whole entity in flow style', '{apiVersion: backstage.io/v1alpha1, kind: Component, metadata: {name: types-flow}, spec: {type: service, lifecycle: production, owner: team-a}}\n');
  add(f, 'types: whole entity as JSON', '{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "types-json"}, "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}}\n');
  add(f, 'types: escaped unicode in double-quoted name', `${head()}metadata:\n  name: "caf\\u00e9"\nspec:\n${spec}`);
  add(f, 'types: double-quoted name with escaped tab', `${head()}metadata:\n  name: "a\\tb"\nspec:\n${spec}`);
}

// ---------------------------------------------------------------------------
// unicode.yaml

{
  const f = 'unicode.yaml';
  const C = (probe, over, kind = 'Component') => add(f, probe, E(kind, 'unicode-probe', over));
  C('unicode: description with emoji and CJK', { metadata: { description: 'Payments 💳 決済サービス' } });
  C('unicode: title in Cyrillic', { metadata: { title: 'Платёжный сервис' } });
  C('unicode: annotation value with emoji', { metadata: { annotations: { 'acme.io/mood': '🙂' } } });
  C('unicode: name with accented letter', { metadata: { name: 'café' } });
  C('unicode: name with German sharp s', { metadata: { name: 'straße' } });
  C('unicode: name in CJK', { metadata: { name: '決済' } });
  C('unicode: name fullwidth letters', { metadata: { name: 'ａｂｃ' } });
  C('unicode: name with zero-width space', { metadata: { name: 'a\u200bb' } });
  C('unicode: name with combining accent', { metadata: { name: 'e\u0301' } });
  C('unicode: name emoji', { metadata: { name: '🚀' } });
  C('unicode: name Kelvin sign (lower-cases to k)', { metadata: { name: '\u212a' } });
  C('unicode: name dotted capital I', { metadata: { name: '\u0130' } });
  C('unicode: namespace with accented letter', { metadata: { namespace: 'équipe' } });
  C('unicode: label value non-ASCII', { metadata: { labels: { team: 'ü' } } });
  C('unicode: label key prefix IDN (unicode)', { metadata: { labels: { 'bücher.de/x': 'a' } } });
  C('unicode: label key prefix punycode', { metadata: { labels: { 'xn--bcher-kva.de/x': 'a' } } });
  C('unicode: tag non-ASCII', { metadata: { tags: ['日本'] } });
  C('unicode: link title non-ASCII', { metadata: { links: [{ url: 'https://example.com', title: 'Доки' }] } });
  C('unicode: owner ref non-ASCII (no character validation)', { spec: { owner: 'グループ' } });
  C('unicode: kind with non-ASCII letter', { kind: 'Compönent' });
  C('unicode: spec type non-ASCII', { spec: { type: 'сервис' } });
  C('unicode: name in Greek capital with final sigma context', { metadata: { name: 'ΟΔΟΣ' } }, 'Group');
  C('unicode: Template description with emoji', { metadata: { description: '✨ New service' } }, 'Template');
  C('unicode: User displayName non-ASCII', { spec: { profile: { displayName: 'Zoë Ångström' } } }, 'User');
}

// ---------------------------------------------------------------------------
// structure.yaml: document-level structure (empty docs, non-mapping roots,
// anchors, merge keys, duplicate keys, tags) ending with a syntax error

{
  const f = 'structure.yaml';
  const valid = name =>
    `apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ${name}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n`;
  add(f, 'structure: valid document first', valid('structure-a'));
  add(f, 'structure: empty document (comment only; produces no result)', '');
  add(f, 'structure: explicit null document (produces no result)', 'null\n');
  add(f, 'structure: tilde document (produces no result)', '~\n');
  add(f, 'structure: valid document after empty ones (index counts them)', valid('structure-b'));
  add(f, 'structure: plain string root', 'just a string\n');
  add(f, 'structure: integer root', '42\n');
  add(f, 'structure: boolean root', 'true\n');
  add(f, 'structure: sequence root', '- apiVersion: backstage.io/v1alpha1\n  kind: Component\n');
  add(f, 'structure: empty sequence root', '[]\n');
  add(f, 'structure: empty mapping root', '{}\n');
  add(f, 'structure: mapping with only apiVersion', 'apiVersion: backstage.io/v1alpha1\n');
  add(f, 'structure: duplicate key in root mapping', `${valid('structure-dup')}kind: API\n`);
  add(f, 'structure: duplicate key in metadata', 'apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: a\n  name: b\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n');
  add(
    f,
    'structure: anchor and alias for spec',
    'apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: structure-alias\n  annotations:\n    acme.io/spec-copy: &owner team-a\nspec:\n  type: service\n  lifecycle: production\n  owner: *owner\n',
  );
  add(
    f,
    'structure: merge key << is NOT applied (merge off): spec keeps a literal << key',
    'apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: structure-merge\n  defaults: &d\n    type: service\n    lifecycle: production\n    owner: team-a\nspec:\n  <<: *d\n',
  );
  add(
    f,
    'structure: merge key << in labels (literal key is an invalid label key)',
    'apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: structure-merge-labels\n  x: &l\n    a: b\n  labels:\n    <<: *l\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n',
  );
  add(f, 'structure: unknown local tag on the root mapping (warning only)', `!Entity\n${valid('structure-tagged')}`);
  add(f, 'structure: explicit !!map tag on root', `!!map\n${valid('structure-map')}`);
  add(f, 'structure: document end marker ... after a valid document', `${valid('structure-end')}...\n`);
  add(f, 'structure: complex (non-scalar) mapping key', '? [a, b]\n: c\n');
  add(f, 'structure: key with trailing spaces and comments', `${valid('structure-comments')}# trailing comment\n`);
  add(f, 'structure: indentation with tabs (syntax error)', 'apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n\tname: tabbed\n');
  add(f, 'structure: valid document after a bad one', valid('structure-c'));
  add(f, 'structure: unclosed flow sequence in the last document (syntax error)', 'apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: broken\n  tags: [a, b\n');
}

// ---------------------------------------------------------------------------
// files whose raw bytes matter

const rawFiles = new Map();

{
  // A file starting with a UTF-8 byte order mark.
  const doc = n =>
    `apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ${n}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n`;
  rawFiles.set(
    'bom.yaml',
    `\ufeff# probe: file starts with a UTF-8 BOM; first document valid\n${doc('bom-a')}---\n# probe: second document after BOM file start\n${doc('bom-b')}`,
  );
  // CRLF line endings throughout.
  rawFiles.set(
    'crlf.yaml',
    `# probe: CRLF line endings, valid Component\n${doc('crlf-a')}---\n# probe: CRLF line endings, invalid name\n${doc('Crlf B')}---\n# probe: CRLF line endings, block literal definition\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: crlf-api\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition: |\n    openapi: 3.0.0\n    info: {}\n`.replace(/\n/g, '\r\n'),
  );
  // A file with a trailing document separator (a final empty document).
  rawFiles.set(
    'trailing-separator.yaml',
    `# probe: valid document followed by a trailing --- (final empty document)\n${doc('trailing-a')}---\n# probe: second valid document\n${doc('trailing-b')}---\n`,
  );
  // A file that is empty except for comments: no documents at all.
  rawFiles.set('comments-only.yaml', '# probe: a file with only comments produces no results\n# nothing else here\n');
  // The %YAML 1.1 directive switches the `yaml` package to the YAML 1.1 schema
  // (yes/no booleans, timestamps, 0-prefixed octal) for the rest of the stream.
  rawFiles.set(
    'yaml11.yaml',
    `# probe: %YAML 1.1 directive; annotation value yes becomes a boolean\n%YAML 1.1\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: yaml11-a\n  annotations:\n    acme.io/flag: yes\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n---\n# probe: second document after a %YAML 1.1 directive; quoted values stay strings\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: yaml11-b\n  annotations:\n    acme.io/flag: 'yes'\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n---\n# probe: under YAML 1.1 a << merge key is applied even with merging off\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: yaml11-merge\n  x: &d\n    type: service\n    lifecycle: production\n    owner: team-a\nspec:\n  <<: *d\n`,
  );
  // Anchors and aliases: per document, and under the `yaml` package's alias budget
  // (maxAliasCount 100, each use weighted by the aliases inside its target).
  const comp = (n, extra = '') =>
    `apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ${n}\n${extra}spec: &spec\n  type: service\n  lifecycle: production\n  owner: team-a\n`;
  const uses = (n, target) => Array.from({ length: n }, (_, i) => `    k${i}: *${target}\n`).join('');
  rawFiles.set(
    'aliases.yaml',
    [
      `# probe: an anchor defined for the next document\n${comp('alias-a')}`,
      '# probe: alias to an anchor of the previous document\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: alias-b\nspec: *spec\n',
      '# probe: alias that was never defined\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: alias-c\n  annotations:\n    acme.io/x: *nowhere\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n',
      `# probe: 99 weighted alias uses are within the budget (the anchor counts as one)\n${comp('alias-d', `  x: &l [1, 2]\n  labels: {}\n  y:\n${uses(98, 'l')}`)}`,
      `# probe: nested aliases weigh by their target's uses (8 x 11 fits)\n${comp('alias-e', `  x: &l [1]\n  y: &m [${'*l, '.repeat(10)}]\n  z: [${'*m, '.repeat(8)}]\n`)}`,
      `# probe: block nesting 300 levels deep\n${comp('alias-f', `  annotations:\n    acme.io/a: x\n  deep:\n${Array.from({ length: 300 }, (_, i) => `${' '.repeat(4 + i)}k:\n`).join('')}${' '.repeat(304)}v\n`)}`,
      `# probe: the 100th weighted alias use stops the file (resource exhaustion)\n${comp('alias-g', `  x: &l [1, 2]\n  y:\n${uses(100, 'l')}`)}`,
      `# probe: never read: after an alias bomb the reader gives up on the file\n${comp('alias-h')}`,
    ].join('---\n'),
  );
  // Syntax errors: reading resumes at the next document.
  rawFiles.set(
    'syntax-resume.yaml',
    [
      `# probe: valid before a syntax error\n${comp('resume-a')}`,
      '# probe: a mapping value where none is allowed\na: b: c\n',
      `# probe: valid after a syntax error\n${comp('resume-b')}`,
      '# probe: an unclosed flow mapping\nmetadata: {name: x\n',
      `# probe: valid after an unclosed flow collection\n${comp('resume-c')}`,
      '# probe: invalid escape in a double-quoted scalar\nkind: "\\q"\n',
      `# probe: valid after a bad escape\n${comp('resume-d')}`,
    ].join('---\n'),
  );
  // A single-document file whose only document is a syntax error.
  rawFiles.set(
    'syntax-error-only.yaml',
    '# probe: the only document has an unterminated double-quoted scalar\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: "unterminated\n',
  );
}

// ---------------------------------------------------------------------------
// write

mkdirSync(outDir, { recursive: true });
for (const name of readdirSync(outDir)) {
  if (name.endsWith('.yaml')) unlinkSync(join(outDir, name));
}
let total = 0;
for (const [name, docs] of files) {
  const header = `# Rigger differential-test corpus (generated by tests/backstage/make-corpus.mjs; do not edit)\n# file: ${name}\n`;
  writeFileSync(join(outDir, name), header + docs.map(d => `---\n${d}`).join(''));
  total += docs.length;
}
for (const [name, text] of rawFiles) {
  writeFileSync(join(outDir, name), text);
}
process.stderr.write(`wrote ${files.size + rawFiles.size} files, ${total}+ documents to ${outDir}\n`);
