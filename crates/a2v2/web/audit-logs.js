// The Audit logs page: the workspace's append-only event list, filterable and paged.

import { api, query } from '/assets/api.js';
import {
  busy, button, clear, emptyState, errorPanel, field, formatDateTime, h, loadingRow, pageHeader,
  timeEl, uid,
} from '/assets/ui.js';

// Each group also offers its whole family: the API reads `api_key.*` as a prefix.
const ACTION_GROUPS = [
  ['Workspace', 'workspace', ['workspace.setup']],
  ['Sign-ins', 'session', ['session.created', 'session.failed'], 'All sign-in events'],
  ['Members', 'member', ['member.created', 'member.updated', 'member.deleted'], 'All member events'],
  ['Agents', 'agent', ['agent.created', 'agent.updated', 'agent.deleted'], 'All agent events'],
  ['API keys', 'api_key', ['api_key.created', 'api_key.updated', 'api_key.deleted', 'api_key.revealed'], 'All API key events'],
  ['Contacts', 'contact', ['contact.created', 'contact.updated', 'contact.deleted'], 'All contact events'],
  ['Documents', 'document', ['document.created', 'document.updated', 'document.deleted'], 'All document events'],
  ['API requests', 'api_request', ['api_request.denied']],
  ['Audit log', 'audit', ['audit.exported', 'audit.purged'], 'All audit log events'],
];

const TYPE_LABELS = {
  member: 'Member', api_key: 'API key', system: 'System', agent: 'Agent', contact: 'Contact', document: 'Document',
};

const PAGE_SIZE = 50;

// Colours the action by its verb so creations, changes and refusals stand apart at a glance.
function actionTone(action) {
  const verb = action.split('.').pop();
  if (verb === 'created' || verb === 'setup') return 'success';
  if (verb === 'deleted') return 'danger';
  if (verb === 'denied' || verb === 'failed') return 'warning';
  return 'info';
}

