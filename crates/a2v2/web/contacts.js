// The Contacts page: search, tag and "written by" filters, keyset paging, a detail drawer with
// every field and who wrote it, add/edit with the API's field errors, delete with
// confirmation, CSV import (preview, progress, report) and CSV export of the filtered list.
// Members see everything but no controls that change data.

import { api, enc, query } from '/assets/api.js';
import {
  agentEyebrow, applyFieldErrors, busy, button, clear, confirmDialog, emptyState, field, formAlert,
  formatDateTime, h, icon, loadingRow, openModal, pageHeader, timeEl, toast,
} from '/assets/ui.js';

const fullName = (c) => [c.first_name, c.last_name].filter(Boolean).join(' ');
const contactLabel = (c) => fullName(c) || c.email || c.phone || 'this contact';
const dash = () => h('span', { class: 'muted' }, '—');

// "API key · Zapier sync", "Member · ada@example.com", "System · cli".
function actorText(actor) {
  if (!actor) return '—';
  const kind = { api_key: 'API key', member: 'Member', system: 'System' }[actor.type] || actor.type;
  return `${kind} · ${actor.label || actor.id || 'unknown'}`;
}

function actorEl(actor, agentId) {
  if (actor?.type === 'api_key' && actor.id) {
    return h('a', {
      href: `/agents/${enc(agentId)}/contacts?written_by=${enc(actor.id)}&by=${enc(actor.label || actor.id)}`,
      title: 'Show the contacts this key wrote',
    }, actorText(actor));
  }
  return actorText(actor);
}

