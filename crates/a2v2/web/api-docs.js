// The API reference page: renders the server's own OpenAPI document (/openapi.json) from the
// embedded assets, so it works offline and always matches the running server.

import { clear, emptyState, errorPanel, h, loadingRow, pageHeader } from '/assets/ui.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

export async function renderApiDocs(ctx) {
  const { main } = ctx;
  const body = h('div', { class: 'api-docs' }, loadingRow());
  main.append(pageHeader({
    title: 'API reference',
    subtitle: 'Every endpoint of the public API (/v1) and the management API (/api), with its parameters, permissions, responses and error codes.',
    actions: h('a', { class: 'btn btn-secondary', href: '/openapi.json', download: 'a2v2-openapi.json' }, 'Download OpenAPI document'),
  }), body);

  let doc;
  try {
    const response = await fetch('/openapi.json', { headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`The OpenAPI document could not be loaded (HTTP ${response.status}).`);
    doc = await response.json();
  } catch (err) {
    if (ctx.isCurrent()) clear(body, errorPanel(err));
    return;
  }
  if (!ctx.isCurrent()) return;

  const operations = collect(doc);
  const filter = h('input', {
    type: 'search', class: 'api-docs-filter', placeholder: 'Filter by path, method or tag',
    'aria-label': 'Filter endpoints',
  });
  const list = h('div', { class: 'api-docs-list' });
  const draw = () => {
    const needle = filter.value.trim().toLowerCase();
    const shown = operations.filter((op) => !needle || op.search.includes(needle));
    if (shown.length === 0) {
      clear(list, emptyState({ iconName: 'info', title: 'No endpoint matches the filter.' }));
      return;
    }
    const byTag = new Map();
    for (const op of shown) {
      if (!byTag.has(op.tag)) byTag.set(op.tag, []);
      byTag.get(op.tag).push(op);
    }
    clear(list, [...byTag].map(([tag, ops]) => h('section', { class: 'card api-docs-group' },
      h('h2', { class: 'api-docs-tag' }, tag),
      tagDescription(doc, tag),
      ops.map((op) => operationView(doc, op)))));
  };
  filter.addEventListener('input', draw);
  clear(body,
    h('section', { class: 'card api-docs-intro' },
      h('p', {}, doc.info?.description || ''),
      h('p', { class: 'muted' }, `OpenAPI ${doc.openapi} · version ${doc.info?.version || ''}`),
      securityList(doc)),
    filter,
    list);
  draw();
}

function collect(doc) {
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || 'Other';
      ops.push({
        path, method, op, tag,
        search: `${method} ${path} ${tag} ${op.summary || ''}`.toLowerCase(),
      });
    }
  }
  return ops;
}

function tagDescription(doc, tag) {
  const found = (doc.tags || []).find((t) => t.name === tag);
  return found?.description ? h('p', { class: 'muted' }, found.description) : null;
}

function securityList(doc) {
  const schemes = doc.components?.securitySchemes || {};
  const names = Object.keys(schemes);
  if (names.length === 0) return null;
  return h('div', {},
    h('h2', { class: 'api-docs-subheading' }, 'Authentication'),
    h('ul', { class: 'api-docs-security' }, names.map((name) => {
      const s = schemes[name];
      const where = s.type === 'http' ? `HTTP ${s.scheme}` : `${s.in} “${s.name}”`;
      return h('li', {}, h('code', {}, name), ` — ${where}: `, s.description || '');
    })));
}

function operationView(doc, { path, method, op }) {
  const details = h('details', { class: 'api-op', id: op.operationId || undefined });
  const summary = h('summary', { class: 'api-op-summary' },
    h('span', { class: `api-method api-method-${method}` }, method.toUpperCase()),
    h('code', { class: 'api-path' }, path),
    h('span', { class: 'api-op-title' }, firstLine(op.summary || op.description || '')));
  details.append(summary);
  // The body is built on first opening: the document has many operations.
  details.addEventListener('toggle', () => {
    if (!details.open || details.dataset.built) return;
    details.dataset.built = '1';
    details.append(operationBody(doc, op));
  });
  return details;
}

