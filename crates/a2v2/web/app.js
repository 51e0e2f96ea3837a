// Dashboard entry point: session bootstrap, history-API routing, the sidebar shell, and the
// smaller pages (setup, sign-in, agents).

import { api, ApiError, enc, listAll, query, setCsrfToken, setUnauthenticatedHandler } from '/assets/api.js';
import {
  agentEyebrow, applyFieldErrors, busy, button, clear, confirmDialog, emptyState, errorPanel, errorToast, field,
  formAlert, h, icon, iconButton, loadingRow, openModal, pageHeader, roleLabel, timeEl, toast, uid,
} from '/assets/ui.js';
import { renderApiPermissions } from '/assets/api-keys.js';
import { renderContacts } from '/assets/contacts.js';
import { INVITE_PATH, renderMembers } from '/assets/members.js';
import { renderAuditLogs } from '/assets/audit-logs.js';
import { renderApiDocs } from '/assets/api-docs.js';
import { renderDocument, renderDocuments } from '/assets/documents.js';

const state = {
  needsSetup: false,
  member: null,
  agents: [],
  agentsLoaded: false,
  agentId: null, // the agent the sidebar shows; kept when visiting workspace pages
  afterSignIn: null,
};

const root = document.getElementById('app');
let renderSeq = 0;

function canManage() {
  return state.member?.role === 'owner' || state.member?.role === 'admin';
}

// ---- routing ------------------------------------------------------------------------------

const ROUTES = [
  { pattern: /^\/agents$/, page: 'agents', title: 'Agents', render: renderAgents },
  { pattern: /^\/agents\/([^/]+)\/contacts$/, page: 'contacts', title: 'Contacts', agent: true, render: (ctx) => renderContacts(ctx, { canManage: canManage() }) },
  { pattern: /^\/agents\/([^/]+)\/documents$/, page: 'documents', title: 'Documents', agent: true, render: renderDocuments },
  {
    pattern: /^\/agents\/([^/]+)\/documents\/([^/]+)$/, page: 'documents', title: 'Document', agent: true,
    render: (ctx, params) => renderDocument(ctx, params[1]),
  },
  { pattern: /^\/agents\/([^/]+)\/api-permissions$/, page: 'api-permissions', title: 'API Permission', agent: true, render: renderApiPermissions },
  { pattern: /^\/members$/, page: 'members', title: 'Members', render: renderMembers },
  { pattern: /^\/audit-logs$/, page: 'audit-logs', title: 'Audit logs', render: renderAuditLogs },
  { pattern: /^\/api-reference$/, page: 'api-reference', title: 'API reference', render: renderApiDocs },
];

function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

// Same-origin links are handled here so that moving between pages keeps the session state
// and the CSRF token in memory instead of reloading the app.
function onDocumentClick(event) {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest('a[href]');
  if (!link || link.target || link.hasAttribute('download')) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
}

function render() {
  renderSeq += 1;
  // A dialog belongs to the page it was opened on (Back, or a session that ended under it).
  document.querySelectorAll('dialog').forEach((dialog) => dialog.remove());
  const seq = renderSeq;
  const path = location.pathname.replace(/\/+$/, '') || '/';

  if (state.needsSetup) {
    if (path !== '/setup') return navigate('/setup', { replace: true });
    return renderSetup();
  }
  if (path === '/setup') return navigate(state.member ? '/agents' : '/login', { replace: true });
  // Reachable signed in or not: accepting signs in as the invited member.
  if (path === INVITE_PATH) return renderAcceptInvite();
  if (!state.member) {
    if (path !== '/login') {
      state.afterSignIn = location.pathname + location.search;
      return navigate('/login', { replace: true });
    }
    return renderLogin();
  }
  if (path === '/login' || path === '/') return navigate('/agents', { replace: true });
  const agentRoot = path.match(/^\/agents\/([^/]+)$/);
  if (agentRoot) return navigate(`/agents/${agentRoot[1]}/contacts`, { replace: true });

  const route = ROUTES.find((r) => r.pattern.test(path));
  const params = route ? path.match(route.pattern).slice(1).map(decodeURIComponent) : [];
  return renderInShell(route, params, seq);
}

