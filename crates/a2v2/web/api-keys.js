// The API Permission page of an agent: list, create (two steps), copy, edit and delete keys.

import { api, enc } from '/assets/api.js';
import {
  agentEyebrow, applyFieldErrors, busy, button, clear, confirmDialog, copyText, emptyState,
  errorToast, field, formAlert, formatDateTime, h, icon, iconButton, loadingRow, openModal,
  pageHeader, timeEl, toast, uid,
} from '/assets/ui.js';

const DAY_MS = 86400000;
// Keys expiring within this long are highlighted; permissions unused this long are flagged.
const EXPIRY_WARNING_MS = 7 * DAY_MS;
const UNUSED_MS = 30 * DAY_MS;

const GRACE_CHOICES = [
  [0, 'Immediately'],
  [3600, 'After 1 hour'],
  [86400, 'After 24 hours'],
  [604800, 'After 7 days'],
];

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
  const isOwner = ctx.member?.role === 'owner';
  const base = `/api/agents/${enc(agent.id)}/api-keys`;
  let keys = [];
  const suspensionBox = h('div', { class: 'desktop-only' });

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
    suspensionBox,
    h('div', { class: 'desktop-only stack' }, listCard, practicesCard()));

  async function reload() {
    const [body, suspension] = await Promise.all([api('GET', base), api('GET', '/api/keys/suspension')]);
    if (!ctx.isCurrent()) return;
    keys = body.data;
    drawSuspension(suspension.suspended);
    draw();
  }

  // The incident switch: every key of the workspace stops working until an owner resumes.
  function drawSuspension(suspended) {
    if (!suspended && !isOwner) {
      clear(suspensionBox);
      return;
    }
    const toggle = isOwner
      ? button(suspended ? 'Resume all keys' : 'Suspend all keys', {
        variant: suspended ? 'primary' : 'ghost-danger', size: 'sm', id: 'suspend-toggle',
      })
      : null;
    toggle?.addEventListener('click', () => busy(toggle, async () => {
      try {
        await api('POST', suspended ? '/api/keys/resume-all' : '/api/keys/suspend-all', {});
        toast(suspended ? 'All API keys work again.' : 'All API keys are suspended.');
        await reload();
      } catch (err) {
        errorToast(err);
      }
    }));
    clear(suspensionBox, h('div', { class: suspended ? 'banner banner-danger' : 'banner' },
      h('p', {}, suspended
        ? 'All API keys of this workspace are suspended: every request with a key is refused until an owner resumes them.'
        : 'In an incident, an owner can suspend every API key of the workspace at once.'),
      toggle));
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
      copy.addEventListener('click', () => busy(copy, () => revealAndCopy(base, key.id, reload)));
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

// Copying needs a password entered in the last 10 minutes; when the server asks for it, the
// person confirms their password and the copy goes ahead.
async function revealAndCopy(base, keyId, onCopied) {
  try {
    let body;
    try {
      body = await api('POST', `${base}/${enc(keyId)}/reveal`);
    } catch (err) {
      if (err.code !== 'reauth_required' || !(await confirmPassword())) throw err;
      body = await api('POST', `${base}/${enc(keyId)}/reveal`);
    }
    await copyText(body.key);
    toast(COPIED);
    onCopied?.().catch(() => {});
  } catch (err) {
    if (err.code !== 'reauth_required') errorToast(err);
  }
}

// Asks for the member's password; resolves true once the server accepted it.
function confirmPassword() {
  return new Promise((resolve) => {
    const modal = openModal({ title: 'Confirm your password', size: 'sm' });
    const alertBox = formAlert();
    const password = field({
      label: 'Password',
      hint: 'Copying an API key needs your password once every 10 minutes.',
      control: h('input', { type: 'password', autocomplete: 'current-password' }),
    });
    const formId = uid('confirm-password');
    const form = h('form', { class: 'form', id: formId, novalidate: true }, alertBox.el, password.el);
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      modal.close();
      resolve(ok);
    };
    const submit = button('Confirm', { variant: 'primary', type: 'submit', form: formId });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      busy(submit, async () => {
        alertBox.clear();
        password.setError('');
        try {
          await api('POST', '/api/session/confirm', { password: password.control.value }, { quietUnauthenticated: true });
          finish(true);
        } catch (err) {
          if (err.code === 'invalid_credentials') password.setError('The password is incorrect.');
          else alertBox.show(err);
        }
      });
    });
    modal.dialog.addEventListener('close', () => finish(false));
    modal.body.append(form);
    modal.footer.append(button('Cancel', { onClick: () => finish(false) }), submit);
    password.control.focus();
  });
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
    const left = new Date(key.expires_at).getTime() - Date.now();
    const expired = left <= 0;
    const soon = !expired && left <= EXPIRY_WARNING_MS;
    parts.push(h('span', {
      class: expired ? 'text-danger' : soon ? 'text-warning expiring-soon' : null,
      dataset: soon ? { expiringSoon: 'true' } : {},
    }, expired ? 'Expired ' : 'Expires ', timeEl(key.expires_at)));
  }
  if (key.rate_limit) {
    parts.push(h('span', {}, `${key.rate_limit.requests} requests / ${windowLabel(key.rate_limit.per_seconds)}`));
  }
  if (key.leak_reported_at) {
    parts.push(h('span', { class: 'badge badge-danger', title: formatDateTime(key.leak_reported_at) }, 'Leak reported'));
  } else if (key.enabled === false) {
    parts.push(h('span', { class: 'badge badge-warning' }, 'Paused'));
  }
  const lastUse = key.last_used_at || key.created_at;
  if (Date.now() - new Date(lastUse).getTime() >= UNUSED_MS) {
    parts.push(h('span', { class: 'badge badge-neutral', title: 'Review whether this key is still needed' }, 'Unused for 30 days'));
  }
  if (key.reveal_count > 0) {
    parts.push(h('span', { title: key.last_revealed_at ? `Last copied ${formatDateTime(key.last_revealed_at)}` : '' },
      `Copied ${key.reveal_count} ${key.reveal_count === 1 ? 'time' : 'times'}`));
  }
  // Each separator travels with the item after it, so a wrapped line never ends in a dot.
  return parts.map((part, i) => (i === 0 ? part
    : h('span', { class: 'key-meta-item' }, h('span', { class: 'dot', 'aria-hidden': 'true' }, '·'), part)));
}

