// Small DOM helpers shared by every page: element builder, icons, dialogs, toasts, time
// formatting and clipboard. Elements are built with the DOM API only (no innerHTML), so text
// coming from the server can never turn into markup.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'value' || key === 'checked') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  appendChildren(el, children);
  return el;
}

function appendChildren(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  appendChildren(el, children);
  return el;
}

let idCounter = 0;
export function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

// Icons: 24×24 stroke outlines, drawn with SVG elements so they inherit `currentColor`.
const ICONS = {
  plus: [['path', { d: 'M5 12h14' }], ['path', { d: 'M12 5v14' }]],
  x: [['path', { d: 'M18 6 6 18' }], ['path', { d: 'm6 6 12 12' }]],
  check: [['path', { d: 'M20 6 9 17l-5-5' }]],
  copy: [
    ['rect', { width: 14, height: 14, x: 8, y: 8, rx: 2 }],
    ['path', { d: 'M4 16c-1.1 0-2-.9-2-2V4c0-1.1.9-2 2-2h10c1.1 0 2 .9 2 2' }],
  ],
  pencil: [
    ['path', { d: 'M17 3a2.85 2.83 0 1 1 4 4L7.5 20.5 2 22l1.5-5.5Z' }],
    ['path', { d: 'm15 5 4 4' }],
  ],
  trash: [
    ['path', { d: 'M3 6h18' }],
    ['path', { d: 'M19 6v14c0 1-1 2-2 2H7c-1 0-2-1-2-2V6' }],
    ['path', { d: 'M8 6V4c0-1 1-2 2-2h4c1 0 2 1 2 2v2' }],
    ['path', { d: 'M10 11v6' }],
    ['path', { d: 'M14 11v6' }],
  ],
  key: [
    ['circle', { cx: 7.5, cy: 15.5, r: 5.5 }],
    ['path', { d: 'm21 2-9.6 9.6' }],
    ['path', { d: 'm15.5 7.5 3 3L22 7l-3-3' }],
  ],
  users: [
    ['path', { d: 'M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2' }],
    ['circle', { cx: 9, cy: 7, r: 4 }],
    ['path', { d: 'M22 21v-2a4 4 0 0 0-3-3.87' }],
    ['path', { d: 'M16 3.13a4 4 0 0 1 0 7.75' }],
  ],
  contacts: [
    ['path', { d: 'M4 19.5v-15A2.5 2.5 0 0 1 6.5 2H20v20H6.5a2.5 2.5 0 0 1 0-5H20' }],
    ['circle', { cx: 12, cy: 8, r: 2 }],
    ['path', { d: 'M15 13a3 3 0 1 0-6 0' }],
  ],
  file: [
    ['path', { d: 'M15 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V7Z' }],
    ['path', { d: 'M14 2v4a2 2 0 0 0 2 2h4' }],
    ['path', { d: 'M16 13H8' }],
    ['path', { d: 'M16 17H8' }],
    ['path', { d: 'M10 9H8' }],
  ],
  refresh: [
    ['path', { d: 'M21 12a9 9 0 1 1-3-6.7L21 8' }],
    ['path', { d: 'M21 3v5h-5' }],
  ],
  history: [
    ['path', { d: 'M3 3v5h5' }],
    ['path', { d: 'M3.05 13A9 9 0 1 0 6 5.3L3 8' }],
    ['path', { d: 'M12 7v5l4 2' }],
  ],
  logout: [
    ['path', { d: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4' }],
    ['path', { d: 'm16 17 5-5-5-5' }],
    ['path', { d: 'M21 12H9' }],
  ],
  bot: [
    ['path', { d: 'M12 8V4H8' }],
    ['rect', { width: 16, height: 12, x: 4, y: 8, rx: 2 }],
    ['path', { d: 'M2 14h2' }],
    ['path', { d: 'M20 14h2' }],
    ['path', { d: 'M15 13v2' }],
    ['path', { d: 'M9 13v2' }],
  ],
  monitor: [
    ['rect', { width: 20, height: 14, x: 2, y: 3, rx: 2 }],
    ['path', { d: 'M8 21h8' }],
    ['path', { d: 'M12 17v4' }],
  ],
  shield: [
    ['path', { d: 'M20 13c0 5-3.5 7.5-7.66 8.95a1 1 0 0 1-.67-.01C7.5 20.5 4 18 4 13V6a1 1 0 0 1 1-1c2 0 4.5-1.2 6.24-2.72a1.17 1.17 0 0 1 1.52 0C14.51 3.81 17 5 19 5a1 1 0 0 1 1 1z' }],
    ['path', { d: 'm9 12 2 2 4-4' }],
  ],
  alert: [
    ['path', { d: 'm21.73 18-8-14a2 2 0 0 0-3.48 0l-8 14A2 2 0 0 0 4 21h16a2 2 0 0 0 1.73-3' }],
    ['path', { d: 'M12 9v4' }],
    ['path', { d: 'M12 17h.01' }],
  ],
  info: [
    ['circle', { cx: 12, cy: 12, r: 10 }],
    ['path', { d: 'M12 16v-4' }],
    ['path', { d: 'M12 8h.01' }],
  ],
  grid: [
    ['rect', { width: 7, height: 7, x: 3, y: 3, rx: 1 }],
    ['rect', { width: 7, height: 7, x: 14, y: 3, rx: 1 }],
    ['rect', { width: 7, height: 7, x: 14, y: 14, rx: 1 }],
    ['rect', { width: 7, height: 7, x: 3, y: 14, rx: 1 }],
  ],
  chevronDown: [['path', { d: 'm6 9 6 6 6-6' }]],
  lock: [
    ['rect', { width: 18, height: 11, x: 3, y: 11, rx: 2 }],
    ['path', { d: 'M7 11V7a5 5 0 0 1 10 0v4' }],
  ],
};

const SVG_NS = 'http://www.w3.org/2000/svg';

export function icon(name, className = 'icon') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  for (const [k, v] of Object.entries({
    viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor', 'stroke-width': 2,
    'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true',
    focusable: 'false', class: className,
  })) svg.setAttribute(k, String(v));
  for (const [tag, attrs] of ICONS[name]) {
    const part = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) part.setAttribute(k, String(v));
    svg.append(part);
  }
  return svg;
}

