// The dashboard end to end, in the order a new operator meets it: first-run setup, an agent,
// its API keys through every state, a member's read-only view, Members and Audit logs.
// The steps share one server and one browser page and build on each other.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  DESKTOP, apiSession, eventually, keyInfo, launchBrowser, screenshot, startServer, watchErrors,
} from './harness.mjs';

const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };
const VIEWER = { email: 'viewer@example.com', password: 'viewer password 1234' };
const ADDED = { email: 'ops@example.com', password: 'ops password 123456' };
const DESCRIPTION = 'Pushes new leads from the website form into the CRM.';

describe('dashboard', { concurrency: false }, () => {
  let server;
  let browser;
  let context;
  let page;
  let errors;
  let agentId;
  let secret;
  let ownerApi;

  const toast = (text) => page.locator('.toasts').getByText(text, { exact: true });
  const keyRow = (name) => page.locator('tbody tr', { has: page.getByText(name, { exact: true }) });
  const badgesOf = async (row) => (await row.locator('.badge').allTextContents()).map((t) => t.trim());
  const clipboard = () => page.evaluate(() => navigator.clipboard.readText());

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: DESKTOP, baseURL: server.url });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    errors = watchErrors(page);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('first visit shows setup, which creates the owner and signs in', async () => {
    await page.goto('/');
    await page.waitForURL('**/setup');
    await page.getByLabel('Workspace name').fill('Acme');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Create workspace' }).click();
    await page.waitForURL('**/agents');
    await page.getByRole('heading', { level: 1, name: 'Agents' }).waitFor();
    await page.getByText('No agents yet.').waitFor();
    ownerApi = await apiSession(server.url, OWNER.email, OWNER.password);
  });

  it('creates an agent and shows its empty contacts and documents', async () => {
    await page.getByRole('button', { name: 'Create agent' }).first().click();
    const dialog = page.getByRole('dialog', { name: 'Create agent' });
    await dialog.getByLabel('Name').fill('Support assistant');
    await dialog.getByRole('button', { name: 'Create agent' }).click();
    await dialog.waitFor({ state: 'detached' });
    await toast('Agent created.').waitFor();

    await page.getByRole('link', { name: 'Support assistant' }).click();
    await page.waitForURL(/\/agents\/[^/]+\/contacts$/);
    agentId = decodeURIComponent(new URL(page.url()).pathname.split('/')[2]);
    await page.getByRole('heading', { level: 1, name: 'Contacts' }).waitFor();
    await page.getByText('No contacts yet.').waitFor();

    await page.getByRole('link', { name: 'Documents' }).click();
    await page.getByRole('heading', { level: 1, name: 'Documents' }).waitFor();
    await page.getByText('No documents yet.').waitFor();
  });

  it('API Permissions starts empty, with the fixed title, subtitle and practices', async () => {
    const sidebar = page.getByRole('complementary', { name: 'Sidebar' });
    await sidebar.getByText('Channels & API').waitFor();
    await sidebar.getByRole('link', { name: 'API Permissions' }).click();
    await page.waitForURL(`**/agents/${agentId}/api-permissions`);
    await page.getByRole('heading', { level: 1, name: 'API Permission' }).waitFor();
    await page.getByText('Manage API keys and their permissions for external integrations.').waitFor();
    await page.getByText('No API keys yet.').waitFor();
    for (const practice of ['Use descriptive names', 'Limit IP addresses', 'Grant only needed permissions', 'Review and revoke unused keys']) {
      await page.getByText(practice, { exact: true }).waitFor();
    }
    await screenshot(page, 'api-permissions-empty.png');
  });

  it('the Add API Key modal traps focus, closes on Escape and returns focus', async () => {
    const add = page.locator('#add-api-key');
    await add.click();
    const dialog = page.getByRole('dialog', { name: 'Add API Key' });
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id === document.querySelector('dialog label[for]')?.htmlFor), true,
      'Name has focus when the modal opens');
    for (let i = 0; i < 12; i += 1) {
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => Boolean(document.activeElement?.closest('dialog'))), true, 'focus stays in the modal');
    }
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'add-api-key');
  });

  it('keeps step 1 open with the API’s message next to Name for a 101-character name', async () => {
    await page.locator('#add-api-key').click();
    const dialog = page.getByRole('dialog', { name: 'Add API Key' });
    await dialog.getByText('Step 1 of 2 — Enter basic information').waitFor();
    const name = dialog.getByLabel('Name', { exact: true });
    await name.fill('k'.repeat(101));
    await dialog.getByText('101/100').waitFor();
    await dialog.getByRole('button', { name: 'Next' }).click();

    await eventually(async () => (await name.getAttribute('aria-invalid')) === 'true', { message: 'Name marked invalid' });
    assert.equal(await dialog.getByText('Step 1 of 2 — Enter basic information').isVisible(), true);
    assert.equal(await dialog.getByRole('button', { name: 'Give Access' }).count(), 0, 'step 2 never opened');
    const errorId = (await name.getAttribute('aria-describedby')).split(' ').find((id) => id.endsWith('-error'));
    const shown = (await page.locator(`#${errorId}`).textContent()).trim();
    const direct = await ownerApi('POST', `/api/agents/${agentId}/api-keys`, { name: 'k'.repeat(101) });
    assert.equal(direct.status, 422);
    assert.equal(shown, direct.body.error.fields.name, 'the message is the API’s own');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  it('adds a key through both steps, shows it once and copies it', async () => {
    await page.locator('#add-api-key').click();
    const dialog = page.getByRole('dialog', { name: 'Add API Key' });
    await dialog.getByLabel('Name', { exact: true }).fill('Zapier contact sync');
    await dialog.getByLabel('Description', { exact: true }).fill(DESCRIPTION);
    const ips = dialog.getByLabel('IP Address', { exact: true });
    assert.equal(await ips.getAttribute('placeholder'), '192.168.1.1, 10.0.0.1');
    await ips.fill('127.0.0.1, 10.0.0.0/8');
    await dialog.getByText(`${DESCRIPTION.length}/500`).waitFor();
    await screenshot(page, 'add-key-step1.png');
    await dialog.getByRole('button', { name: 'Next' }).click();

    await dialog.getByText('Step 2 of 2 — Configure permissions').waitFor();
    const contactAccess = dialog.getByRole('group', { name: 'Contact Access' });
    const documentAccess = dialog.getByRole('group', { name: 'Document Extraction Access' });
    for (const action of ['Create', 'Read', 'Update', 'Delete']) {
      await contactAccess.getByLabel(action, { exact: true }).waitFor();
      await documentAccess.getByLabel(action, { exact: true }).waitFor();
    }
    await contactAccess.getByLabel('Create', { exact: true }).check();
    await contactAccess.getByLabel('Read', { exact: true }).check();
    await documentAccess.getByLabel('Read', { exact: true }).check();
    await screenshot(page, 'add-key-step2.png');
    await dialog.getByRole('button', { name: 'Give Access' }).click();

    await toast('API key created successfully.').waitFor();
    const created = page.getByRole('dialog');
    secret = await created.getByLabel('API key', { exact: true }).inputValue();
    assert.match(secret, /^a2v2_[0-9A-Za-z]+$/);

    await created.getByRole('button', { name: 'Copy API Key' }).click();
    await toast('API key copied to clipboard').waitFor();
    assert.equal(await clipboard(), secret);

    const info = await keyInfo(server.url, secret);
    assert.equal(info.status, 200, JSON.stringify(info.body));
    assert.equal(info.body.name, 'Zapier contact sync');
    assert.equal(info.body.agent_id, agentId);
    assert.deepEqual(info.body.permissions, { contacts: ['create', 'read'], documents: ['read'] });
    assert.equal(info.body.ip_addresses.length, 2);
    assert.ok(info.body.ip_addresses.some((ip) => ip.startsWith('127.0.0.1')));
    assert.ok(info.body.ip_addresses.includes('10.0.0.0/8'));

    await created.getByRole('button', { name: 'Done' }).click();
    await created.waitFor({ state: 'detached' });
    assert.deepEqual(await badgesOf(keyRow('Zapier contact sync')), ['Contacts', 'Documents']);
  });

  it('lists keys newest first with the right access badges', async () => {
    for (const [name, documents] of [['Invoice extractor', ['Create', 'Read', 'Update']], ['Staging placeholder', []]]) {
      await page.locator('#add-api-key').click();
      const dialog = page.getByRole('dialog', { name: 'Add API Key' });
      await dialog.getByLabel('Name', { exact: true }).fill(name);
      await dialog.getByRole('button', { name: 'Next' }).click();
      const group = dialog.getByRole('group', { name: 'Document Extraction Access' });
      for (const action of documents) await group.getByLabel(action, { exact: true }).check();
      await dialog.getByRole('button', { name: 'Give Access' }).click();
      await toast('API key created successfully.').first().waitFor();
      await page.getByRole('dialog').getByRole('button', { name: 'Done' }).click();
      await page.getByRole('dialog').waitFor({ state: 'detached' });
    }
    const names = await page.locator('tbody tr .key-name .cell-strong').allTextContents();
    assert.deepEqual(names, ['Staging placeholder', 'Invoice extractor', 'Zapier contact sync']);
    assert.deepEqual(await badgesOf(keyRow('Invoice extractor')), ['Documents']);
    assert.deepEqual(await badgesOf(keyRow('Staging placeholder')), ['No access']);
    const headers = (await page.locator('thead th').allTextContents()).map((t) => t.trim()).filter(Boolean);
    assert.deepEqual(headers.slice(0, 3), ['Name', 'Access', 'Created']);
    await keyRow('Zapier contact sync').getByText(secret.slice(-4)).waitFor();
    await screenshot(page, 'api-permissions-list.png');
  });

  it('copies an existing key from its row', async () => {
    await page.evaluate(() => navigator.clipboard.writeText(''));
    await keyRow('Zapier contact sync').getByRole('button', { name: 'Copy API Key' }).click();
    await toast('API key copied to clipboard').first().waitFor();
    await eventually(async () => (await clipboard()) === secret, { message: 'the key in the clipboard' });
  });

  it('shows a contact the key created on the agent’s Contacts page', async () => {
    const created = await fetch(`${server.url}/v1/contacts`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', tags: ['vip'] }),
    });
    assert.equal(created.status, 201);
    await page.getByRole('link', { name: 'Contacts', exact: true }).click();
    const row = page.locator('tbody tr', { has: page.getByText('Ada Lovelace', { exact: true }) });
    await row.getByText('ada@example.com').waitFor();
    await row.getByText('vip').waitFor();
    await page.getByRole('link', { name: 'API Permissions', exact: true }).click();
    await page.getByRole('heading', { name: 'API Permission' }).waitFor();
  });

  it('edits a key with the same fields prefilled', async () => {
    const edit = keyRow('Zapier contact sync').getByRole('button', { name: 'Edit' });
    assert.ok(await edit.getAttribute('title'));
    await edit.click();
    const dialog = page.getByRole('dialog', { name: 'Edit API Key' });
    const name = dialog.getByLabel('Name', { exact: true });
    assert.equal(await name.inputValue(), 'Zapier contact sync');
    assert.equal(await dialog.getByLabel('Description', { exact: true }).inputValue(), DESCRIPTION);
    assert.match(await dialog.getByLabel('IP Address', { exact: true }).inputValue(), /127\.0\.0\.1.*10\.0\.0\.0\/8/);
    await name.fill('Zapier contact sync (production)');
    await dialog.getByRole('button', { name: 'Next' }).click();
    const contactAccess = dialog.getByRole('group', { name: 'Contact Access' });
    const documentAccess = dialog.getByRole('group', { name: 'Document Extraction Access' });
    assert.equal(await contactAccess.getByLabel('Create', { exact: true }).isChecked(), true);
    assert.equal(await contactAccess.getByLabel('Read', { exact: true }).isChecked(), true);
    assert.equal(await contactAccess.getByLabel('Delete', { exact: true }).isChecked(), false);
    await documentAccess.getByLabel('Read', { exact: true }).uncheck();
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await toast('API key updated successfully.').waitFor();
    await dialog.waitFor({ state: 'detached' });

    assert.deepEqual(await badgesOf(keyRow('Zapier contact sync (production)')), ['Contacts']);
    const info = await keyInfo(server.url, secret);
    assert.equal(info.status, 200);
    assert.equal(info.body.name, 'Zapier contact sync (production)');
    assert.deepEqual(info.body.permissions, { contacts: ['create', 'read'], documents: [] });
  });

  it('deletes a key after a warning, and the key stops working', async () => {
    const del = keyRow('Zapier contact sync (production)').getByRole('button', { name: 'Delete' });
    assert.ok(await del.getAttribute('title'));
    await del.click();
    const dialog = page.getByRole('alertdialog', { name: 'Delete API key?' });
    await dialog.getByText('permanently deleted', { exact: false }).waitFor();
    await dialog.getByText('Any applications using this key will lose access.', { exact: false }).waitFor();
    await screenshot(page, 'delete-confirmation.png');
    await dialog.getByRole('button', { name: 'Delete API key' }).click();
    await dialog.waitFor({ state: 'detached' });
    await toast('API key deleted.').waitFor();
    await keyRow('Zapier contact sync (production)').waitFor({ state: 'detached' });
    assert.equal((await keyInfo(server.url, secret)).status, 401);
  });

  it('shows Desktop Only instead of key management below 1024 px', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('heading', { name: 'Desktop Only' }).waitFor();
    assert.equal(await page.locator('#add-api-key').isVisible(), false);
    assert.equal(await page.getByRole('button', { name: 'Copy API Key' }).count(), 0);
    await screenshot(page, 'desktop-only.png');
    await page.setViewportSize(DESKTOP);
    await page.locator('#add-api-key').waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Desktop Only' }).isVisible(), false);
  });

  it('a member sees the key list but no management controls', async () => {
    const created = await ownerApi('POST', '/api/members', { ...VIEWER, role: 'member' });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    const memberContext = await browser.newContext({ viewport: DESKTOP, baseURL: server.url });
    try {
      const memberPage = await memberContext.newPage();
      memberPage.setDefaultTimeout(10_000);
      const memberErrors = watchErrors(memberPage);
      await memberPage.goto(`/agents/${agentId}/api-permissions`);
      await memberPage.waitForURL('**/login');
      await memberPage.getByLabel('Email').fill(VIEWER.email);
      await memberPage.getByLabel('Password').fill(VIEWER.password);
      await memberPage.getByRole('button', { name: 'Sign in' }).click();
      await memberPage.waitForURL(`**/agents/${agentId}/api-permissions`);
      await memberPage.getByText('Invoice extractor', { exact: true }).waitFor();
      await memberPage.getByText('Staging placeholder', { exact: true }).waitFor();
      for (const label of ['Add API Key', 'Copy API Key', 'Edit', 'Delete']) {
        assert.equal(await memberPage.getByRole('button', { name: label, exact: true }).count(), 0, `${label} is hidden`);
      }
      const sidebar = memberPage.getByRole('complementary', { name: 'Sidebar' });
      assert.equal(await sidebar.getByRole('link', { name: 'Audit logs' }).count(), 0);
      await sidebar.getByRole('link', { name: 'Agents' }).click();
      await memberPage.getByRole('link', { name: 'Support assistant' }).waitFor();
      assert.equal(await memberPage.getByRole('button', { name: 'Create agent' }).count(), 0);
      assert.equal(await memberPage.getByRole('button', { name: 'Delete' }).count(), 0);
      assert.deepEqual(memberErrors, []);
    } finally {
      await memberContext.close();
    }
  });

  it('Members: add, change role and remove', async () => {
    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByRole('heading', { level: 1, name: 'Members' }).waitFor();
    const row = (email) => page.locator('tbody tr', { has: page.getByText(email, { exact: true }) });
    await row(OWNER.email).getByText('You').waitFor();
    await row(VIEWER.email).waitFor();

    await page.getByRole('button', { name: 'Add member' }).click();
    let dialog = page.getByRole('dialog', { name: 'Add member' });
    await dialog.getByLabel('Email').fill(ADDED.email);
    await dialog.getByLabel('Password').fill(ADDED.password);
    await dialog.getByLabel('Role').selectOption('admin');
    await dialog.getByRole('button', { name: 'Add member' }).click();
    await toast('Member added.').waitFor();
    await dialog.waitFor({ state: 'detached' });
    assert.deepEqual(await badgesOf(row(ADDED.email)), ['Admin']);

    await row(ADDED.email).getByRole('button', { name: 'Change role' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByLabel('Role').selectOption('member');
    await dialog.getByRole('button', { name: 'Save role' }).click();
    await toast('Role updated.').waitFor();
    await dialog.waitFor({ state: 'detached' });
    assert.deepEqual(await badgesOf(row(ADDED.email)), ['Member']);
    await screenshot(page, 'members.png');

    await row(ADDED.email).getByRole('button', { name: 'Remove' }).click();
    dialog = page.getByRole('alertdialog', { name: 'Remove member?' });
    await dialog.getByText(ADDED.email).waitFor();
    await dialog.getByRole('button', { name: 'Remove member' }).click();
    await toast('Member removed.').waitFor();
    await row(ADDED.email).waitFor({ state: 'detached' });
    const signIn = await fetch(`${server.url}/api/session`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADDED),
    });
    assert.equal(signIn.status, 401, 'a removed member cannot sign in');
  });

  it('Audit logs: lists key events and filters by action', async () => {
    await page.getByRole('link', { name: 'Audit logs' }).click();
    await page.getByRole('heading', { level: 1, name: 'Audit logs' }).waitFor();
    const actions = () => page.locator('tbody tr[data-action]').evaluateAll((rows) => rows.map((r) => r.dataset.action));
    await eventually(async () => (await actions()).filter((a) => a === 'api_key.created').length === 3, { message: 'three api_key.created events' });
    const all = await actions();
    for (const action of ['api_key.updated', 'api_key.deleted', 'api_key.revealed', 'agent.created', 'member.created']) {
      assert.ok(all.includes(action), `${action} is listed`);
    }
    const createdRow = page.locator('tbody tr[data-action="api_key.created"]', { hasText: 'Staging placeholder' });
    await createdRow.getByText(OWNER.email).waitFor();
    assert.ok(await createdRow.locator('time').getAttribute('title'), 'the exact time is in the tooltip');
    await screenshot(page, 'audit-logs.png');

    await page.getByLabel('Action').selectOption('api_key.deleted');
    await eventually(async () => {
      const filtered = await actions();
      return filtered.length === 1 && filtered[0] === 'api_key.deleted';
    }, { message: 'only the api_key.deleted event' });

    const details = page.locator('tbody tr[data-action]').first().getByRole('button', { name: 'Details' });
    await details.click();
    assert.equal(await details.getAttribute('aria-expanded'), 'true');
    await page.getByText('Event ID').waitFor();

    await page.getByLabel('Action').selectOption({ label: 'All API key events' });
    await eventually(async () => {
      const family = await actions();
      return family.length >= 6 && family.every((a) => a.startsWith('api_key.'));
    }, { message: 'only api_key.* events' });

    const csv = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
    assert.match(csv, /format=csv/);
    assert.match(csv, /action=api_key\.\*/);
    const download = await context.request.get(csv);
    assert.equal(download.status(), 200);
    const text = await download.text();
    assert.match(text, /api_key\.created/);
    assert.doesNotMatch(text, /member\.created/);

    await page.getByRole('button', { name: 'Clear filters' }).click();
    await eventually(async () => (await actions()).length > all.length, { message: 'the unfiltered list again, with the export recorded' });
  });

  it('signs out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/login');
    await page.goto('/agents');
    await page.waitForURL('**/login');
  });

  it('the pages raised no script errors or CSP violations', () => {
    assert.deepEqual(errors, []);
  });
});
