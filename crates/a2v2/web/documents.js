// The Documents pages: an agent's documents with their extraction status, uploads with a
// progress bar (admins), and one document's text page by page beside the fields and contacts
// found in it, where admins correct fields.

import { api, enc, query, upload } from '/assets/api.js';
import {
  agentEyebrow, busy, button, clear, confirmDialog, emptyState, errorToast, field, formAlert, h, icon,
  loadingRow, openModal, pageHeader, timeEl, toast,
} from '/assets/ui.js';

const STATUS = {
  processing: ['Processing', 'badge-warning'],
  succeeded: ['Ready', 'badge-success'],
  failed: ['Failed', 'badge-danger'],
};

const CATEGORIES = [
  ['emails', 'Emails'],
  ['phones', 'Phones'],
  ['urls', 'URLs'],
  ['dates', 'Dates'],
  ['amounts', 'Amounts'],
  ['key_values', 'Labelled values'],
];

// While a document is processing, the page looks again this often.
const POLL_MS = 1500;

function statusBadge(doc) {
  const [label, cls] = STATUS[doc.status] || [doc.status, 'badge-neutral'];
  return h('span', { class: `badge ${cls}`, title: doc.error?.message || null }, label);
}

function formatBytes(n) {
  if (typeof n !== 'number') return '—';
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function documentPath(agent, id) {
  return `/agents/${enc(agent.id)}/documents/${enc(id)}`;
}

// ---- the list -----------------------------------------------------------------------------

export async function renderDocuments(ctx) {
  const { main, agent, canManage } = ctx;
  const card = h('section', { class: 'card', 'aria-labelledby': 'page-heading' });
  const progress = h('div', { class: 'upload-progress', hidden: true });
  let actions = null;
  if (canManage) {
    const input = h('input', { type: 'file', class: 'visually-hidden', id: 'document-file', tabindex: '-1' });
    const uploadButton = button('Upload document', { variant: 'primary', iconName: 'plus' });
    uploadButton.addEventListener('click', () => input.click());
    input.addEventListener('change', () => {
      const file = input.files[0];
      input.value = '';
      if (file) busy(uploadButton, () => uploadFile(ctx, file, progress));
    });
    actions = [input, uploadButton];
  }
  main.append(pageHeader({
    eyebrow: agentEyebrow(agent, 'Documents'),
    title: 'Documents',
    subtitle: 'Files uploaded to this agent, with the text and fields extracted from them.',
    actions,
  }), progress, card);
  await loadList(ctx, card);
}

async function uploadFile(ctx, file, progress) {
  const bar = h('div', { class: 'upload-bar' });
  const label = h('span', {}, `Uploading ${file.name}…`);
  clear(progress, label, h('div', {
    class: 'upload-track', role: 'progressbar', 'aria-label': `Uploading ${file.name}`,
    'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0',
  }, bar));
  progress.hidden = false;
  const track = progress.querySelector('[role="progressbar"]');
  try {
    const doc = await upload(`/api/agents/${enc(ctx.agent.id)}/documents`, file, (fraction) => {
      const percent = Math.round(fraction * 100);
      bar.style.width = `${percent}%`;
      track.setAttribute('aria-valuenow', String(percent));
      if (percent === 100) label.textContent = `Extracting ${file.name}…`;
    });
    progress.hidden = true;
    if (!ctx.isCurrent()) return;
    if (doc.status === 'failed') toast(`${file.name} was stored, but its text could not be extracted.`, { variant: 'error', detail: doc.error?.message });
    else toast(doc.status === 'processing' ? `${file.name} uploaded; extraction continues in the background.` : `${file.name} uploaded.`);
    await loadList(ctx, ctx.main.querySelector('section.card'));
  } catch (err) {
    progress.hidden = true;
    errorToast(err);
  }
}

async function loadList(ctx, card) {
  const { agent } = ctx;
  const rows = [];
  let cursor = null;
  const tbody = h('tbody');
  const more = button('Load more', { onClick: () => busy(more, loadPage) });
  const footer = h('div', { class: 'table-footer' }, more);
  let timer = null;

  async function loadPage() {
    const page = await api('GET', `/api/agents/${enc(agent.id)}/documents${query({ limit: 50, cursor })}`);
    if (!ctx.isCurrent()) return;
    rows.push(...page.data);
    cursor = page.has_more ? page.next_cursor : null;
    if (rows.length === 0) {
      clear(card, emptyState({
        iconName: 'file', title: 'No documents yet.',
        text: ctx.canManage
          ? 'Upload a PDF, Word, HTML, text, CSV, e-mail or image file, or let an integration upload them with an API key that has Document Extraction Access.'
          : 'Documents appear here when an integration uploads them with an API key that has Document Extraction Access.',
      }));
      return;
    }
    for (const doc of page.data) tbody.append(row(doc));
    footer.hidden = !cursor;
    if (!tbody.isConnected) {
      clear(card, h('table', { class: 'table documents-table' },
        h('thead', {}, h('tr', {}, ['File', 'Status', 'Type', 'Size', 'Pages', 'Uploaded']
          .map((title) => h('th', { scope: 'col' }, title)))),
        tbody), footer);
    }
    // Refresh the rows still processing until none is left.
    if (rows.some((d) => d.status === 'processing') && !timer) {
      timer = setTimeout(refresh, POLL_MS);
    }
  }

  function row(doc) {
    return h('tr', { dataset: { id: doc.id } },
      h('td', {}, h('a', { class: 'row-title-link', href: documentPath(agent, doc.id) }, icon('file'), doc.filename || doc.id)),
      h('td', {}, statusBadge(doc)),
      h('td', { class: 'muted' }, doc.content_type),
      h('td', {}, formatBytes(doc.size_bytes)),
      h('td', {}, doc.page_count ?? '—', doc.ocr ? h('span', { class: 'badge badge-neutral ocr-badge' }, 'OCR') : null),
      h('td', {}, timeEl(doc.created_at)));
  }

  async function refresh() {
    timer = null;
    if (!ctx.isCurrent() || !card.isConnected) return;
    const pending = rows.filter((d) => d.status === 'processing');
    for (const old of pending) {
      let doc;
      try {
        doc = await api('GET', `/api/agents/${enc(agent.id)}/documents/${enc(old.id)}`);
      } catch {
        continue;
      }
      if (!ctx.isCurrent()) return;
      rows[rows.indexOf(old)] = doc;
      tbody.querySelector(`tr[data-id="${CSS.escape(doc.id)}"]`)?.replaceWith(row(doc));
    }
    if (rows.some((d) => d.status === 'processing')) timer = setTimeout(refresh, POLL_MS);
  }

  clear(card, loadingRow());
  await loadPage();
}

// ---- one document -------------------------------------------------------------------------

export async function renderDocument(ctx, documentId) {
  const { main, agent } = ctx;
  const path = `/api/agents/${enc(agent.id)}/documents/${enc(documentId)}`;
  clear(main, loadingRow());
  let doc = await api('GET', path);
  if (!ctx.isCurrent()) return;

  const draw = () => {
    clear(main);
    const actions = [
      h('a', { class: 'btn btn-secondary', href: `${path}/file`, download: doc.filename || 'document' },
        h('span', { class: 'btn-label' }, 'Download')),
    ];
    if (ctx.canManage) {
      const again = button('Extract again', { disabled: doc.status === 'processing' });
      again.addEventListener('click', () => busy(again, async () => {
        try {
          doc = await api('POST', `${path}/extract`);
          if (!ctx.isCurrent()) return;
          toast(doc.status === 'processing' ? 'Extraction started.' : 'Extraction finished.');
          draw();
          poll();
        } catch (err) {
          errorToast(err);
        }
      }));
      const remove = button('Delete', { variant: 'ghost-danger', iconName: 'trash' });
      remove.addEventListener('click', () => confirmDialog({
        title: 'Delete document',
        message: h('p', {}, `“${doc.filename || doc.id}” and its text and fields will be permanently deleted.`),
        confirmLabel: 'Delete document',
        successMessage: 'Document deleted.',
        onConfirm: async () => {
          await api('DELETE', path);
          history.pushState(null, '', `/agents/${enc(agent.id)}/documents`);
          window.dispatchEvent(new PopStateEvent('popstate'));
        },
      }));
      actions.push(again, remove);
    }
    main.append(pageHeader({
      eyebrow: h('span', {}, agentEyebrow(agent, 'Documents'), ' ',
        h('a', { href: `/agents/${enc(agent.id)}/documents` }, '← All documents')),
      title: doc.filename || doc.id,
      subtitle: h('span', { class: 'doc-meta' }, statusBadge(doc), h('span', {}, doc.content_type),
        h('span', {}, formatBytes(doc.size_bytes)),
        doc.page_count ? h('span', {}, `${doc.page_count} page${doc.page_count === 1 ? '' : 's'}`) : null,
        doc.ocr ? h('span', { class: 'badge badge-neutral ocr-badge' }, 'OCR') : null,
        h('span', {}, 'uploaded ', timeEl(doc.created_at))),
      actions,
    }));
    if (doc.status === 'processing') {
      main.append(h('div', { class: 'card doc-processing' }, loadingRow('Extracting text and fields…')));
      return;
    }
    if (doc.status === 'failed') {
      main.append(h('div', { class: 'error-panel', role: 'alert' }, icon('alert'),
        h('div', {}, h('p', { class: 'error-panel-title' }, doc.error?.message || 'Extraction failed.'),
          h('p', { class: 'muted' }, `Error code: ${doc.error?.code || 'unknown'}`))));
      return;
    }
    main.append(h('div', { class: 'doc-layout' }, textPanel(doc), h('div', { class: 'doc-side' },
      fieldsPanel(ctx, doc, path, (next) => { doc = next; draw(); }),
      schemaPanel(ctx, doc, path, (next) => { doc = next; draw(); }),
      contactsPanel(doc))));
  };

  const poll = async () => {
    while (doc.status === 'processing') {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (!ctx.isCurrent()) return;
      try {
        doc = await api('GET', path);
      } catch {
        return;
      }
      if (!ctx.isCurrent()) return;
      if (doc.status !== 'processing') draw();
    }
  };

  draw();
  poll();
}

function textPanel(doc) {
  const pages = doc.pages || [];
  return h('section', { class: 'card doc-text-panel', 'aria-label': 'Text' },
    h('h2', { class: 'panel-title' }, 'Text'),
    pages.length === 0 || pages.every((p) => !p.text)
      ? h('p', { class: 'muted panel-empty' }, 'No text was found in this document.')
      : pages.map((page) => h('article', { class: 'doc-page', 'aria-label': `Page ${page.number}` },
        h('header', { class: 'doc-page-header' }, h('span', {}, `Page ${page.number}`),
          page.ocr ? h('span', { class: 'badge badge-neutral ocr-badge', title: 'This page was read by OCR' }, 'OCR') : null),
        h('pre', { class: 'doc-page-text' }, page.text))));
}

function entryText(category, entry) {
  if (category === 'amounts') return [entry.value, entry.currency].filter(Boolean).join(' ');
  if (category === 'key_values') return `${entry.key}: ${entry.value}`;
  return entry.value;
}

function fieldsPanel(ctx, doc, path, onSaved) {
  const edited = new Set(doc.edited?.fields || []);
  return h('section', { class: 'card doc-panel', 'aria-label': 'Fields' },
    h('h2', { class: 'panel-title' }, 'Fields'),
    CATEGORIES.map(([category, title]) => {
      const entries = doc.fields?.[category] || [];
      const editButton = ctx.canManage
        ? button('Correct', { size: 'sm', 'aria-label': `Correct ${title}`, onClick: () => correctFields(doc, path, category, title, onSaved) })
        : null;
      return h('div', { class: 'doc-field-group', dataset: { category } },
        h('div', { class: 'doc-field-head' }, h('h3', {}, title),
          edited.has(category) ? h('span', { class: 'badge badge-documents' }, 'Edited') : null, editButton),
        entries.length === 0
          ? h('p', { class: 'muted' }, 'None found')
          : h('ul', { class: 'doc-field-list' }, entries.map((entry) => h('li', {},
            h('span', { class: 'doc-field-value' }, entryText(category, entry)),
            entry.raw && entry.raw !== entry.value ? h('span', { class: 'muted' }, ` (${entry.raw})`) : null,
            h('span', { class: 'doc-page-chip' }, `p. ${entry.page}`)))));
    }));
}

// One entry per line, in the same words the list shows; the page of an unchanged entry is
// kept, new ones are on page 1.
function parseLines(category, text, before) {
  const entries = [];
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const old = before.find((e) => entryText(category, e) === line);
    if (old) {
      entries.push(old);
      continue;
    }
    if (category === 'amounts') {
      const [value, currency] = line.split(/\s+/);
      entries.push({ value, currency: currency || null, page: 1 });
    } else if (category === 'key_values') {
      const at = line.indexOf(':');
      entries.push(at > 0
        ? { key: line.slice(0, at).trim(), value: line.slice(at + 1).trim(), page: 1 }
        : { key: line, value: '', page: 1 });
    } else {
      entries.push({ value: line, page: 1 });
    }
  }
  return entries;
}