// ---- shell --------------------------------------------------------------------------------

let shell = null;

function ensureShell() {
  if (shell && shell.root.isConnected) return shell;
  const sidebar = h('aside', { class: 'sidebar', 'aria-label': 'Sidebar' });
  const main = h('main', { class: 'main', id: 'main', tabindex: '-1' });
  const layout = h('div', { class: 'shell' },
    h('a', { class: 'skip-link', href: '#main' }, 'Skip to content'),
    sidebar, main);
  layout.querySelector('.skip-link').addEventListener('click', (event) => {
    event.preventDefault();
    main.focus();
  });
  clear(root, layout);
  shell = { root: layout, sidebar, main };
  return shell;
}

async function loadAgents() {
  state.agents = await listAll('/api/agents');
}

// After a deletion the sidebar's agent may be gone; it then falls back to the first agent.
function keepSidebarAgent() {
  if (!state.agents.some((a) => a.id === state.agentId)) state.agentId = state.agents[0]?.id || null;
}

async function renderInShell(route, params, seq) {
  const { main } = ensureShell();
  const isCurrent = () => seq === renderSeq;
  if (!state.agentsLoaded) {
    clear(main, loadingRow());
    try {
      await loadAgents();
      state.agentsLoaded = true;
    } catch (err) {
      if (isCurrent()) clear(main, errorPanel(err));
      return;
    }
    if (!isCurrent()) return;
  }

  let agent = null;
  if (route?.agent) {
    agent = state.agents.find((a) => a.id === params[0]) || null;
    if (agent) state.agentId = agent.id;
  }
  keepSidebarAgent();

  renderSidebar(route?.page);
  document.title = `${route ? route.title : 'Not found'} · a2v2`;
  clear(main);

  if (!route) {
    main.append(emptyState({
      iconName: 'info', title: 'Page not found',
      text: 'The address does not match any page of the dashboard.',
      action: h('a', { class: 'btn btn-secondary', href: '/agents' }, 'Go to agents'),
    }));
    return;
  }
  if (route.agent && !agent) {
    main.append(emptyState({
      iconName: 'bot', title: 'Agent not found',
      text: 'It may have been deleted, or the link is wrong.',
      action: h('a', { class: 'btn btn-secondary', href: '/agents' }, 'Go to agents'),
    }));
    return;
  }
  const ctx = {
    main, agent, member: state.member, canManage: canManage(), isCurrent,
    agents: state.agents,
    refreshAgents: async () => {
      await loadAgents();
      keepSidebarAgent();
      renderSidebar(route.page);
    },
  };
  try {
    await route.render(ctx, params);
  } catch (err) {
    if (!isCurrent()) return;
    if (err instanceof ApiError && err.status === 401) return;
    clear(main, errorPanel(err));
  }
  if (isCurrent() && document.activeElement === document.body) {
    document.getElementById('page-heading')?.focus({ preventScroll: true });
  }
}

function navLink(href, label, iconName, active) {
  return h('a', {
    href, class: `nav-link${active ? ' is-active' : ''}`, 'aria-current': active ? 'page' : null,
  }, icon(iconName), h('span', {}, label));
}

