// The API Permission page of an agent: list, create (two steps), copy, edit and delete keys.

import { api, enc } from '/assets/api.js';
import {
  agentEyebrow, applyFieldErrors, busy, button, clear, confirmDialog, copyText, emptyState,
  errorToast, field, formAlert, h, icon, iconButton, loadingRow, openModal, pageHeader, timeEl,
  toast, uid,
} from '/assets/ui.js';

const ACTIONS = [
  ['create', 'Create'],
  ['read', 'Read'],
  ['update', 'Update'],
  ['delete', 'Delete'],
];

const AREAS = [
  {
    key: 'contacts',
    label: 'Contact Access',
    badge: 'Contacts',
    description: 'The agent’s CRM: people, their details, tags and notes.',
  },
  {
    key: 'documents',
    label: 'Document Extraction Access',
    badge: 'Documents',
    description: 'Uploaded files and the text and fields extracted from them.',
  },
];

const STEP_TITLES = {
  1: 'Step 1 of 2 — Enter basic information',
  2: 'Step 2 of 2 — Configure permissions',
};

const COPIED = 'API key copied to clipboard';

export async function renderApiPermissions(ctx) {
  const { main, agent, canManage } = ctx;
  const base = `/api/agents/${enc(agent.id)}/api-keys`;
  let keys = [];

  // The empty state's own button disappears once a key exists, so focus returns to the header's.
  const openCreate = () => openKeyModal({
    base, key: null, onSaved: reload, returnFocus: () => document.getElementById('add-api-key'),
  });
  const addButton = canManage
    ? button('Add API Key', { variant: 'primary', iconName: 'plus', id: 'add-api-key', onClick: openCreate })
    : null;
  const listCard = h('section', { class: 'card', 'aria-label': 'API keys' }, loadingRow());

  main.append(
    pageHeader({
      eyebrow: agentEyebrow(agent, 'Channels & API'),
      title: 'API Permission',
      subtitle: 'Manage API keys and their permissions for external integrations.',
      actions: addButton ? h('div', { class: 'desktop-only' }, addButton) : null,
    }),
    desktopOnlyNotice(),
    h('div', { class: 'desktop-only stack' }, listCard, practicesCard()));

  async function reload() {
    const body = await api('GET', base);
    if (!ctx.isCurrent()) return;
    keys = body.data;
    draw();
  }

  function draw() {
    if (keys.length === 0) {
      clear(listCard, emptyState({
        iconName: 'key',
        title: 'No API keys yet.',
        text: canManage
          ? 'Create a key for each integration that needs this agent’s contacts or documents.'
          : 'An owner or admin can create keys for this agent.',
        action: canManage ? button('Add API Key', { variant: 'primary', iconName: 'plus', onClick: openCreate }) : null,
      }));
      return;
    }
    clear(listCard, h('table', { class: 'table keys-table' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Name'),
        h('th', { scope: 'col', class: 'col-access' }, 'Access'),
        h('th', { scope: 'col', class: 'col-created' }, 'Created'),
        canManage ? h('th', { scope: 'col', class: 'col-actions' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
      h('tbody', {}, keys.map((key) => keyRow(key)))));
  }

  function keyRow(key) {
    const rowSelector = (action) => () => listCard.querySelector(`tr[data-key-id="${CSS.escape(key.id)}"] [data-action="${action}"]`);
    let actions = null;
    if (canManage) {
      const copy = button('Copy API Key', { size: 'sm', iconName: 'copy', dataset: { action: 'copy' } });
      copy.addEventListener('click', () => busy(copy, () => revealAndCopy(base, key.id)));
      actions = h('td', { class: 'col-actions' }, h('div', { class: 'row-actions' },
        copy,
        iconButton('pencil', 'Edit', {
          title: 'Edit API key', dataset: { action: 'edit' },
          onClick: () => openKeyModal({ base, key, onSaved: reload, returnFocus: rowSelector('edit') }),
        }),
        iconButton('trash', 'Delete', {
          title: 'Delete API key', variant: 'ghost-danger', dataset: { action: 'delete' },
          onClick: () => confirmDelete(key),
        })));
    }
    return h('tr', { dataset: { keyId: key.id } },
      h('td', {},
        h('div', { class: 'key-name' },
          h('span', { class: 'cell-strong' }, key.name),
          h('div', { class: 'key-meta' }, keyMeta(key))),
        key.description ? h('p', { class: 'key-description' }, key.description) : null),
      h('td', { class: 'col-access' }, accessBadges(key)),
      h('td', { class: 'col-created' }, timeEl(key.created_at, 'date')),
      actions);
  }

  function confirmDelete(key) {
    confirmDialog({
      title: 'Delete API key?',
      message: [
        h('p', {}, 'The API key ', h('strong', {}, key.name),
          ' will be permanently deleted. Any applications using this key will lose access.'),
        h('p', { class: 'muted' }, 'This cannot be undone.'),
      ],
      confirmLabel: 'Delete API key',
      returnFocus: () => document.getElementById('add-api-key') || document.getElementById('page-heading'),
      onConfirm: async () => {
        await api('DELETE', `${base}/${enc(key.id)}`);
        await reload();
      },
      successMessage: 'API key deleted.',
    });
  }

  await reload();
}

async function revealAndCopy(base, keyId) {
  try {
    const body = await api('POST', `${base}/${enc(keyId)}/reveal`);
    await copyText(body.key);
    toast(COPIED);
  } catch (err) {
    errorToast(err);
  }
}

function keyMeta(key) {
  const parts = [h('code', { class: 'key-preview' }, key.preview)];
  parts.push(key.last_used_at
    ? h('span', {}, 'Last used ', timeEl(key.last_used_at))
    : h('span', {}, 'Never used'));
  const ips = key.ip_addresses || [];
  if (ips.length > 0) {
    parts.push(h('span', { class: 'key-ips', title: `Allowed from ${ips.join(', ')}` },
      icon('lock', 'icon icon-xs'), ips.length === 1 ? ips[0] : `${ips[0]} +${ips.length - 1}`));
  }
  if (key.expires_at) {
    const expired = new Date(key.expires_at).getTime() <= Date.now();
    parts.push(h('span', { class: expired ? 'text-danger' : null },
      expired ? 'Expired ' : 'Expires ', timeEl(key.expires_at)));
  }
  // Each separator travels with the item after it, so a wrapped line never ends in a dot.
  return parts.map((part, i) => (i === 0 ? part
    : h('span', { class: 'key-meta-item' }, h('span', { class: 'dot', 'aria-hidden': 'true' }, '·'), part)));
}

function accessBadges(key) {
  const access = key.access || [];
  if (access.length === 0) return h('div', { class: 'badges' }, h('span', { class: 'badge badge-neutral' }, 'No access'));
  return h('div', { class: 'badges' }, AREAS.filter((area) => access.includes(area.key)).map((area) => {
    const granted = (key.permissions?.[area.key] || [])
      .map((action) => ACTIONS.find(([value]) => value === action)?.[1] || action);
    return h('span', { class: `badge badge-${area.key}`, title: granted.join(', ') }, area.badge);
  }));
}

function desktopOnlyNotice() {
  return h('section', { class: 'desktop-only-notice', 'aria-labelledby': 'desktop-only-title' },
    h('span', { class: 'empty-icon' }, icon('monitor')),
    h('h2', { id: 'desktop-only-title' }, 'Desktop Only'),
    h('p', {}, 'API keys are managed on larger screens. Open this page on a screen at least 1024 pixels wide to create, copy, edit or delete keys.'));
}

function practicesCard() {
  const item = (title, text) => h('li', { class: 'practice' },
    h('span', { class: 'practice-check' }, icon('check', 'icon icon-xs')),
    h('div', {}, h('p', { class: 'practice-title' }, title), h('p', { class: 'practice-text' }, text)));
  return h('section', { class: 'card practices', 'aria-labelledby': 'practices-title' },
    h('div', { class: 'practices-header' },
      h('span', { class: 'practices-icon' }, icon('shield')),
      h('h2', { id: 'practices-title' }, 'Recommended practices')),
    h('ul', { class: 'practices-list' },
      item('Use descriptive names', 'Name each key after the integration that uses it, so you know what stops working if you revoke it.'),
      item('Limit IP addresses', 'Bind a key to the addresses your servers call from; requests from anywhere else are refused.'),
      item('Grant only needed permissions', 'Give each integration only the actions it performs. You can widen access later.'),
      item('Review and revoke unused keys', 'Check when each key was last used and delete the ones nobody needs any more.')));
}

// ---- add / edit modal ----------------------------------------------------------------------

function openKeyModal({ base, key, onSaved, returnFocus }) {
  const editing = Boolean(key);
  const modal = openModal({ title: editing ? 'Edit API Key' : 'Add API Key', returnFocus });
  const stepLabel = h('p', { class: 'step-label', 'aria-live': 'polite' });
  const stepBars = [h('span', { class: 'stepper-bar' }), h('span', { class: 'stepper-bar' })];
  modal.subtitle.append(stepLabel, h('div', { class: 'stepper', 'aria-hidden': 'true' }, stepBars));
  if (editing) {
    modal.subtitle.append(h('a', {
      class: 'key-contacts-link',
      href: `/agents/${encodeURIComponent(key.agent_id)}/contacts?written_by=${encodeURIComponent(key.id)}&by=${encodeURIComponent(key.name)}`,
    }, 'Contacts this key wrote'));
  }

  const alertBox = formAlert();

  // Step 1: basic information.
  const name = field({
    label: 'Name',
    counterMax: 100,
    hint: 'Describe the integration that will use this key, for example “Zapier contact sync”.',
    control: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', value: key?.name ?? '' }),
  });
  const description = field({
    label: 'Description',
    optional: true,
    counterMax: 500,
    control: h('textarea', { rows: 3, value: key?.description ?? '' }),
  });
  const ipAddresses = field({
    label: 'IP Address',
    optional: true,
    hint: 'Comma-separated IPv4 or IPv6 addresses or CIDR ranges. Leave empty to allow any address.',
    control: h('input', {
      type: 'text', autocomplete: 'off', spellcheck: 'false', class: 'input-mono',
      placeholder: '192.168.1.1, 10.0.0.1', value: (key?.ip_addresses || []).join(', '),
    }),
  });
  const step1Id = uid('key-step1');
  const step1 = h('form', { class: 'form', id: step1Id, novalidate: true }, name.el, description.el, ipAddresses.el);

  // Step 2: permissions.
  const checkboxes = {};
  const permError = h('p', { class: 'field-error', id: uid('perm-error'), hidden: true });
  const summary = h('p', { class: 'perm-summary', 'aria-live': 'polite' });
  const groups = AREAS.map((area) => {
    checkboxes[area.key] = {};
    const granted = key?.permissions?.[area.key] || [];
    const boxes = ACTIONS.map(([action, label]) => {
      const id = uid(`perm-${area.key}-${action}`);
      const box = h('input', { type: 'checkbox', id, value: action, checked: granted.includes(action) });
      checkboxes[area.key][action] = box;
      return h('label', { class: 'checkbox', for: id }, box, h('span', {}, label));
    });
    const toggle = button('Select all', { variant: 'link', size: 'sm' });
    const areaBoxes = () => Object.values(checkboxes[area.key]);
    const syncToggle = () => {
      const all = areaBoxes().every((b) => b.checked);
      toggle.querySelector('.btn-label').textContent = all ? 'Clear all' : 'Select all';
      toggle.setAttribute('aria-label', `${all ? 'Clear all' : 'Select all'} ${area.label} permissions`);
    };
    toggle.addEventListener('click', () => {
      const all = areaBoxes().every((b) => b.checked);
      areaBoxes().forEach((b) => { b.checked = !all; });
      syncToggle();
      updateSummary();
    });
    areaBoxes().forEach((b) => b.addEventListener('change', () => {
      syncToggle();
      updateSummary();
    }));
    syncToggle();
    // The legend must be the fieldset's first child to name the group, so the toggle is
    // placed beside it by CSS rather than wrapped together with it.
    return h('fieldset', { class: 'perm-group', 'aria-describedby': permError.id },
      h('legend', {}, area.label),
      h('div', { class: 'perm-toggle' }, toggle),
      h('p', { class: 'perm-description' }, area.description),
      h('div', { class: 'perm-options' }, boxes));
  });
  const step2Id = uid('key-step2');
  const step2 = h('form', { class: 'form', id: step2Id, novalidate: true, hidden: true }, groups, permError, summary);

  function selectedPermissions() {
    const out = {};
    for (const area of AREAS) {
      out[area.key] = ACTIONS.map(([action]) => action).filter((action) => checkboxes[area.key][action].checked);
    }
    return out;
  }

  function updateSummary() {
    const codes = Object.entries(selectedPermissions()).flatMap(([area, actions]) => actions.map((a) => `${area}:${a}`));
    clear(summary, codes.length
      ? ['This key will be able to use ', h('span', { class: 'perm-codes' }, codes.map((c) => h('code', {}, c))), '.']
      : 'No permissions selected: the key will be valid but have no access.');
  }
  updateSummary();

  modal.body.append(alertBox.el, step1, step2);

  let step = 1;
  const cancel = button('Cancel', { onClick: () => modal.close() });
  const back = button('Back', { onClick: () => goTo(1) });
  const next = button('Next', { variant: 'primary', type: 'submit', form: step1Id });
  const submit = button(editing ? 'Save changes' : 'Give Access', { variant: 'primary', type: 'submit', form: step2Id });

  function goTo(target, focusEl) {
    step = target;
    step1.hidden = step !== 1;
    step2.hidden = step !== 2;
    stepLabel.textContent = STEP_TITLES[step];
    stepBars.forEach((bar, i) => bar.classList.toggle('is-done', i < step));
    clear(modal.footer, step === 1 ? [cancel, next] : [back, submit]);
    (focusEl || (step === 1 ? name.control : Object.values(checkboxes.contacts)[0])).focus();
  }

  step1.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(next, checkStepOne);
  });

  // The basic information, as the API takes it.
  function basicFields() {
    const ipText = ipAddresses.control.value.trim();
    const descriptionText = description.control.value;
    return {
      name: name.control.value,
      description: descriptionText.trim() === '' ? null : descriptionText,
      ip_addresses: ipText === '' ? [] : ipText,
    };
  }

  // Step 1's fields are checked by the server's own rules before moving on, so an error
  // shows next to its field on this step, in the API's words.
  async function checkStepOne() {
    alertBox.clear();
    [name, description, ipAddresses].forEach((f) => f.setError(''));
    try {
      await api('POST', `${base}/validate`, basicFields());
    } catch (err) {
      showSaveError(err);
      return;
    }
    goTo(2);
  }

  step2.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(submit, save);
  });

  async function save() {
    alertBox.clear();
    [name, description, ipAddresses].forEach((f) => f.setError(''));
    permError.hidden = true;
    const body = { ...basicFields(), permissions: selectedPermissions() };
    let result;
    try {
      result = editing
        ? await api('PATCH', `${base}/${enc(key.id)}`, body)
        : await api('POST', base, body);
    } catch (err) {
      showSaveError(err);
      return;
    }
    await onSaved().catch(errorToast);
    if (editing) {
      modal.close();
      toast('API key updated successfully.');
    } else {
      toast('API key created successfully.');
      showCreated(result);
    }
  }

  function showSaveError(err) {
    if (!err.fields) {
      alertBox.show(err);
      return;
    }
    const placed = applyFieldErrors(err, { name, description, ip_addresses: ipAddresses });
    if (err.fields.permissions) {
      permError.textContent = err.fields.permissions;
      permError.hidden = false;
    }
    const unplaced = Object.entries(err.fields)
      .filter(([fieldName]) => fieldName !== 'permissions' && !placed.includes(fieldName));
    if (unplaced.length > 0) {
      alertBox.show({ message: unplaced.map(([fieldName, message]) => `${fieldName}: ${message}`).join(' '), requestId: err.requestId });
    }
    if (placed.length > 0) {
      const first = { name, description, ip_addresses: ipAddresses }[placed[0]];
      goTo(1, first.control);
    }
  }

  function showCreated(created) {
    modal.setTitle('API key created');
    clear(modal.subtitle, h('p', { class: 'step-label' }, 'Copy the key and store it somewhere safe, such as your integration’s secret settings.'));
    const secretId = uid('new-key');
    const secretInput = h('input', {
      type: 'text', id: secretId, class: 'input-mono secret-input', readonly: true, value: created.key,
      spellcheck: 'false', autocomplete: 'off',
    });
    secretInput.addEventListener('focus', () => secretInput.select());
    const copy = button('Copy API Key', { variant: 'primary', iconName: 'copy' });
    copy.addEventListener('click', () => busy(copy, async () => {
      try {
        await copyText(created.key);
        toast(COPIED);
      } catch (err) {
        errorToast(err);
      }
    }));
    clear(modal.body,
      h('div', { class: 'created-key' },
        h('div', { class: 'created-summary' },
          h('span', { class: 'created-icon' }, icon('check')),
          h('div', {}, h('p', { class: 'cell-strong' }, created.name), accessBadges(created))),
        h('div', { class: 'field' },
          h('label', { for: secretId, class: 'field-label' }, 'API key'),
          h('div', { class: 'secret-row' }, secretInput, copy)),
        h('p', { class: 'field-hint' }, 'Send it in the Authorization header: ',
          h('code', {}, 'Authorization: Bearer <key>'), '. Anyone holding it can use the permissions you granted.')));
    clear(modal.footer, button('Done', { onClick: () => modal.close() }));
    copy.focus();
  }

  goTo(1);
}