function correctFields(doc, path, category, title, onSaved) {
  const modal = openModal({ title: `Correct ${title.toLowerCase()}` });
  const before = doc.fields?.[category] || [];
  const area = h('textarea', { class: 'input textarea', rows: 8, spellcheck: 'false' });
  area.value = before.map((e) => entryText(category, e)).join('\n');
  const hint = category === 'amounts' ? 'One amount per line, e.g. 1234.50 EUR.'
    : category === 'key_values' ? 'One per line, as Label: value.' : 'One value per line.';
  const input = field({ label: title, control: area, hint });
  const alertBox = formAlert();
  modal.body.append(alertBox.el, input.el);
  const edited = (doc.edited?.fields || []).includes(category);
  const save = button('Save correction', { variant: 'primary' });
  const cancel = button('Cancel', { onClick: () => modal.close() });
  const patch = (value) => busy(save, async () => {
    alertBox.clear();
    input.setError(null);
    try {
      const next = await api('PATCH', path, { fields: { [category]: value } });
      modal.close();
      toast('Correction saved.');
      onSaved(next);
    } catch (err) {
      const message = err.fields?.[`fields.${category}`];
      if (message) input.setError(message);
      else alertBox.show(err);
    }
  });
  save.addEventListener('click', () => patch(parseLines(category, area.value, before)));
  const footer = [cancel, save];
  if (edited) footer.unshift(button('Use extracted values', { onClick: () => patch(null) }));
  modal.footer.append(...footer);
  area.focus();
}