function renderSidebar(page) {
  const { sidebar } = shell;
  // Arrow keys on the agent switcher navigate at once; keep focus on it across the re-render
  // so a keyboard user can keep moving through agents.
  const switcherHadFocus = document.activeElement?.id === 'agent-switcher';
  const agentId = state.agentId;
  const agentBase = agentId ? `/agents/${enc(agentId)}` : null;

  let agentSection = null;
  if (agentId) {
    const select = h('select', { id: 'agent-switcher', class: 'agent-select' },
      state.agents.map((a) => h('option', { value: a.id, selected: a.id === agentId }, a.name)));
    select.addEventListener('change', () => {
      const sub = ['contacts', 'documents', 'api-permissions'].includes(page) ? page : 'contacts';
      navigate(`/agents/${enc(select.value)}/${sub}`);
    });
    agentSection = h('div', { class: 'nav-section' },
      h('label', { for: 'agent-switcher', class: 'nav-heading' }, 'Agent'),
      h('div', { class: 'agent-switcher' }, h('span', { class: 'agent-avatar' }, icon('bot')), select,
        h('span', { class: 'agent-chevron' }, icon('chevronDown'))),
      h('nav', { 'aria-label': 'Agent' },
        h('ul', { class: 'nav-list' },
          h('li', {}, navLink(`${agentBase}/contacts`, 'Contacts', 'contacts', page === 'contacts')),
          h('li', {}, navLink(`${agentBase}/documents`, 'Documents', 'file', page === 'documents'))),
        h('p', { class: 'nav-group', id: 'nav-group-channels' }, 'Channels & API'),
        h('ul', { class: 'nav-list', 'aria-labelledby': 'nav-group-channels' },
          h('li', {}, navLink(`${agentBase}/api-permissions`, 'API Permissions', 'key', page === 'api-permissions')))));
  }

  const member = state.member;
  const signOut = button('Sign out', { variant: 'ghost', size: 'sm', iconName: 'logout', class: 'btn btn-ghost btn-sm sign-out' });
  signOut.addEventListener('click', () => busy(signOut, signOutNow));

  clear(sidebar,
    h('div', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'a2'), h('span', { class: 'brand-name' }, 'a2v2')),
    agentSection,
    h('div', { class: 'nav-section' },
      h('p', { class: 'nav-heading', id: 'nav-heading-workspace' }, 'Workspace'),
      h('nav', { 'aria-labelledby': 'nav-heading-workspace' },
        h('ul', { class: 'nav-list' },
          h('li', {}, navLink('/agents', 'Agents', 'grid', page === 'agents')),
          h('li', {}, navLink('/members', 'Members', 'users', page === 'members')),
          // Only owners and admins may read the audit log; others would only meet a 403.
          canManage() ? h('li', {}, navLink('/audit-logs', 'Audit logs', 'history', page === 'audit-logs')) : null,
          h('li', {}, navLink('/api-reference', 'API reference', 'monitor', page === 'api-reference'))))),
    h('div', { class: 'sidebar-footer' },
      h('div', { class: 'account' },
        h('span', { class: 'avatar', 'aria-hidden': 'true' }, member.email.slice(0, 1).toUpperCase()),
        h('div', { class: 'account-text' },
          h('span', { class: 'account-email', title: member.email }, member.email),
          h('span', { class: 'account-role' }, roleLabel(member.role)))),
      signOut));
  if (switcherHadFocus) document.getElementById('agent-switcher')?.focus();
}

async function signOutNow() {
  try {
    await api('DELETE', '/api/session', undefined, { quietUnauthenticated: true });
  } catch (err) {
    if (err.status !== 401) {
      errorToast(err);
      return;
    }
  }
  signedOut();
}

function signedIn(body) {
  state.member = body.member;
  setCsrfToken(body.csrf_token);
  state.agentsLoaded = false;
}

function signedOut() {
  state.member = null;
  state.agents = [];
  state.agentsLoaded = false;
  setCsrfToken(null);
  shell = null;
  navigate('/login');
}

// ---- setup and sign-in ---------------------------------------------------------------------

