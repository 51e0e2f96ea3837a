// With `--key-reveal false` the server keeps only a hash of each key: the dashboard can show a
// new key once, right after creating it, and copying it later is refused with the API's reason.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DESKTOP, apiSession, launchBrowser, startServer, watchErrors } from './harness.mjs';

const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };

describe('copying when the server keeps no copy of keys', { concurrency: false }, () => {
  let server;
  let browser;
  let page;
  let errors;
  let agentId;
  let keyId;
  let ownerApi;

  before(async () => {
    server = await startServer(['--key-reveal', 'false']);
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: DESKTOP, baseURL: server.url });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    errors = watchErrors(page);

    const setup = await fetch(`${server.url}/api/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...OWNER, workspace_name: 'Acme' }),
    });
    assert.equal(setup.status, 201);
    ownerApi = await apiSession(server.url, OWNER.email, OWNER.password);
    const agent = await ownerApi('POST', '/api/agents', { name: 'Support assistant' });
    assert.equal(agent.status, 201);
    agentId = agent.body.id;
    const key = await ownerApi('POST', `/api/agents/${agentId}/api-keys`, {
      name: 'Legacy CRM import', permissions: { contacts: ['create'], documents: [] },
    });
    assert.equal(key.status, 201);
    keyId = key.body.id;
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('shows the refusal as a toast, in the API’s words', async () => {
    const refusal = await ownerApi('POST', `/api/agents/${agentId}/api-keys/${keyId}/reveal`);
    assert.equal(refusal.status, 409);
    assert.equal(refusal.body.error.code, 'reveal_disabled');

    await page.goto('/login');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/agents');
    await page.goto(`/agents/${agentId}/api-permissions`);
    const row = page.locator('tbody tr', { hasText: 'Legacy CRM import' });
    await page.evaluate(() => navigator.clipboard.writeText('unchanged'));
    await row.getByRole('button', { name: 'Copy API Key' }).click();
    await page.locator('.toasts').getByText(refusal.body.error.message, { exact: true }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'unchanged');
  });

  it('a new key can still be copied from the create dialog', async () => {
    await page.locator('#add-api-key').click();
    const dialog = page.getByRole('dialog', { name: 'Add API Key' });
    await dialog.getByLabel('Name', { exact: true }).fill('One-time copy');
    await dialog.getByRole('button', { name: 'Next' }).click();
    await dialog.getByRole('button', { name: 'Give Access' }).click();
    const created = page.getByRole('dialog');
    const secret = await created.getByLabel('API key', { exact: true }).inputValue();
    await created.getByRole('button', { name: 'Copy API Key' }).click();
    await page.locator('.toasts').getByText('API key copied to clipboard', { exact: true }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  });

  it('raised no script errors or CSP violations', () => {
    assert.deepEqual(errors, []);
  });
});