export function button(label, { variant = 'secondary', size, iconName, ...props } = {}) {
  const classes = ['btn', `btn-${variant}`, size ? `btn-${size}` : ''].filter(Boolean).join(' ');
  return h('button', { type: 'button', class: classes, ...props }, iconName ? icon(iconName) : null,
    h('span', { class: 'btn-label' }, label));
}

// A square button showing only an icon; `label` becomes its accessible name and tooltip.
export function iconButton(iconName, label, { title = label, variant = 'ghost', ...props } = {}) {
  return h('button', {
    type: 'button', class: `btn btn-icon btn-${variant}`, 'aria-label': label, title, ...props,
  }, icon(iconName));
}

// Disables a button while `work` runs, so a double click cannot send a request twice.
export async function busy(btn, work) {
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
  }
}

// ---- toasts -----------------------------------------------------------------------------

// While a modal dialog is open the rest of the page is inert: hidden from assistive technology
// and drawn under the backdrop. Toasts then go to the region inside the topmost dialog.
function toastRegion() {
  const dialogs = document.querySelectorAll('dialog[open]');
  const top = dialogs[dialogs.length - 1];
  return top?.querySelector(':scope > .toasts') || document.getElementById('toasts');
}

export function toast(message, { variant = 'success', detail } = {}) {
  const region = toastRegion();
  const iconName = variant === 'error' ? 'alert' : variant === 'info' ? 'info' : 'check';
  const item = h('div', { class: `toast toast-${variant}` },
    h('span', { class: 'toast-icon' }, icon(iconName)),
    h('div', { class: 'toast-body' },
      h('p', { class: 'toast-message' }, message),
      detail ? h('p', { class: 'toast-detail' }, detail) : null),
    h('button', {
      type: 'button', class: 'toast-close', 'aria-label': 'Dismiss notification', title: 'Dismiss',
      onClick: () => item.remove(),
    }, icon('x')));
  region.append(item);
  // Errors stay longer: people may want to read or quote the request ID.
  setTimeout(() => item.remove(), variant === 'error' ? 9000 : 4500);
}

export function errorToast(err) {
  toast(err.message, {
    variant: 'error',
    detail: err.requestId ? `Request ID: ${err.requestId}` : undefined,
  });
}