function authLayout(title, subtitle, form) {
  shell = null;
  clear(root, h('main', { class: 'auth', id: 'main' },
    h('div', { class: 'auth-card' },
      h('div', { class: 'auth-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'a2'), h('span', { class: 'brand-name' }, 'a2v2')),
      h('h1', { id: 'page-heading', tabindex: '-1' }, title),
      h('p', { class: 'auth-subtitle' }, subtitle),
      form)));
}

function renderSetup() {
  document.title = 'Set up · a2v2';
  const fields = {
    workspace_name: field({ label: 'Workspace name', control: h('input', { type: 'text', autocomplete: 'organization', required: true }) }),
    email: field({ label: 'Email', control: h('input', { type: 'email', autocomplete: 'email', required: true }) }),
    password: field({
      label: 'Password', hint: 'At least 12 characters.',
      control: h('input', { type: 'password', autocomplete: 'new-password', required: true }),
    }),
  };
  const alertBox = formAlert();
  const submit = button('Create workspace', { variant: 'primary', type: 'submit', class: 'btn btn-primary btn-block' });
  const form = h('form', { class: 'form', novalidate: true },
    alertBox.el, Object.values(fields).map((f) => f.el), submit);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(submit, async () => {
      alertBox.clear();
      Object.values(fields).forEach((f) => f.setError(''));
      try {
        const body = await api('POST', '/api/setup', {
          workspace_name: fields.workspace_name.control.value.trim(),
          email: fields.email.control.value.trim(),
          password: fields.password.control.value,
        }, { quietUnauthenticated: true });
        state.needsSetup = false;
        signedIn(body);
        navigate('/agents', { replace: true });
      } catch (err) {
        if (err.code === 'already_set_up') {
          state.needsSetup = false;
          navigate('/login', { replace: true });
          return;
        }
        if (applyFieldErrors(err, fields).length === 0) alertBox.show(err);
      }
    });
  });
  authLayout('Set up your workspace', 'Create the workspace and its owner account. You can invite others once you are in.', form);
  fields.workspace_name.control.focus();
}

function renderLogin() {
  document.title = 'Sign in · a2v2';
  const fields = {
    email: field({ label: 'Email', control: h('input', { type: 'email', autocomplete: 'username', required: true }) }),
    password: field({ label: 'Password', control: h('input', { type: 'password', autocomplete: 'current-password', required: true }) }),
  };
  const alertBox = formAlert();
  const submit = button('Sign in', { variant: 'primary', type: 'submit', class: 'btn btn-primary btn-block' });
  const form = h('form', { class: 'form', novalidate: true },
    alertBox.el, Object.values(fields).map((f) => f.el), submit);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(submit, async () => {
      alertBox.clear();
      Object.values(fields).forEach((f) => f.setError(''));
      try {
        const body = await api('POST', '/api/session', {
          email: fields.email.control.value.trim(),
          password: fields.password.control.value,
        }, { quietUnauthenticated: true });
        signedIn(body);
        const next = state.afterSignIn;
        state.afterSignIn = null;
        navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/agents', { replace: true });
      } catch (err) {
        if (applyFieldErrors(err, fields).length === 0) alertBox.show(err);
      }
    });
  });
  authLayout('Sign in', 'Welcome back. Sign in to manage agents and their API keys.', form);
  fields.email.control.focus();
}

function renderAcceptInvite() {
  document.title = 'Accept invite · a2v2';
  const token = decodeURIComponent(location.hash.slice(1));
  const fields = {
    password: field({
      label: 'Password', hint: 'At least 12 characters.',
      control: h('input', { type: 'password', autocomplete: 'new-password', required: true }),
    }),
  };
  const alertBox = formAlert();
  const submit = button('Accept invite', { variant: 'primary', type: 'submit', class: 'btn btn-primary btn-block' });
  const form = h('form', { class: 'form', novalidate: true },
    alertBox.el, Object.values(fields).map((f) => f.el), submit);
  const refused = {
    message: 'This invite link is not valid: it may have been used already or have expired. Ask an owner or admin for a new one.',
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(submit, async () => {
      alertBox.clear();
      fields.password.setError('');
      try {
        const body = await api('POST', '/api/invites/accept', {
          token, password: fields.password.control.value,
        }, { quietUnauthenticated: true });
        signedIn(body);
        toast('Welcome! Your account is ready.');
        navigate('/agents', { replace: true });
      } catch (err) {
        if (err.code === 'not_found') alertBox.show({ ...refused, requestId: err.requestId });
        else if (applyFieldErrors(err, fields).length === 0) alertBox.show(err);
      }
    });
  });
  authLayout('Accept your invite', 'Choose a password to join the workspace. You will use it with your email to sign in.', form);
  if (!token) {
    alertBox.show(refused);
    submit.disabled = true;
  }
  fields.password.control.focus();
}

