// The Documents page end to end: an admin uploads a file with the progress bar, opens it to
// read its text beside the fields and contacts found, corrects a field; a document an
// integration uploaded through the API appears in the same list.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DESKTOP, apiSession, launchBrowser, screenshot, startServer, watchErrors } from './harness.mjs';

const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };
const INVOICE = [
  'ACME Supplies Ltd',
  'Invoice Number: INV-0042',
  'Date: 12 March 2026',
  'Bill to: Jane Doe, jane.doe@example.com',
  'Total: EUR 1,234.50',
  '',
].join('\n');

describe('documents', { concurrency: false }, () => {
  let server;
  let browser;
  let page;
  let errors;
  let agentId;
  let dir;
  let ownerApi;

  const toast = (text) => page.locator('.toasts').getByText(text, { exact: true });

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: DESKTOP, baseURL: server.url });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    errors = watchErrors(page);
    dir = await mkdtemp(path.join(tmpdir(), 'a2v2-e2e-docs-'));
    const setup = await fetch(`${server.url}/api/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...OWNER, workspace_name: 'Acme' }),
    });
    assert.equal(setup.status, 201);
    ownerApi = await apiSession(server.url, OWNER.email, OWNER.password);
    const agent = await ownerApi('POST', '/api/agents', { name: 'Paperwork bot' });
    agentId = agent.body.id;
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('an admin uploads a file and sees it extracted in the list', async () => {
    await page.goto('/login');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/agents');
    await page.goto(`/agents/${agentId}/documents`);
    await page.getByRole('heading', { level: 1, name: 'Documents' }).waitFor();
    await page.getByText('No documents yet.').waitFor();

    const file = path.join(dir, 'invoice-42.txt');
    await writeFile(file, INVOICE);
    const chooser = page.waitForEvent('filechooser');
    await page.getByRole('button', { name: 'Upload document' }).click();
    await (await chooser).setFiles(file);
    await toast('invoice-42.txt uploaded.').waitFor();
    const row = page.locator('tbody tr', { has: page.getByText('invoice-42.txt', { exact: true }) });
    await row.getByText('Ready', { exact: true }).waitFor();
    assert.equal((await row.locator('td').nth(2).textContent()).trim(), 'text/plain');
  });

  it('a document an integration uploaded appears too, and a failed one says why', async () => {
    const key = await ownerApi('POST', `/api/agents/${agentId}/api-keys`, {
      name: 'Scanner', permissions: { contacts: [], documents: ['create', 'read'] },
    });
    const corrupt = await fetch(`${server.url}/v1/documents?filename=broken.pdf`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.body.key}`, 'content-type': 'application/pdf' },
      body: '%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nstream\x00garbage',
    });
    assert.equal(corrupt.status, 201);
    await page.reload();
    const row = page.locator('tbody tr', { has: page.getByText('broken.pdf', { exact: true }) });
    await row.getByText('Failed', { exact: true }).waitFor();
    await screenshot(page, 'documents.png');
  });

  it('opens a document: its text page by page beside fields and contacts', async () => {
    await page.getByRole('link', { name: 'invoice-42.txt' }).click();
    await page.waitForURL(/\/documents\/[^/]+$/);
    await page.getByRole('heading', { level: 1, name: 'invoice-42.txt' }).waitFor();
    const text = page.getByRole('region', { name: 'Text' });
    await text.getByRole('article', { name: 'Page 1' }).getByText('Invoice Number: INV-0042').waitFor();
    const fields = page.getByRole('region', { name: 'Fields' });
    const emails = fields.locator('[data-category="emails"]');
    await emails.getByText('jane.doe@example.com').waitFor();
    await fields.locator('[data-category="amounts"]').getByText('1234.50 EUR').waitFor();
    await page.getByRole('region', { name: 'Contacts' }).waitFor();
    await screenshot(page, 'document-detail.png');
  });

  it('an admin corrects a field; the correction is kept and marked as edited', async () => {
    const fields = page.getByRole('region', { name: 'Fields' });
    await fields.getByRole('button', { name: 'Correct Emails' }).click();
    const dialog = page.getByRole('dialog', { name: 'Correct emails' });
    await dialog.getByLabel('Emails').fill('billing@acme.example.com');
    await dialog.getByRole('button', { name: 'Save correction' }).click();
    await dialog.waitFor({ state: 'detached' });
    await toast('Correction saved.').waitFor();
    const emails = fields.locator('[data-category="emails"]');
    await emails.getByText('billing@acme.example.com').waitFor();
    await emails.getByText('Edited', { exact: true }).waitFor();

    const id = new URL(page.url()).pathname.split('/').pop();
    const stored = await ownerApi('GET', `/api/agents/${agentId}/documents/${id}`);
    assert.deepEqual(stored.body.edited.fields, ['emails']);
    assert.equal(stored.body.fields.emails[0].value, 'billing@acme.example.com');
    const audit = await ownerApi('GET', `/api/audit-logs?action=document.updated&agent_id=${agentId}`);
    assert.equal(audit.body.data[0].actor.type, 'member');
    assert.deepEqual(errors, []);
  });
});
