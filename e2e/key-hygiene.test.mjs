// Living with keys in the dashboard: expiry highlighting, rate limit and pausing in the edit
// view, usage (last use per permission, recent clients), Test access, Roll key, the owner's
// incident switch and the copy count.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  DESKTOP, apiSession, eventually, keyInfo, launchBrowser, startServer, watchErrors,
} from './harness.mjs';

const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };

describe('key hygiene', { concurrency: false }, () => {
  let server;
  let browser;
  let page;
  let errors;
  let ownerApi;
  let agentId;
  let keyId;
  let secret;

  const toast = (text) => page.locator('.toasts').getByText(text, { exact: true }).last();
  const keyRow = (name) => page.locator('tbody tr', { has: page.getByText(name, { exact: true }) });
  const openEdit = async () => {
    await keyRow('CRM sync').getByRole('button', { name: 'Edit' }).click();
    return page.getByRole('dialog', { name: 'Edit API Key' });
  };

  before(async () => {
    server = await startServer();
    const setup = await fetch(`${server.url}/api/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...OWNER, workspace_name: 'Acme' }),
    });
    assert.equal(setup.status, 201);
    ownerApi = await apiSession(server.url, OWNER.email, OWNER.password);
    agentId = (await ownerApi('POST', '/api/agents', { name: 'Sales bot' })).body.id;
    const created = await ownerApi('POST', `/api/agents/${agentId}/api-keys`, {
      name: 'CRM sync',
      permissions: { contacts: ['read', 'create'], documents: [] },
      expires_at: new Date(Date.now() + 3 * 86400000).toISOString(),
    });
    assert.equal(created.status, 201);
    ({ id: keyId, key: secret } = created.body);
    // Some use, so that the edit view has something to show.
    const used = await fetch(`${server.url}/v1/contacts`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(used.status, 200);

    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: DESKTOP, baseURL: server.url });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    errors = watchErrors(page);
    await page.goto('/');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/agents');
    await page.goto(`/agents/${agentId}/api-permissions`);
    await page.getByRole('heading', { level: 1, name: 'API Permission' }).waitFor();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('highlights a key that expires within a week', async () => {
    const soon = keyRow('CRM sync').locator('[data-expiring-soon="true"]');
    await soon.waitFor();
    assert.match(await soon.textContent(), /^Expires/);
  });

  it('shows the last use per permission and the recent clients, and allows a seen address', async () => {
    const dialog = await openEdit();
    const group = dialog.getByRole('group', { name: 'Contact Access' });
    const clients = dialog.locator('.key-clients');
    await clients.getByText('127.0.0.1').waitFor();
    await clients.getByRole('button', { name: 'Add 127.0.0.1 to the allowed addresses' }).click();
    assert.equal(await dialog.getByLabel('IP Address', { exact: true }).inputValue(), '127.0.0.1');
    await dialog.getByRole('button', { name: 'Next' }).click();
    await group.locator('.perm-usage', { hasText: 'Last used' }).waitFor();
    await group.locator('.perm-usage', { hasText: 'Never used' }).waitFor();
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await toast('API key updated successfully.').waitFor();
    const key = (await ownerApi('GET', `/api/agents/${agentId}/api-keys/${keyId}`)).body;
    assert.deepEqual(key.ip_addresses, ['127.0.0.1']);
  });

  it('sets a rate limit and pauses the key in the edit view', async () => {
    const dialog = await openEdit();
    assert.notEqual(await dialog.getByLabel('Expires').inputValue(), '');
    await dialog.getByLabel('Requests', { exact: true }).fill('50');
    await dialog.getByLabel('Per seconds', { exact: true }).fill('60');
    await dialog.getByLabel(/^Active/).uncheck();
    await dialog.getByRole('button', { name: 'Next' }).click();
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await toast('API key updated successfully.').waitFor();
    await dialog.waitFor({ state: 'detached' });
    const row = keyRow('CRM sync');
    await row.getByText('Paused', { exact: true }).waitFor();
    await row.getByText('50 requests / minute').waitFor();
    assert.equal((await keyInfo(server.url, secret)).status, 401);

    const again = await openEdit();
    await again.getByLabel(/^Active/).check();
    await again.getByRole('button', { name: 'Next' }).click();
    await again.getByRole('button', { name: 'Save changes' }).click();
    await again.waitFor({ state: 'detached' });
    const info = await fetch(`${server.url}/v1/key`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(info.status, 200);
    assert.equal(info.headers.get('ratelimit-limit'), '50');
  });

  it('tests access with the real guard', async () => {
    const dialog = await openEdit();
    await dialog.getByRole('button', { name: 'Test access' }).click();
    const test = page.getByRole('dialog', { name: 'Test access' });
    await test.getByLabel('Path').fill('/v1/contacts');
    await test.getByLabel('Client IP address').fill('127.0.0.1');
    await test.getByRole('button', { name: 'Test access' }).click();
    await test.locator('.verdict-allowed').getByText('Allowed').waitFor();
    await test.getByLabel('Method').selectOption('DELETE');
    await test.getByRole('button', { name: 'Test access' }).click();
    await test.getByText('Refused: 405 method_not_allowed').waitFor();
    await test.getByLabel('Path').fill('/v1/contacts/ct_1');
    await test.getByRole('button', { name: 'Test access' }).click();
    await test.getByText('Refused: 403 permission_denied').waitFor();
    await test.getByText('contacts:delete', { exact: true }).waitFor();
    await test.getByLabel('Method').selectOption('GET');
    await test.getByLabel('Client IP address').fill('192.0.2.1');
    await test.getByLabel('Path').fill('/v1/contacts');
    await test.getByRole('button', { name: 'Test access' }).click();
    await test.getByText('Refused: 403 ip_not_allowed').waitFor();
    await test.getByRole('button', { name: 'Close', exact: true }).last().click();
    await test.waitFor({ state: 'detached' });
    await dialog.getByRole('button', { name: 'Close' }).first().click();
  });

  it('rolls the key with a grace period: both secrets work until it ends', async () => {
    const dialog = await openEdit();
    await dialog.getByRole('button', { name: 'Roll key' }).click();
    const roll = page.getByRole('dialog', { name: 'Roll key' });
    await roll.getByLabel('The current secret stops working').selectOption('3600');
    await roll.getByRole('button', { name: 'Roll key' }).click();
    const newSecret = await roll.getByLabel('New API key').inputValue();
    assert.notEqual(newSecret, secret);
    await roll.getByText('The old secret keeps working until', { exact: false }).waitFor();
    await roll.getByRole('button', { name: 'Copy API Key' }).click();
    await toast('API key copied to clipboard').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), newSecret);
    await roll.getByRole('button', { name: 'Done' }).click();
    await dialog.getByRole('button', { name: 'Close' }).first().click();
    assert.equal((await keyInfo(server.url, secret)).status, 200);
    assert.equal((await keyInfo(server.url, newSecret)).status, 200);
    secret = newSecret;
  });

  it('counts copies of the key', async () => {
    await keyRow('CRM sync').getByRole('button', { name: 'Copy API Key' }).click();
    await toast('API key copied to clipboard').waitFor();
    await keyRow('CRM sync').getByText('Copied 1 time').waitFor();
  });

  it('lets the owner suspend and resume every key', async () => {
    await page.getByRole('button', { name: 'Suspend all keys' }).click();
    await page.getByText('All API keys of this workspace are suspended', { exact: false }).waitFor();
    assert.equal((await keyInfo(server.url, secret)).status, 401);
    await page.getByRole('button', { name: 'Resume all keys' }).click();
    await page.getByRole('button', { name: 'Suspend all keys' }).waitFor();
    await eventually(async () => (await keyInfo(server.url, secret)).status === 200, { message: 'resumed key' });
    const events = (await ownerApi('GET', '/api/audit-logs?action=keys.suspended')).body.data;
    assert.equal(events.length, 1);
  });

  it('raised no script errors', () => {
    assert.deepEqual(errors, []);
  });
});