// ---- agents --------------------------------------------------------------------------------

async function renderAgents(ctx) {
  const { main } = ctx;
  const addBtn = ctx.canManage
    ? button('Create agent', { variant: 'primary', iconName: 'plus', onClick: () => openAgentModal(ctx, null, refresh) })
    : null;
  const card = h('section', { class: 'card', 'aria-labelledby': 'page-heading' });
  main.append(
    pageHeader({
      title: 'Agents',
      subtitle: 'Each agent owns its own contacts, documents and API keys. Nothing is shared between agents.',
      actions: addBtn,
    }),
    card);

  function draw() {
    if (ctx.agents.length === 0) {
      clear(card, emptyState({
        iconName: 'bot', title: 'No agents yet.',
        text: ctx.canManage ? 'Create an agent to start issuing API keys for it.' : 'An owner or admin can create the first agent.',
        action: ctx.canManage ? button('Create agent', { variant: 'primary', iconName: 'plus', onClick: () => openAgentModal(ctx, null, refresh) }) : null,
      }));
      return;
    }
    clear(card, h('table', { class: 'table' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Name'),
        h('th', { scope: 'col' }, 'Created'),
        h('th', { scope: 'col' }, 'Updated'),
        ctx.canManage ? h('th', { scope: 'col', class: 'col-actions' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
      h('tbody', {}, ctx.agents.map((agent) => h('tr', { dataset: { agentId: agent.id } },
        h('td', {}, h('a', { class: 'row-title-link', href: `/agents/${enc(agent.id)}/contacts` },
          h('span', { class: 'agent-avatar' }, icon('bot')), agent.name)),
        h('td', {}, timeEl(agent.created_at, 'date')),
        h('td', {}, timeEl(agent.updated_at || agent.created_at)),
        ctx.canManage ? h('td', { class: 'col-actions' }, h('div', { class: 'row-actions' },
          h('a', { class: 'btn btn-secondary btn-sm', href: `/agents/${enc(agent.id)}/api-permissions` }, icon('key'), h('span', { class: 'btn-label' }, 'API keys')),
          iconButton('pencil', 'Rename', { title: 'Rename agent', dataset: { action: 'rename' }, onClick: () => openAgentModal(ctx, agent, refresh) }),
          iconButton('trash', 'Delete', { title: 'Delete agent', variant: 'ghost-danger', dataset: { action: 'delete' }, onClick: () => confirmDeleteAgent(ctx, agent, refresh) }))) : null)))));
  }

  async function refresh() {
    await ctx.refreshAgents();
    ctx.agents = state.agents;
    if (ctx.isCurrent()) draw();
  }
  draw();
}

function openAgentModal(ctx, agent, refresh) {
  const modal = openModal({
    title: agent ? 'Rename agent' : 'Create agent',
    returnFocus: () => (agent
      ? document.querySelector(`tr[data-agent-id="${CSS.escape(agent.id)}"] [data-action="rename"]`)
      : null),
  });
  const name = field({ label: 'Name', control: h('input', { type: 'text', value: agent ? agent.name : '', autocomplete: 'off' }), hint: 'For example “Support assistant” or “Invoice bot”.' });
  const alertBox = formAlert();
  const formId = uid('agent-form');
  const submit = button(agent ? 'Save changes' : 'Create agent', { variant: 'primary', type: 'submit', form: formId });
  const form = h('form', { class: 'form', id: formId, novalidate: true }, alertBox.el, name.el);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(submit, async () => {
      alertBox.clear();
      name.setError('');
      try {
        const body = { name: name.control.value.trim() };
        if (agent) await api('PATCH', `/api/agents/${enc(agent.id)}`, body);
        else await api('POST', '/api/agents', body);
        await refresh();
        modal.close();
        toast(agent ? 'Agent renamed.' : 'Agent created.');
      } catch (err) {
        if (applyFieldErrors(err, { name }).length === 0) alertBox.show(err);
      }
    });
  });
  modal.body.append(form);
  modal.footer.append(button('Cancel', { onClick: () => modal.close() }), submit);
  name.control.focus();
}

function confirmDeleteAgent(ctx, agent, refresh) {
  confirmDialog({
    title: 'Delete agent?',
    message: [
      h('p', {}, `“${agent.name}” will be permanently deleted, together with its contacts, documents and API keys.`),
      h('p', {}, 'Its API keys stop working at once. Any applications using them will lose access.'),
    ],
    confirmLabel: 'Delete agent',
    returnFocus: () => document.getElementById('page-heading'),
    onConfirm: async () => {
      await api('DELETE', `/api/agents/${enc(agent.id)}`);
      await refresh();
    },
    successMessage: 'Agent deleted.',
  });
}

// ---- documents (read-only view) -------------------------------------------------------------

// Renders a paged, read-only list. A 404 is read as "nothing here yet" because these views
// may be served by a server version that does not list this kind of record.
async function pagedTable(ctx, { card, path, columns, empty }) {
  let cursor = null;
  const rows = [];
  const tbody = h('tbody');
  const more = button('Load more', { onClick: () => busy(more, loadPage) });
  const footer = h('div', { class: 'table-footer' }, more);

  async function loadPage() {
    let page;
    try {
      page = await api('GET', `${path}${query({ limit: 50, cursor })}`);
    } catch (err) {
      if (err.status === 404 && rows.length === 0) page = { data: [], has_more: false, next_cursor: null };
      else throw err;
    }
    if (!ctx.isCurrent()) return;
    rows.push(...page.data);
    cursor = page.has_more ? page.next_cursor : null;
    if (rows.length === 0) {
      clear(card, empty);
      return;
    }
    for (const item of page.data) tbody.append(h('tr', {}, columns.map((c) => h('td', { class: c.class || null }, c.cell(item)))));
    footer.hidden = !cursor;
    if (!tbody.isConnected) {
      clear(card, h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class || null }, c.title)))),
        tbody), footer);
    }
  }

  clear(card, loadingRow());
  await loadPage();
}

// ---- boot ---------------------------------------------------------------------------------

function renderFatal(err) {
  clear(root, h('main', { class: 'auth', id: 'main' }, h('div', { class: 'auth-card' }, errorPanel(err),
    button('Try again', { variant: 'primary', onClick: () => location.reload() }))));
}

async function boot() {
  setUnauthenticatedHandler(() => {
    if (state.member) {
      state.member = null;
      state.afterSignIn = location.pathname + location.search;
      shell = null;
      toast('Your session has ended. Sign in again to continue.', { variant: 'info' });
      navigate('/login', { replace: true });
    }
  });
  try {
    const setup = await api('GET', '/api/setup', undefined, { quietUnauthenticated: true });
    state.needsSetup = Boolean(setup.needs_setup);
    if (!state.needsSetup) {
      try {
        signedIn(await api('GET', '/api/session', undefined, { quietUnauthenticated: true }));
      } catch (err) {
        if (err.status !== 401) throw err;
      }
    }
  } catch (err) {
    renderFatal(err);
    return;
  }
  window.addEventListener('popstate', render);
  document.addEventListener('click', onDocumentClick);
  render();
}

boot();
