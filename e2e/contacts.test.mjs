// The Contacts page as a CRM: search, open a contact and see which key and which member wrote
// it, edit with the API's error next to the field, add, delete after a confirmation, import a
// CSV file with a preview and a report, and a member's read-only view.

import assert from 'node:assert/strict';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DESKTOP, apiSession, launchBrowser, screenshot, startServer, watchErrors } from './harness.mjs';

const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };
const VIEWER = { email: 'viewer@example.com', password: 'viewer password 1234' };

describe('contacts', { concurrency: false }, () => {
  let server;
  let browser;
  let page;
  let errors;
  let memberErrors = [];
  let agentId;
  let keyId;
  let ownerApi;

  const toast = (text) => page.locator('.toasts').getByText(text, { exact: true });
  const row = (text) => page.locator('tbody tr', { has: page.getByText(text, { exact: true }) });
  const drawer = () => page.getByRole('dialog').filter({ has: page.locator('.detail-list') });

  async function signIn(who) {
    await page.goto('/login');
    await page.getByLabel('Email').fill(who.email);
    await page.getByLabel('Password').fill(who.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/agents');
  }

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: DESKTOP, baseURL: server.url });
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
    agentId = (await ownerApi('POST', '/api/agents', { name: 'Sales assistant' })).body.id;
    const key = await ownerApi('POST', `/api/agents/${agentId}/api-keys`, {
      name: 'Website form', permissions: { contacts: ['create', 'read'], documents: [] },
    });
    assert.equal(key.status, 201);
    keyId = key.body.id;
    for (const contact of [
      { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', company: 'Analytical', tags: ['vip'] },
      { first_name: 'Grace', last_name: 'Hopper', email: 'grace@example.com', company: 'Navy' },
    ]) {
      const created = await fetch(`${server.url}/v1/contacts`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${key.body.key}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(contact),
      });
      assert.equal(created.status, 201);
    }
    const viewer = await ownerApi('POST', '/api/members', { ...VIEWER, role: 'member' });
    assert.equal(viewer.status, 201);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('searches the list', async () => {
    await signIn(OWNER);
    await page.goto(`/agents/${agentId}/contacts`);
    await row('Ada Lovelace').waitFor();
    await row('Grace Hopper').waitFor();
    await page.getByRole('searchbox', { name: 'Search contacts' }).fill('hop');
    await row('Ada Lovelace').waitFor({ state: 'detached' });
    await row('Grace Hopper').waitFor();
    assert.match(page.url(), /q=hop/);
    await page.getByRole('searchbox', { name: 'Search contacts' }).fill('');
    await row('Ada Lovelace').waitFor();
  });

  it('opens a contact and shows which key wrote it', async () => {
    await row('Ada Lovelace').getByRole('button', { name: 'Ada Lovelace' }).click();
    const details = drawer();
    await details.getByText('ada@example.com').waitFor();
    await details.getByText('Analytical').waitFor();
    assert.equal(await details.getByText('API key · Website form').count(), 2);
    await screenshot(page, 'contact-drawer.png');
  });

  it('edits it, showing the API’s error next to the field', async () => {
    await drawer().getByRole('button', { name: 'Edit' }).click();
    const form = page.getByRole('dialog', { name: 'Edit contact' });
    await form.getByLabel('Email').fill('not an email');
    await form.getByRole('button', { name: 'Save changes' }).click();
    const email = form.getByLabel('Email');
    await form.locator('.field-error:not([hidden])').first().waitFor();
    assert.equal(await email.getAttribute('aria-invalid'), 'true');
    const errorId = (await email.getAttribute('aria-describedby')).split(' ').find((id) => id.endsWith('-error'));
    const message = await page.locator(`[id="${errorId}"]`).textContent();
    assert.match(message, /email/i);
    await screenshot(page, 'contact-edit-error.png');

    await email.fill('ada@lovelace.example');
    await form.getByLabel('Company').fill('Analytical Engines');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await toast('Contact updated.').waitFor();
    await row('Ada Lovelace').getByText('ada@lovelace.example').waitFor();

    await row('Ada Lovelace').getByRole('button', { name: 'Ada Lovelace' }).click();
    const details = drawer();
    await details.getByText('Analytical Engines').waitFor();
    await details.getByText(`Member · ${OWNER.email}`).waitFor();
    await details.getByText('API key · Website form').waitFor();
    await details.getByRole('button', { name: 'Close' }).click();
  });

  it('adds a contact', async () => {
    await page.getByRole('button', { name: 'Add contact' }).click();
    const form = page.getByRole('dialog', { name: 'Add contact' });
    await form.getByLabel('First name').fill('Linus');
    await form.getByLabel('Email').fill('grace@example.com');
    await form.getByRole('button', { name: 'Add contact' }).click();
    await form.getByText('Another contact already has this email.').waitFor();
    await form.getByLabel('Email').fill('linus@example.com');
    await form.getByLabel('Tags').fill('kernel, vip');
    await form.getByRole('button', { name: 'Add contact' }).click();
    await toast('Contact added.').waitFor();
    await row('Linus').waitFor();
  });

  it('filters by a tag chip', async () => {
    await row('Linus').getByRole('button', { name: 'kernel' }).click();
    await row('Ada Lovelace').waitFor({ state: 'detached' });
    await page.getByText('Tag: kernel').waitFor();
    await page.getByRole('button', { name: 'Remove filter Tag: kernel' }).click();
    await row('Ada Lovelace').waitFor();
  });

  it('deletes a contact after a confirmation', async () => {
    await row('Grace Hopper').getByRole('button', { name: 'Grace Hopper' }).click();
    await drawer().getByRole('button', { name: 'Delete' }).click();
    const confirm = page.getByRole('alertdialog', { name: 'Delete contact?' });
    await confirm.getByText('will be permanently deleted', { exact: false }).waitFor();
    await confirm.getByRole('button', { name: 'Delete contact' }).click();
    await toast('Contact deleted.').waitFor();
    await row('Grace Hopper').waitFor({ state: 'detached' });
  });

  it('imports a CSV file with a preview and a report', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'a2v2-csv-'));
    const file = path.join(dir, 'people.csv');
    await writeFile(file, [
      'E-mail,First Name,Last Name,Mobile,Lead source',
      'alan@example.com,Alan,Turing,+44 20 7946 0000,conference',
      'not-an-email,Bad,Row,,',
      'ada@lovelace.example,Ada,Lovelace,,web',
      'katherine@example.com,Katherine,Johnson,,',
      '',
    ].join('\r\n'));
    await page.getByRole('button', { name: 'Import CSV' }).click();
    const dialog = page.getByRole('dialog', { name: 'Import CSV' });
    await dialog.getByLabel('CSV file').setInputFiles(file);
    const mapping = dialog.locator('.import-mapping');
    await mapping.getByText('attributes.Lead source').waitFor();
    await mapping.getByRole('row', { name: /Mobile/ }).getByText('phone').waitFor();
    await dialog.getByText('4 rows', { exact: false }).waitFor();
    await screenshot(page, 'contacts-import-preview.png');
    await dialog.getByRole('button', { name: 'Import' }).click();
    await dialog.getByText('2 created · 0 updated · 0 unchanged · 2 skipped').waitFor();
    const skipped = dialog.locator('.import-skipped tbody tr');
    assert.equal(await skipped.count(), 2);
    assert.match(await skipped.nth(0).textContent(), /^2email/);
    assert.match(await skipped.nth(1).textContent(), /^3a contact with the email/);
    await dialog.locator('progress').waitFor();
    await dialog.locator('.import-report').scrollIntoViewIfNeeded();
    await screenshot(page, 'contacts-import-report.png');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await row('Alan Turing').waitFor();
    await row('Katherine Johnson').waitFor();
  });

  it('lists the contacts a key wrote from the key’s edit view', async () => {
    await page.goto(`/agents/${agentId}/api-permissions`);
    await page.locator('tbody tr', { has: page.getByText('Website form', { exact: true }) })
      .getByRole('button', { name: 'Edit' }).click();
    await page.getByRole('dialog', { name: 'Edit API Key' }).getByRole('link', { name: 'Contacts this key wrote' }).click();
    await page.waitForURL(`**/contacts?written_by=${keyId}**`);
    await page.getByText('Written by Website form').waitFor();
    // Ada was created by the key (and later changed by the owner); the others were not.
    await row('Ada Lovelace').waitFor();
    assert.equal(await page.locator('tbody tr').count(), 1);
  });

  it('a member sees contacts but no editing controls', async () => {
    // A browser of their own, so the owner's session is not in the way.
    const context = await browser.newContext({ viewport: DESKTOP, baseURL: server.url });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    memberErrors = watchErrors(page);
    await signIn(VIEWER);
    await page.goto(`/agents/${agentId}/contacts`);
    await row('Alan Turing').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Add contact' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Import CSV' }).count(), 0);
    await row('Alan Turing').getByRole('button', { name: 'Alan Turing' }).click();
    await drawer().getByText('alan@example.com').waitFor();
    assert.equal(await drawer().getByRole('button', { name: 'Edit' }).count(), 0);
    assert.equal(await drawer().getByRole('button', { name: 'Delete' }).count(), 0);
  });

  it('the pages raised no script errors or CSP violations', () => {
    assert.deepEqual([...errors, ...memberErrors], []);
  });
});