function schemaPanel(ctx, doc, path, onSaved) {
  const names = Object.keys(doc.schema_fields || {});
  if (names.length === 0) return null;
  const edited = new Set(doc.edited?.schema_fields || []);
  return h('section', { class: 'card doc-panel', 'aria-label': 'Schema fields' },
    h('h2', { class: 'panel-title' }, 'Schema fields'),
    h('dl', { class: 'doc-schema' }, names.map((name) => {
      const value = doc.schema_fields[name];
      const shown = value === null ? h('span', { class: 'muted' }, 'Not found') : String(value);
      const control = ctx.canManage
        ? button('Correct', { size: 'sm', 'aria-label': `Correct ${name}`, onClick: () => correctSchemaField(path, name, value, onSaved) })
        : null;
      return [h('dt', {}, name, edited.has(name) ? h('span', { class: 'badge badge-documents' }, 'Edited') : null),
        h('dd', {}, shown, control)];
    })));
}

function correctSchemaField(path, name, value, onSaved) {
  const modal = openModal({ title: `Correct ${name}`, size: 'sm' });
  const control = h('input', { class: 'input', type: 'text', value: value === null ? '' : String(value) });
  const input = field({ label: name, control, hint: 'Leave empty when the document does not say.' });
  const alertBox = formAlert();
  modal.body.append(alertBox.el, input.el);
  const save = button('Save correction', { variant: 'primary' });
  save.addEventListener('click', () => busy(save, async () => {
    alertBox.clear();
    try {
      const text = control.value.trim();
      const next = await api('PATCH', path, { schema_fields: { [name]: text === '' ? null : text } });
      modal.close();
      toast('Correction saved.');
      onSaved(next);
    } catch (err) {
      alertBox.show(err);
    }
  }));
  modal.footer.append(button('Cancel', { onClick: () => modal.close() }), save);
  control.focus();
}

function contactsPanel(doc) {
  const contacts = doc.contacts || [];
  return h('section', { class: 'card doc-panel', 'aria-label': 'Contacts' },
    h('h2', { class: 'panel-title' }, 'Contacts'),
    contacts.length === 0
      ? h('p', { class: 'muted' }, 'No people found')
      : h('ul', { class: 'doc-contacts' }, contacts.map((c) => h('li', {},
        h('span', { class: 'cell-strong' }, [c.first_name, c.last_name].filter(Boolean).join(' ') || c.email || c.phone || '—'),
        [c.job_title, c.company].filter(Boolean).length ? h('span', { class: 'cell-sub' }, [c.job_title, c.company].filter(Boolean).join(' · ')) : null,
        c.email ? h('span', {}, c.email) : null,
        c.phone ? h('span', {}, c.phone) : null))));
}