function firstLine(text) {
  return text.split('\n')[0].replace(/`/g, '');
}

function operationBody(doc, op) {
  const parts = [];
  if (op.description) parts.push(h('p', { class: 'api-op-description' }, op.description));
  parts.push(h('p', { class: 'muted' }, 'Authentication: ', securityText(op.security)));
  if (op.parameters?.length) {
    parts.push(h('h3', { class: 'api-docs-subheading' }, 'Parameters'),
      h('table', { class: 'table api-table' },
        h('thead', {}, h('tr', {}, ['Name', 'In', 'Type', 'Description'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, op.parameters.map((p) => h('tr', {},
          h('td', {}, h('code', {}, p.name), p.required ? h('span', { class: 'api-required' }, ' required') : null),
          h('td', {}, p.in),
          h('td', {}, typeText(doc, p.schema)),
          h('td', {}, p.description || ''))))));
  }
  const requestBody = op.requestBody?.content?.['application/json'];
  if (requestBody) {
    parts.push(h('h3', { class: 'api-docs-subheading' }, 'Request body (application/json)'),
      schemaView(doc, requestBody.schema));
    const example = requestBody.example ?? resolve(doc, requestBody.schema)?.example;
    if (example !== undefined) parts.push(codeBlock(example));
  }
  parts.push(h('h3', { class: 'api-docs-subheading' }, 'Responses'));
  for (const [status, response] of Object.entries(op.responses || {})) {
    const content = response.content || {};
    const json = content['application/json'];
    parts.push(h('div', { class: `api-response api-response-${status[0]}xx` },
      h('p', {}, h('strong', {}, status), ' ', contentTypes(content)),
      h('p', { class: 'api-response-description' }, response.description || ''),
      json?.schema ? h('p', { class: 'muted' }, 'Body: ', typeText(doc, json.schema)) : null,
      json?.examples ? Object.entries(json.examples).map(([code, ex]) => h('div', {},
        h('p', { class: 'api-example-name' }, h('code', {}, code)), codeBlock(ex.value))) : null,
      headersText(response.headers)));
  }
  return h('div', { class: 'api-op-body' }, parts);
}

function securityText(security) {
  if (!security || security.length === 0) return 'none';
  return security.map((req) => Object.keys(req).join(' + ')).join(' or ');
}

function contentTypes(content) {
  const types = Object.keys(content);
  return types.length ? h('span', { class: 'muted' }, types.join(', ')) : null;
}

function headersText(headers) {
  const names = Object.keys(headers || {}).filter((n) => n !== 'X-Request-Id');
  if (names.length === 0) return null;
  return h('p', { class: 'muted' }, 'Headers: ', names.map((n) => h('code', {}, n)).reduce((acc, el) => (acc.length ? [...acc, ', ', el] : [el]), []));
}

function codeBlock(value) {
  return h('pre', { class: 'api-code' }, h('code', {}, JSON.stringify(value, null, 2)));
}

function refName(schema) {
  return schema?.$ref ? schema.$ref.split('/').pop() : null;
}

function resolve(doc, schema, depth = 0) {
  if (!schema || depth > 8) return schema;
  const name = refName(schema);
  return name ? resolve(doc, doc.components?.schemas?.[name], depth + 1) : schema;
}

// A short type name: `string (date-time)`, `array of Contact`, `Contact or null`.
function typeText(doc, schema, depth = 0) {
  if (!schema) return 'any';
  const name = refName(schema);
  if (name) return name;
  if (depth > 4) return 'object';
  const alternatives = schema.oneOf || schema.anyOf;
  if (alternatives) return alternatives.map((s) => typeText(doc, s, depth + 1)).join(' or ');
  if (schema.allOf) return schema.allOf.map((s) => typeText(doc, s, depth + 1)).join(' and ');
  const types = Array.isArray(schema.type) ? schema.type : [schema.type || 'object'];
  return types.map((t) => {
    if (t === 'array') return `array of ${typeText(doc, schema.items, depth + 1)}`;
    if (schema.enum && t !== 'null') return `${t}: ${schema.enum.filter((v) => v !== null).join(' | ')}`;
    return schema.format && t !== 'null' ? `${t} (${schema.format})` : t;
  }).join(' or ');
}

// The properties of an object schema as a table; nested references name their schema.
function schemaView(doc, schema) {
  const resolved = resolve(doc, schema);
  const props = resolved?.properties;
  if (!props) return h('p', {}, typeText(doc, schema));
  const required = new Set(resolved.required || []);
  return h('table', { class: 'table api-table' },
    h('thead', {}, h('tr', {}, ['Field', 'Type', 'Description'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, Object.entries(props).map(([name, prop]) => h('tr', {},
      h('td', {}, h('code', {}, name), required.has(name) ? h('span', { class: 'api-required' }, ' required') : null),
      h('td', {}, typeText(doc, prop), limits(prop)),
      h('td', {}, prop.description || '')))));
}

function limits(schema) {
  const notes = [];
  if (schema.minLength !== undefined) notes.push(`min ${schema.minLength} chars`);
  if (schema.maxLength !== undefined) notes.push(`max ${schema.maxLength} chars`);
  if (schema.maxItems !== undefined) notes.push(`max ${schema.maxItems} items`);
  return notes.length ? h('span', { class: 'muted' }, ` (${notes.join(', ')})`) : null;
}