function windowLabel(seconds) {
  if (seconds === 1) return 'second';
  if (seconds === 60) return 'minute';
  if (seconds === 3600) return 'hour';
  if (seconds === 86400) return 'day';
  return `${seconds} s`;
}

// <input type="datetime-local"> speaks local time without a zone.
function toLocalInput(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
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
  // The edit view also holds the key's lifetime and limits, and what it has been used for.
  const expires = field({
    label: 'Expires',
    optional: true,
    hint: 'After this moment (your local time) the key stops working. Leave empty to keep it until deleted.',
    control: h('input', { type: 'datetime-local', value: toLocalInput(key?.expires_at) }),
  });
  const limitRequests = h('input', {
    type: 'number', min: 1, max: 1000000, inputmode: 'numeric', 'aria-label': 'Requests',
    value: key?.rate_limit?.requests ?? '',
  });
  const limitSeconds = h('input', {
    type: 'number', min: 1, max: 86400, inputmode: 'numeric', 'aria-label': 'Per seconds',
    value: key?.rate_limit?.per_seconds ?? '',
  });
  const rateLimit = field({
    label: 'Rate limit',
    optional: true,
    hint: 'At most this many requests in any window of this many seconds; more are answered 429. Leave empty for no limit.',
    control: h('div', { class: 'rate-limit-row' }, limitRequests, h('span', {}, 'requests per'), limitSeconds, h('span', {}, 'seconds')),
  });
  const activeId = uid('key-active');
  const active = h('input', { type: 'checkbox', id: activeId, checked: key?.enabled !== false });
  const activeError = h('p', { class: 'field-error', hidden: true });
  const activeField = h('div', { class: 'field' },
    h('label', { class: 'checkbox', for: activeId }, active, h('span', {}, 'Active — uncheck to pause the key; paused keys are refused like deleted ones')),
    activeError);
  const clientsBox = h('div', { class: 'key-clients', 'aria-live': 'polite' });
  const step1Id = uid('key-step1');
  const step1 = h('form', { class: 'form', id: step1Id, novalidate: true }, name.el, description.el, ipAddresses.el,
    editing ? [expires.el, rateLimit.el, activeField, clientsBox] : null);
  const usageNotes = {};

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
      usageNotes[`${area.key}:${action}`] = h('span', { class: 'perm-usage' });
      return h('div', { class: 'perm-option' },
        h('label', { class: 'checkbox', for: id }, box, h('span', {}, label)),
        usageNotes[`${area.key}:${action}`]);
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

  const tools = editing && key.id ? h('div', { class: 'key-tools' },
    button('Roll key', { size: 'sm', iconName: 'refresh', onClick: () => openRollModal({ base, key, onSaved }) }),
    button('Test access', { size: 'sm', iconName: 'shield', onClick: () => openTestModal({ base, key }) })) : null;
  modal.body.append(alertBox.el, tools, step1, step2);
  if (editing) loadUsage();

  // Last use per permission, with one-click removal of those unused for 30 days, and the
  // recent client addresses, any of which can be added to the allowed list.
  async function loadUsage() {
    let usage;
    try {
      usage = await api('GET', `${base}/${enc(key.id)}/usage`);
    } catch {
      return;
    }
    const grantedSince = new Date(key.created_at).getTime();
    for (const { permission, last_used_at: lastUsed } of usage.permissions) {
      const note = usageNotes[permission];
      if (!note) continue;
      const [areaKey, action] = permission.split(':');
      const idle = Date.now() - (lastUsed ? new Date(lastUsed).getTime() : grantedSince) >= UNUSED_MS;
      clear(note,
        lastUsed ? ['Last used ', timeEl(lastUsed)] : 'Never used',
        idle ? button('Remove', {
          variant: 'link', size: 'sm', class: 'btn btn-link btn-sm perm-remove',
          'aria-label': `Remove unused permission ${permission}`,
          onClick: () => {
            checkboxes[areaKey][action].checked = false;
            checkboxes[areaKey][action].dispatchEvent(new Event('change'));
            clear(note, 'Removed; save to apply');
          },
        }) : null);
      note.classList.toggle('is-unused', idle);
    }
    if (usage.clients.length === 0) {
      clear(clientsBox, h('p', { class: 'field-hint' }, 'No requests with this key yet.'));
      return;
    }
    clear(clientsBox,
      h('p', { class: 'field-label' }, 'Recent client addresses'),
      h('ul', { class: 'client-list' }, usage.clients.map((client) => {
        const allow = button('Allow', {
          variant: 'link', size: 'sm', 'aria-label': `Add ${client.ip} to the allowed addresses`,
          onClick: () => {
            const current = ipAddresses.control.value.split(',').map((v) => v.trim()).filter(Boolean);
            if (!current.includes(client.ip)) current.push(client.ip);
            ipAddresses.control.value = current.join(', ');
            allow.disabled = true;
          },
        });
        return h('li', {}, h('code', {}, client.ip),
          h('span', { class: 'muted' }, ` ${client.count} ${client.count === 1 ? 'request' : 'requests'}, last `, timeEl(client.last_seen)),
          allow);
      })));
  }

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
    const fields = {
      name: name.control.value,
      description: descriptionText.trim() === '' ? null : descriptionText,
      ip_addresses: ipText === '' ? [] : ipText,
    };
    if (!editing) return fields;
    // An unchanged expiry is not sent again: one already past would be refused.
    const expiresValue = expires.control.value;
    if (expiresValue !== toLocalInput(key.expires_at)) {
      const parsed = new Date(expiresValue);
      fields.expires_at = expiresValue === '' ? null : Number.isNaN(parsed.getTime()) ? expiresValue : parsed.toISOString();
    }
    const requests = limitRequests.value.trim();
    const seconds = limitSeconds.value.trim();
    fields.rate_limit = requests === '' && seconds === ''
      ? null
      : { requests: Number(requests || 0), per_seconds: Number(seconds || 0) };
    fields.enabled = active.checked;
    return fields;
  }

  // Step 1's fields are checked by the server's own rules before moving on, so an error
  // shows next to its field on this step, in the API's words.
  async function checkStepOne() {
    alertBox.clear();
    [name, description, ipAddresses, expires, rateLimit].forEach((f) => f.setError(''));
    activeError.hidden = true;
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
    [name, description, ipAddresses, expires, rateLimit].forEach((f) => f.setError(''));
    activeError.hidden = true;
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
    const stepOneFields = { name, description, ip_addresses: ipAddresses, expires_at: expires, rate_limit: rateLimit };
    const placed = applyFieldErrors(err, stepOneFields);
    if (err.fields.enabled) {
      activeError.textContent = err.fields.enabled;
      activeError.hidden = false;
      placed.push('enabled');
    }
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
      const first = stepOneFields[placed[0]];
      goTo(1, first ? first.control : active);
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

// ---- roll and test access ------------------------------------------------------------------

function openRollModal({ base, key, onSaved }) {
  const modal = openModal({ title: 'Roll key', size: 'sm' });
  const alertBox = formAlert();
  const graceId = uid('grace');
  const grace = h('select', { id: graceId }, GRACE_CHOICES.map(([value, label]) => h('option', { value }, label)));
  modal.body.append(alertBox.el,
    h('p', {}, 'Rolling gives ', h('strong', {}, key.name), ' a new secret. Its id, permissions and history stay the same.'),
    h('div', { class: 'field' },
      h('label', { class: 'field-label', for: graceId }, 'The current secret stops working'),
      grace,
      h('p', { class: 'field-hint' }, 'Give integrations time to switch to the new secret, or end the old one at once if it leaked.')));
  const roll = button('Roll key', { variant: 'primary' });
  roll.addEventListener('click', () => busy(roll, async () => {
    alertBox.clear();
    let rolled;
    try {
      rolled = await api('POST', `${base}/${enc(key.id)}/roll`, { grace_seconds: Number(grace.value) });
    } catch (err) {
      alertBox.show(err);
      return;
    }
    await onSaved().catch(errorToast);
    toast('API key rolled.');
    const secretId = uid('rolled-key');
    const copy = button('Copy API Key', { variant: 'primary', iconName: 'copy' });
    copy.addEventListener('click', () => busy(copy, async () => {
      try {
        await copyText(rolled.key);
        toast(COPIED);
      } catch (err) {
        errorToast(err);
      }
    }));
    clear(modal.body,
      h('div', { class: 'field' },
        h('label', { for: secretId, class: 'field-label' }, 'New API key'),
        h('div', { class: 'secret-row' },
          h('input', { type: 'text', id: secretId, class: 'input-mono secret-input', readonly: true, value: rolled.key }),
          copy)),
      h('p', { class: 'field-hint', dataset: { previousExpiresAt: rolled.previous_expires_at || '' } },
        rolled.previous_expires_at
          ? ['The old secret keeps working until ', timeEl(rolled.previous_expires_at), '.']
          : 'The old secret no longer works.'));
    clear(modal.footer, button('Done', { onClick: () => modal.close() }));
    copy.focus();
  }));
  modal.footer.append(button('Cancel', { onClick: () => modal.close() }), roll);
  grace.focus();
}

const TEST_METHODS = ['GET', 'POST', 'PATCH', 'DELETE'];

// The simulator: what the /v1 guard would answer this key for a request, without sending one.
function openTestModal({ base, key }) {
  const modal = openModal({ title: 'Test access', size: 'sm' });
  const alertBox = formAlert();
  const method = h('select', { 'aria-label': 'Method' }, TEST_METHODS.map((m) => h('option', { value: m }, m)));
  const path = field({
    label: 'Path',
    control: h('input', { type: 'text', class: 'input-mono', value: '/v1/contacts', spellcheck: 'false' }),
  });
  const ip = field({
    label: 'Client IP address',
    control: h('input', { type: 'text', class: 'input-mono', value: key.ip_addresses?.[0]?.split('/')[0] || '203.0.113.10', spellcheck: 'false' }),
  });
  const result = h('div', { class: 'test-result', 'aria-live': 'polite' });
  const formId = uid('test-access');
  const form = h('form', { class: 'form', id: formId, novalidate: true },
    h('div', { class: 'field' }, h('p', { class: 'field-label' }, 'Method'), method), path.el, ip.el);
  const run = button('Test access', { variant: 'primary', type: 'submit', form: formId });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(run, async () => {
      alertBox.clear();
      path.setError('');
      ip.setError('');
      try {
        const verdict = await api('POST', `${base}/${enc(key.id)}/simulate`,
          { method: method.value, path: path.control.value, ip: ip.control.value });
        clear(result, h('div', { class: verdict.allowed ? 'verdict verdict-allowed' : 'verdict verdict-denied' },
          h('p', { class: 'cell-strong' }, verdict.allowed ? 'Allowed' : `Refused: ${verdict.status} ${verdict.code}`),
          verdict.message ? h('p', {}, verdict.message) : null,
          verdict.required_permission ? h('p', { class: 'muted' }, 'Needs ', h('code', {}, verdict.required_permission)) : null));
      } catch (err) {
        if (!applyFieldErrors(err, { path, ip }).length) alertBox.show(err);
      }
    });
  });
  modal.body.append(alertBox.el, form, result);
  modal.footer.append(button('Close', { onClick: () => modal.close() }), run);
  path.control.focus();
}