// ---- dialogs -----------------------------------------------------------------------------

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

function focusableIn(root) {
  return [...root.querySelectorAll(FOCUSABLE)].filter((el) => el.getClientRects().length > 0);
}

// Opens a modal <dialog>. The native modal makes the page behind it inert; Tab is still
// wrapped inside the dialog by hand because browsers let it escape to their own address bar.
// On close, focus goes to `returnFocus()` when given (the opener may have been re-rendered
// meanwhile), else back to the opener, else to the page heading.
export function openModal({ title, size = 'md', role = 'dialog', returnFocus } = {}) {
  const opener = document.activeElement;
  const titleId = uid('modal-title');
  const titleEl = h('h2', { class: 'modal-title', id: titleId }, title);
  const subtitle = h('div', { class: 'modal-subtitle' });
  const closeBtn = iconButton('x', 'Close', { class: 'btn btn-icon btn-ghost modal-close' });
  const body = h('div', { class: 'modal-body' });
  const footer = h('div', { class: 'modal-footer' });
  const dialog = h('dialog', {
    class: `modal modal-${size}`, 'aria-labelledby': titleId, role, 'aria-modal': 'true',
  }, h('div', { class: 'modal-header' }, h('div', { class: 'modal-heading' }, titleEl, subtitle), closeBtn),
  body, footer, h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' }));

  let closed = false;
  function close() {
    if (closed) return;
    closed = true;
    dialog.close();
    dialog.remove();
    const target = [returnFocus?.(), opener, document.getElementById('page-heading')]
      .find((el) => el && el.isConnected);
    target?.focus();
  }

  closeBtn.addEventListener('click', close);
  dialog.addEventListener('cancel', (event) => {
    event.preventDefault();
    close();
  });
  dialog.addEventListener('keydown', (event) => {
    if (event.key !== 'Tab') return;
    const items = focusableIn(dialog);
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });

  document.body.append(dialog);
  dialog.showModal();
  return {
    dialog, body, footer, subtitle, close,
    setTitle: (text) => { titleEl.textContent = text; },
  };
}

// Asks before a destructive action; `onConfirm` runs inside the dialog so a failure is shown
// where the person is looking, and the dialog only closes once the action succeeded. Then
// `successMessage` is shown, after closing: a toast raised inside would vanish with the dialog.
export function confirmDialog({ title, message, confirmLabel, onConfirm, successMessage, returnFocus }) {
  const modal = openModal({ title, size: 'sm', role: 'alertdialog', returnFocus });
  const descId = uid('confirm-desc');
  modal.dialog.setAttribute('aria-describedby', descId);
  const alertBox = formAlert();
  modal.body.append(
    h('div', { class: 'confirm-layout' },
      h('span', { class: 'confirm-icon' }, icon('alert')),
      h('div', { id: descId, class: 'confirm-text' }, message)),
    alertBox.el);
  const cancel = button('Cancel', { onClick: () => modal.close() });
  const confirm = button(confirmLabel, { variant: 'danger' });
  confirm.addEventListener('click', () => busy(confirm, async () => {
    alertBox.clear();
    try {
      await onConfirm();
      modal.close();
      toast(successMessage);
    } catch (err) {
      alertBox.show(err);
    }
  }));
  modal.footer.append(cancel, confirm);
  // The safe choice has focus, so a stray Enter does not delete anything.
  cancel.focus();
}

// An error banner inside a form or dialog for failures that belong to no single field.
export function formAlert() {
  const el = h('div', { class: 'form-alert', role: 'alert', hidden: true });
  return {
    el,
    show(err) {
      clear(el, icon('alert'), h('div', {},
        h('p', {}, err.message),
        err.requestId ? h('p', { class: 'form-alert-detail' }, `Request ID: ${err.requestId}`) : null));
      el.hidden = false;
    },
    clear() {
      el.hidden = true;
      el.replaceChildren();
    },
  };
}

// A labelled form control with optional hint, live character counter and error slot; the
// hint and error are tied to the control with aria-describedby so screen readers read them.
// The "Optional" marker sits outside the <label> so the control's name is exactly `label`.
export function field({ label, control, hint, counterMax, optional }) {
  const id = control.id || uid('field');
  control.id = id;
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const error = h('p', { class: 'field-error', id: errorId, hidden: true });
  let counter = null;
  if (counterMax) {
    counter = h('span', { class: 'field-counter', 'aria-live': 'polite' });
    const update = () => {
      const length = [...control.value].length;
      counter.textContent = `${length}/${counterMax}`;
      counter.classList.toggle('is-over', length > counterMax);
    };
    control.addEventListener('input', update);
    update();
  }
  const describedBy = [hint ? hintId : null, errorId].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', describedBy);
  const wrapper = h('div', { class: 'field' },
    h('div', { class: 'field-label-row' },
      h('label', { for: id, class: 'field-label' }, label),
      optional ? h('span', { class: 'field-optional' }, 'Optional') : null,
      counter),
    control,
    hint ? h('p', { class: 'field-hint', id: hintId }, hint) : null,
    error);
  return {
    el: wrapper,
    control,
    setError(message) {
      error.textContent = message || '';
      error.hidden = !message;
      if (message) control.setAttribute('aria-invalid', 'true');
      else control.removeAttribute('aria-invalid');
    },
    refreshCounter() {
      control.dispatchEvent(new Event('input'));
    },
  };
}

export function emptyState({ iconName, title, text, action }) {
  return h('div', { class: 'empty-state' },
    h('span', { class: 'empty-icon' }, icon(iconName)),
    h('p', { class: 'empty-title' }, title),
    text ? h('p', { class: 'empty-text' }, text) : null,
    action || null);
}

export function loadingRow(text = 'Loading…') {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

// ---- page building blocks -------------------------------------------------------------------

export function pageHeader({ eyebrow, title, subtitle, actions }) {
  return h('header', { class: 'page-header' },
    h('div', { class: 'page-heading' },
      eyebrow ? h('p', { class: 'page-eyebrow' }, eyebrow) : null,
      h('h1', { id: 'page-heading', tabindex: '-1' }, title),
      subtitle ? h('p', { class: 'page-subtitle' }, subtitle) : null),
    actions ? h('div', { class: 'page-actions' }, actions) : null);
}

export function agentEyebrow(agent, section) {
  return h('span', {}, agent.name, h('span', { class: 'eyebrow-sep', 'aria-hidden': 'true' }, ' / '), section);
}

export function errorPanel(err) {
  return h('div', { class: 'error-panel', role: 'alert' },
    icon('alert'),
    h('div', {},
      h('p', { class: 'error-panel-title' }, err.message),
      err.requestId ? h('p', { class: 'muted' }, `Request ID: ${err.requestId}`) : null));
}

// Puts the API's per-field messages next to their fields; returns the names it could place.
export function applyFieldErrors(err, fieldsByName) {
  const placed = [];
  if (!err.fields) return placed;
  for (const [name, message] of Object.entries(err.fields)) {
    if (fieldsByName[name]) {
      fieldsByName[name].setError(message);
      placed.push(name);
    }
  }
  return placed;
}

export function roleLabel(role) {
  return { owner: 'Owner', admin: 'Admin', member: 'Member' }[role] || role;
}

// ---- time ---------------------------------------------------------------------------------

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'long' });
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function formatDateTime(iso) {
  return dateTimeFormat.format(new Date(iso));
}

function relativeTime(iso) {
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  const abs = Math.abs(seconds);
  if (abs < 45) return 'just now';
  const units = [['minute', 60], ['hour', 3600], ['day', 86400], ['month', 2592000], ['year', 31536000]];
  let chosen = units[0];
  for (const unit of units) if (abs >= unit[1] * 0.95) chosen = unit;
  return relativeFormat.format(Math.round(seconds / chosen[1]), chosen[0]);
}

// A <time> element whose tooltip always holds the exact moment.
export function timeEl(iso, style = 'relative') {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const text = style === 'date' ? dateFormat.format(new Date(iso)) : relativeTime(iso);
  return h('time', { datetime: iso, title: formatDateTime(iso) }, text);
}

// ---- clipboard ----------------------------------------------------------------------------

// The async Clipboard API exists only in secure contexts; a self-hosted server reached over
// plain HTTP on a LAN address is not one, so fall back to a hidden textarea and copy.
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = h('textarea', { class: 'visually-hidden', readonly: true, 'aria-hidden': 'true' });
  area.value = text;
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('Copying is blocked by this browser. Select the key and copy it by hand.');
}