// <input type="datetime-local"> yields local wall-clock time; the API wants RFC 3339.
function toRfc3339(localValue) {
  if (!localValue) return '';
  const date = new Date(localValue);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

export async function renderAuditLogs(ctx) {
  const { main, agents } = ctx;
  const agentName = new Map(agents.map((a) => [a.id, a.name]));

  const actionSelect = h('select', {},
    h('option', { value: '' }, 'All actions'),
    ACTION_GROUPS.map(([label, prefix, actions, familyLabel]) => h('optgroup', { label },
      familyLabel ? h('option', { value: `${prefix}.*` }, familyLabel) : null,
      actions.map((a) => h('option', { value: a }, a)))));
  const agentSelect = h('select', {},
    h('option', { value: '' }, 'All agents'),
    agents.map((a) => h('option', { value: a.id }, a.name)));
  const since = h('input', { type: 'datetime-local' });
  const until = h('input', { type: 'datetime-local' });
  const filters = {
    action: field({ label: 'Action', control: actionSelect }),
    agent_id: field({ label: 'Agent', control: agentSelect }),
    since: field({ label: 'From', control: since }),
    until: field({ label: 'To', control: until }),
  };
  const reset = button('Clear filters', { variant: 'ghost', size: 'sm', onClick: () => {
    Object.values(filters).forEach((f) => { f.control.value = ''; });
    restart();
  } });
  const filterBar = h('form', { class: 'filter-bar', role: 'search', 'aria-label': 'Filter audit events', novalidate: true },
    Object.values(filters).map((f) => f.el), h('div', { class: 'filter-actions' }, reset));
  filterBar.addEventListener('submit', (event) => event.preventDefault());
  Object.values(filters).forEach((f) => f.control.addEventListener('change', restart));

  // Downloads are plain links (the session cookie goes along); `download` keeps the app's
  // router from treating them as pages.
  const exportLinks = [['csv', 'Export CSV'], ['jsonl', 'Export JSONL']].map(([format, label]) => {
    const link = h('a', { class: 'btn btn-secondary', download: true }, label);
    link.dataset.format = format;
    return link;
  });
  const updateExportLinks = () => {
    exportLinks.forEach((link) => {
      link.href = `/api/audit-logs/export${query({ format: link.dataset.format, ...filterValues() })}`;
    });
  };

  const card = h('section', { class: 'card', 'aria-label': 'Audit events' });
  const status = h('p', { class: 'table-status', role: 'status' });
  main.append(pageHeader({
    title: 'Audit logs',
    subtitle: 'Every change to members, agents and API keys, every sign-in, and every refused API request: who, what, when and from where.',
    actions: exportLinks,
  }), filterBar, card, status);

  let cursor = null;
  let shown = 0;
  let generation = 0;
  let tbody = null;
  const more = button('Load more', { onClick: () => busy(more, loadPage) });
  const footer = h('div', { class: 'table-footer' }, more);

  function filterValues() {
    return {
      action: actionSelect.value,
      agent_id: agentSelect.value,
      since: toRfc3339(since.value),
      until: toRfc3339(until.value),
    };
  }

  async function restart() {
    generation += 1;
    cursor = null;
    shown = 0;
    tbody = null;
    reset.hidden = Object.values(filters).every((f) => f.control.value === '');
    updateExportLinks();
    clear(card, loadingRow());
    status.textContent = '';
    await loadPage();
  }

  async function loadPage() {
    const mine = generation;
    let page;
    try {
      page = await api('GET', `/api/audit-logs${query({ limit: PAGE_SIZE, ...filterValues(), cursor })}`);
    } catch (err) {
      if (ctx.isCurrent() && mine === generation) clear(card, errorPanel(err));
      return;
    }
    // A newer filter change started another load; this answer belongs to the old filters.
    if (!ctx.isCurrent() || mine !== generation) return;
    cursor = page.has_more ? page.next_cursor : null;
    if (!tbody) {
      if (page.data.length === 0) {
        clear(card, emptyState({
          iconName: 'history',
          title: reset.hidden ? 'No audit events yet.' : 'No events match these filters.',
        }));
        return;
      }
      tbody = h('tbody');
      clear(card, h('table', { class: 'table audit-table' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Time'),
          h('th', { scope: 'col' }, 'Actor'),
          h('th', { scope: 'col' }, 'Action'),
          h('th', { scope: 'col' }, 'Target'),
          h('th', { scope: 'col' }, 'Agent'),
          h('th', { scope: 'col' }, 'IP address'),
          h('th', { scope: 'col', class: 'col-actions' }, h('span', { class: 'visually-hidden' }, 'Details')))),
        tbody), footer);
    }
    for (const event of page.data) tbody.append(...eventRows(event));
    shown += page.data.length;
    footer.hidden = !cursor;
    status.textContent = `Showing ${shown} ${shown === 1 ? 'event' : 'events'}${cursor ? '' : ', the oldest included'}.`;
  }

  function eventRows(event) {
    const detailsId = uid('event-details');
    const toggle = button('Details', { size: 'sm', variant: 'ghost', 'aria-expanded': 'false', 'aria-controls': detailsId });
    const detailsRow = h('tr', { id: detailsId, class: 'details-row', hidden: true },
      h('td', { colspan: 7 }, detailsList(event)));
    toggle.addEventListener('click', () => {
      const open = detailsRow.hidden;
      detailsRow.hidden = !open;
      toggle.setAttribute('aria-expanded', String(open));
    });
    const who = event.actor || {};
    const agentCell = event.agent_id
      ? h('span', { title: event.agent_id }, agentName.get(event.agent_id) || 'Deleted agent')
      : h('span', { class: 'muted' }, '—');
    return [
      h('tr', { dataset: { eventId: event.id, action: event.action } },
        h('td', { class: 'nowrap' }, timeEl(event.occurred_at)),
        h('td', {}, labelled(who.label, TYPE_LABELS[who.type] || who.type)),
        h('td', {}, h('code', { class: `action-pill tone-${actionTone(event.action)}` }, event.action)),
        h('td', {}, event.target ? labelled(event.target.label, TYPE_LABELS[event.target.type] || event.target.type) : h('span', { class: 'muted' }, '—')),
        h('td', {}, agentCell),
        h('td', {}, event.ip ? h('code', { class: 'ip' }, event.ip) : h('span', { class: 'muted' }, '—')),
        h('td', { class: 'col-actions' }, toggle)),
      detailsRow,
    ];
  }

  await restart();
}

function labelled(label, type) {
  return h('div', { class: 'stacked' },
    h('span', { class: 'cell-strong' }, label || '—'),
    type ? h('span', { class: 'cell-sub' }, type) : null);
}

function detailsList(event) {
  const entries = [
    ['Event ID', event.id],
    ['Occurred at', formatDateTime(event.occurred_at)],
    ['User agent', event.user_agent || '—'],
    ...Object.entries(event.details || {}).map(([key, value]) => [
      key, typeof value === 'string' ? value : JSON.stringify(value),
    ]),
  ];
  return h('dl', { class: 'details-list' },
    entries.map(([key, value]) => h('div', { class: 'details-item' }, h('dt', {}, key), h('dd', {}, value))));
}