export async function renderContacts(ctx, { canManage }) {
  const { main, agent } = ctx;
  const base = `/api/agents/${enc(agent.id)}/contacts`;
  const params = new URLSearchParams(location.search);
  const filters = {
    q: params.get('q') || '',
    tag: params.get('tag') || '',
    written_by: params.get('written_by') || '',
  };
  const writtenByLabel = params.get('by') || filters.written_by;

  const exportLink = h('a', { class: 'btn btn-secondary', download: 'contacts.csv' },
    icon('file'), h('span', { class: 'btn-label' }, 'Export CSV'));
  const actions = [exportLink];
  if (canManage) {
    actions.push(
      button('Import CSV', { iconName: 'file', onClick: () => openImport({ base, onDone: reload }) }),
      button('Add contact', { variant: 'primary', iconName: 'plus', onClick: () => openForm({ base, onSaved: reload }) }),
    );
  }
  const search = h('input', {
    type: 'search', class: 'search-input', placeholder: 'Search names, email, company',
    'aria-label': 'Search contacts', value: filters.q,
  });
  const chips = h('div', { class: 'filter-chips', 'aria-label': 'Active filters' });
  const card = h('section', { class: 'card', 'aria-labelledby': 'page-heading' });
  main.append(pageHeader({
    eyebrow: agentEyebrow(agent, 'Contacts'),
    title: 'Contacts',
    subtitle: 'People in this agent’s CRM, written by integrations through the API and by your team.',
    actions,
  }), h('div', { class: 'toolbar' }, search, chips), card);

  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      filters.q = search.value.trim();
      reload();
    }, 250);
  });

  function setFilter(name, value) {
    filters[name] = value;
    reload();
  }

  function renderChips() {
    const chip = (label, name) => h('span', { class: 'chip' }, label,
      h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove filter ${label}`, onClick: () => setFilter(name, '') }, icon('x')));
    clear(chips,
      filters.tag ? chip(`Tag: ${filters.tag}`, 'tag') : null,
      filters.written_by ? chip(`Written by ${writtenByLabel}`, 'written_by') : null);
  }

  // The URL keeps the filters, so a reload or a shared link shows the same list.
  function syncUrl() {
    const url = `${location.pathname}${query({ ...filters, by: filters.written_by ? writtenByLabel : '' })}`;
    history.replaceState(null, '', url);
    exportLink.href = `${base}/export${query({ format: 'csv', ...filters })}`;
  }

  let loadSeq = 0;
  async function reload() {
    loadSeq += 1;
    const seq = loadSeq;
    renderChips();
    syncUrl();
    let cursor = null;
    const tbody = h('tbody');
    const more = button('Load more', { onClick: () => busy(more, loadPage) });
    const footer = h('div', { class: 'table-footer' }, more);
    let shown = 0;

    async function loadPage() {
      const page = await api('GET', `${base}${query({ limit: 50, cursor, ...filters })}`);
      if (!ctx.isCurrent() || seq !== loadSeq) return;
      cursor = page.has_more ? page.next_cursor : null;
      shown += page.data.length;
      if (shown === 0) {
        const filtered = filters.q || filters.tag || filters.written_by;
        clear(card, emptyState(filtered
          ? { iconName: 'contacts', title: 'No contacts match.', text: 'Try another search or remove a filter.' }
          : {
            iconName: 'contacts', title: 'No contacts yet.',
            text: canManage
              ? 'Add a contact, import a CSV file, or let an integration create them with an API key that has Contact Access.'
              : 'Contacts appear here when an integration or an admin creates them.',
          }));
        return;
      }
      for (const c of page.data) tbody.append(row(c));
      footer.hidden = !cursor;
      if (!tbody.isConnected) {
        clear(card, h('table', { class: 'table table-clickable' },
          h('thead', {}, h('tr', {}, ['Name', 'Email', 'Phone', 'Company', 'Tags', 'Updated'].map((t) => h('th', { scope: 'col' }, t)))),
          tbody), footer);
      }
    }

    function row(c) {
      const open = () => openDrawer({ base, agentId: agent.id, contact: c, canManage, onChanged: reload, onTag: (t) => setFilter('tag', t) });
      const name = h('button', { type: 'button', class: 'row-title-link link-button', onClick: open }, fullName(c) || c.email || c.phone || '—');
      return h('tr', { dataset: { contactId: c.id } },
        h('td', {}, name),
        h('td', {}, c.email || dash()),
        h('td', {}, c.phone || dash()),
        h('td', {}, [c.company, c.job_title].filter(Boolean).join(' · ') || dash()),
        h('td', {}, h('div', { class: 'badges' }, (c.tags || []).map((t) => h('button', {
          type: 'button', class: 'badge badge-neutral badge-button', title: `Show contacts tagged ${t}`, onClick: () => setFilter('tag', t),
        }, t)))),
        h('td', {}, timeEl(c.updated_at)));
    }

    clear(card, loadingRow());
    try {
      await loadPage();
    } catch (err) {
      if (seq !== loadSeq) return;
      const alertBox = formAlert();
      alertBox.show(err);
      clear(card, alertBox.el);
    }
  }

  await reload();
}

// ---- detail drawer -----------------------------------------------------------------------

function openDrawer({ base, agentId, contact, canManage, onChanged, onTag }) {
  const modal = openModal({ title: contactLabel(contact), size: 'drawer' });
  modal.dialog.classList.add('contact-drawer');
  const dl = h('dl', { class: 'detail-list' });
  const item = (label, value) => dl.append(h('dt', {}, label), h('dd', {}, value ?? dash()));
  item('First name', contact.first_name);
  item('Last name', contact.last_name);
  item('Email', contact.email);
  item('Phone', contact.phone ? [contact.phone, contact.phone_e164 && contact.phone_e164 !== contact.phone
    ? h('span', { class: 'muted' }, ` (${contact.phone_e164})`) : null] : null);
  item('Company', contact.company);
  item('Job title', contact.job_title);
  item('Notes', contact.notes ? h('p', { class: 'notes-text' }, contact.notes) : null);
  item('Tags', (contact.tags || []).length ? h('div', { class: 'badges' }, contact.tags.map((t) => h('button', {
    type: 'button', class: 'badge badge-neutral badge-button', onClick: () => { modal.close(); onTag(t); },
  }, t))) : null);
  const attributes = Object.entries(contact.attributes || {});
  item('Attributes', attributes.length ? h('table', { class: 'table table-compact' }, h('tbody', {},
    attributes.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, String(v)))))) : null);
  item('Created', [formatDateTime(contact.created_at), h('br'), h('span', { class: 'provenance' }, 'by ', actorEl(contact.created_by, agentId))]);
  item('Last changed', [formatDateTime(contact.updated_at), h('br'), h('span', { class: 'provenance' }, 'by ', actorEl(contact.updated_by, agentId))]);
  item('Version', String(contact.version));
  item('ID', h('code', {}, contact.id));
  modal.body.append(dl);
  dl.querySelectorAll('a[href]').forEach((a) => a.addEventListener('click', () => modal.close()));

  if (!canManage) {
    modal.footer.remove();
    return;
  }
  const del = button('Delete', {
    variant: 'danger', iconName: 'trash',
    onClick: () => {
      modal.close();
      confirmDialog({
        title: 'Delete contact?',
        message: [
          h('p', {}, `“${contactLabel(contact)}” will be permanently deleted.`),
          h('p', {}, 'Integrations that read this contact will no longer find it.'),
        ],
        confirmLabel: 'Delete contact',
        onConfirm: async () => {
          await api('DELETE', `${base}/${enc(contact.id)}`, undefined, { headers: { 'If-Match': `"${contact.version}"` } });
          await onChanged();
        },
        successMessage: 'Contact deleted.',
      });
    },
  });
  const edit = button('Edit', {
    variant: 'primary', iconName: 'pencil',
    onClick: () => {
      modal.close();
      openForm({ base, contact, onSaved: onChanged });
    },
  });
  modal.footer.append(del, h('span', { class: 'spacer' }), edit);
}

// ---- add / edit --------------------------------------------------------------------------

function openForm({ base, contact, onSaved }) {
  const editing = Boolean(contact);
  const modal = openModal({ title: editing ? 'Edit contact' : 'Add contact' });
  const alertBox = formAlert();
  const text = (name, label, { type = 'text', max = 255, multiline = false } = {}) => field({
    label,
    optional: true,
    counterMax: max > 255 ? max : undefined,
    control: multiline
      ? h('textarea', { rows: 4, name, value: contact?.[name] ?? '' })
      : h('input', { type, name, autocomplete: 'off', value: contact?.[name] ?? '' }),
  });
  const fields = {
    first_name: text('first_name', 'First name'),
    last_name: text('last_name', 'Last name'),
    email: text('email', 'Email', { type: 'email' }),
    phone: text('phone', 'Phone', { type: 'tel' }),
    company: text('company', 'Company'),
    job_title: text('job_title', 'Job title'),
    notes: text('notes', 'Notes', { max: 10000, multiline: true }),
    tags: field({
      label: 'Tags', optional: true, hint: 'Separate tags with commas.',
      control: h('input', { type: 'text', name: 'tags', autocomplete: 'off', value: (contact?.tags || []).join(', ') }),
    }),
  };
  fields.phone.el.querySelector('.field-label-row')?.after(h('span', { class: 'visually-hidden' }, 'International numbers start with +'));
  const formId = `contact-form-${Date.now()}`;
  const form = h('form', { class: 'form form-grid', id: formId, novalidate: true },
    Object.values(fields).map((f) => f.el));
  modal.body.append(alertBox.el,
    h('p', { class: 'form-note' }, 'A contact needs at least a first name, last name, email or phone.'),
    form);

  function body() {
    const out = {};
    for (const name of ['first_name', 'last_name', 'email', 'phone', 'company', 'job_title', 'notes']) {
      const value = fields[name].control.value.trim();
      if (editing) {
        if (value !== (contact[name] ?? '')) out[name] = value === '' ? null : value;
      } else if (value !== '') out[name] = value;
    }
    const tags = fields.tags.control.value.split(',').map((t) => t.trim()).filter(Boolean);
    if (!editing ? tags.length : tags.join('\u0000') !== (contact.tags || []).join('\u0000')) out.tags = tags;
    return out;
  }

  const cancel = button('Cancel', { onClick: () => modal.close() });
  const save = h('button', { type: 'submit', class: 'btn btn-primary', form: formId }, h('span', { class: 'btn-label' }, editing ? 'Save changes' : 'Add contact'));
  modal.footer.append(cancel, save);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(save, async () => {
      alertBox.clear();
      Object.values(fields).forEach((f) => f.setError(''));
      const payload = body();
      if (editing && Object.keys(payload).length === 0) {
        modal.close();
        return;
      }
      try {
        if (editing) {
          await api('PATCH', `${base}/${enc(contact.id)}`, payload, { headers: { 'If-Match': `"${contact.version}"` } });
        } else {
          await api('POST', base, payload);
        }
      } catch (err) {
        if (err.fields) {
          // Errors on one tag (`tags[2]`) or attribute belong to the field that holds it.
          const byField = {};
          for (const [name, message] of Object.entries(err.fields)) {
            const key = name.replace(/\[\d+\]$/, '');
            byField[key] = byField[key] || message;
          }
          const placed = applyFieldErrors({ fields: byField }, fields);
          if (placed.length === 0) alertBox.show(err);
          fields[placed[0]]?.control.focus();
        } else if (err.code === 'contact_exists') {
          fields.email.setError('Another contact already has this email.');
          fields.email.control.focus();
        } else if (err.code === 'precondition_failed') {
          alertBox.show({ message: 'Someone changed this contact after you opened it. Close this form and open the contact again to see the latest version.' });
        } else {
          alertBox.show(err);
        }
        return;
      }
      modal.close();
      toast(editing ? 'Contact updated.' : 'Contact added.');
      await onSaved();
    });
  });
  fields.first_name.control.focus();
}

// ---- import --------------------------------------------------------------------------------

function openImport({ base, onDone }) {
  const modal = openModal({ title: 'Import CSV', size: 'lg' });
  const alertBox = formAlert();
  const input = h('input', { type: 'file', accept: '.csv,.txt,text/csv', name: 'file' });
  const fileField = field({
    label: 'CSV file',
    hint: 'The first row names the columns, such as Email, First Name, Last Name, Phone, Company. Other columns are kept as attributes. UTF-8 or Windows-1252.',
    control: input,
  });
  const choice = (value, label, checked) => h('label', { class: 'radio' },
    h('input', { type: 'radio', name: 'on_duplicate', value, checked }), h('span', {}, label));
  const duplicates = h('fieldset', { class: 'radio-group' },
    h('legend', {}, 'When a row’s email already exists'),
    choice('skip', 'Skip the row', true),
    choice('update', 'Update the existing contact', false));
  const preview = h('div', { class: 'import-preview', 'aria-live': 'polite' });
  const progress = h('div', { class: 'import-progress', hidden: true });
  const report = h('div', { class: 'import-report', 'aria-live': 'polite' });
  modal.body.append(alertBox.el, fileField.el, duplicates, preview, progress, report);

  const cancel = button('Cancel', { onClick: () => modal.close() });
  const start = button('Import', { variant: 'primary', disabled: true });
  modal.footer.append(cancel, start);

  let file = null;
  input.addEventListener('change', async () => {
    alertBox.clear();
    fileField.setError('');
    clear(preview);
    clear(report);
    file = input.files[0] || null;
    start.disabled = true;
    if (!file) return;
    clear(preview, loadingRow('Reading the file…'));
    try {
      const seen = await api('POST', `${base}/import/preview`, file);
      renderPreview(seen);
      start.disabled = false;
    } catch (err) {
      clear(preview);
      if (err.fields?.file) fileField.setError(err.fields.file);
      else alertBox.show(err);
    }
  });

  function renderPreview(seen) {
    const columns = seen.columns.map((c) => h('tr', {}, h('td', {}, c.header || h('span', { class: 'muted' }, '(no header)')),
      h('td', {}, c.field === 'ignored' ? h('span', { class: 'muted' }, 'ignored') : h('code', {}, c.field))));
    const fieldsShown = ['first_name', 'last_name', 'email', 'phone', 'company'];
    const rows = seen.rows.map((r) => h('tr', {}, h('td', {}, String(r.row)),
      r.error
        ? h('td', { colspan: fieldsShown.length, class: 'text-danger' }, r.error)
        : fieldsShown.map((f) => h('td', {}, r.values[f] ?? ''))));
    clear(preview,
      h('p', { class: 'import-summary' }, `${seen.total_rows} rows · ${seen.encoding}`),
      h('h3', { class: 'section-title' }, 'Column mapping'),
      h('table', { class: 'table table-compact import-mapping' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Column'), h('th', { scope: 'col' }, 'Imported as'))),
        h('tbody', {}, columns)),
      h('h3', { class: 'section-title' }, 'First rows'),
      h('table', { class: 'table table-compact import-rows' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Row'), fieldsShown.map((f) => h('th', { scope: 'col' }, f)))),
        h('tbody', {}, rows)));
  }

  function showProgress(job) {
    progress.hidden = false;
    const total = Math.max(job.total_rows, 1);
    const percent = Math.round((job.processed_rows / total) * 100);
    clear(progress,
      h('progress', { max: String(total), value: String(job.processed_rows), 'aria-label': 'Import progress' }),
      h('p', { class: 'muted' }, `${job.processed_rows} of ${job.total_rows} rows (${percent}%)`));
  }

  function showReport(job) {
    showProgress(job);
    const skipped = job.skipped || [];
    clear(report,
      h('p', { class: 'import-counts' },
        `${job.created} created · ${job.updated} updated · ${job.unchanged} unchanged · ${skipped.length} skipped`),
      job.error ? h('p', { class: 'text-danger' }, job.error) : null,
      skipped.length ? h('table', { class: 'table table-compact import-skipped' },
        h('caption', {}, 'Skipped rows'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Row'), h('th', { scope: 'col' }, 'Reason'))),
        h('tbody', {}, skipped.map((s) => h('tr', {}, h('td', {}, String(s.row)), h('td', {}, s.reason))))) : null);
  }

  start.addEventListener('click', () => busy(start, async () => {
    if (!file) return;
    alertBox.clear();
    const mode = duplicates.querySelector('input:checked').value;
    let job;
    try {
      job = await api('POST', `${base}/import${query({ on_duplicate: mode })}`, file);
      showProgress(job);
      while (job.state === 'running') {
        await new Promise((resolve) => setTimeout(resolve, 500));
        if (!modal.dialog.isConnected) return;
        job = await api('GET', `${base}/imports/${enc(job.id)}`);
        showProgress(job);
      }
    } catch (err) {
      alertBox.show(err);
      return;
    }
    showReport(job);
    input.disabled = true;
    start.hidden = true;
    cancel.querySelector('.btn-label').textContent = 'Done';
    toast(job.state === 'done' ? 'Import finished.' : 'The import stopped.', { variant: job.state === 'done' ? 'success' : 'error' });
    await onDone();
  }));
}
