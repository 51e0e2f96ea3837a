// Members end to end: an owner invites a person, the invite link is shown once and copied, the
// person accepts it in a browser of their own and is signed in with the role given; the owner
// changes that role and removes them, which ends their session. Then the API reference page
// renders the server's OpenAPI document from the embedded assets alone.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DESKTOP, launchBrowser, screenshot, startServer, watchErrors } from './harness.mjs';

const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };
const INVITED = { email: 'invited@example.com', password: 'invited password 1234' };

describe('members', { concurrency: false }, () => {
  let server;
  let browser;
  let context;
  let page;
  let errors;
  let inviteLink;
  let invitedContext;
  let invitedPage;
  const offOrigin = [];

  const toast = (p, text) => p.locator('.toasts').getByText(text, { exact: true });
  const row = (email) => page.locator('tbody tr', { has: page.getByText(email, { exact: true }) });

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: DESKTOP, baseURL: server.url });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    // Everything the dashboard loads must come from the server itself (no CDN).
    context.on('request', (request) => {
      if (!request.url().startsWith(server.url) && !request.url().startsWith('data:')) offOrigin.push(request.url());
    });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    errors = watchErrors(page);
    const setup = await fetch(`${server.url}/api/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...OWNER, workspace_name: 'Acme' }),
    });
    assert.equal(setup.status, 201);
  });

  after(async () => {
    await invitedContext?.close();
    await browser?.close();
    await server?.stop();
  });

  it('an owner invites a member and gets a link shown once', async () => {
    await page.goto('/login');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/agents');
    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByRole('heading', { level: 1, name: 'Members' }).waitFor();

    await page.getByRole('button', { name: 'Invite member' }).click();
    let dialog = page.getByRole('dialog', { name: 'Invite member' });
    await dialog.getByRole('button', { name: 'Create invite link' }).click();
    await dialog.getByText('must be an email address like name@example.com').waitFor();

    await dialog.getByLabel('Email').fill(INVITED.email);
    await dialog.getByLabel('Role').selectOption('admin');
    await dialog.getByRole('button', { name: 'Create invite link' }).click();
    dialog = page.getByRole('dialog', { name: 'Invite link created' });
    const linkField = dialog.getByLabel('Invite link');
    inviteLink = await linkField.inputValue();
    assert.match(inviteLink, new RegExp(`^${server.url}/accept-invite#[A-Za-z0-9_%-]{20,}$`));
    await dialog.getByText(/It is shown only once/).waitFor();
    await dialog.getByRole('button', { name: 'Copy invite link' }).click();
    await toast(page, 'Invite link copied to clipboard').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), inviteLink);
    await screenshot(page, 'members-invite.png');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await dialog.waitFor({ state: 'detached' });
    // The invited person is listed already; the link itself appears nowhere else.
    await row(INVITED.email).getByText('Admin').waitFor();
    assert.equal(await page.getByText(inviteLink).count(), 0);

    // The same email cannot be invited twice.
    await page.getByRole('button', { name: 'Invite member' }).click();
    dialog = page.getByRole('dialog', { name: 'Invite member' });
    await dialog.getByLabel('Email').fill(INVITED.email);
    await dialog.getByRole('button', { name: 'Create invite link' }).click();
    await dialog.getByText('A member with this email already exists.').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
  });

  it('the invited person accepts in their own browser and is signed in', async () => {
    invitedContext = await browser.newContext({ viewport: DESKTOP, baseURL: server.url });
    invitedPage = await invitedContext.newPage();
    invitedPage.setDefaultTimeout(10_000);
    const invitedErrors = watchErrors(invitedPage);
    await invitedPage.goto(inviteLink);
    await invitedPage.getByRole('heading', { level: 1, name: 'Accept your invite' }).waitFor();
    await invitedPage.getByLabel('Password').fill('short');
    await invitedPage.getByRole('button', { name: 'Accept invite' }).click();
    await invitedPage.getByText('must be at least 12 characters').waitFor();
    await screenshot(invitedPage, 'accept-invite.png');

    await invitedPage.getByLabel('Password').fill(INVITED.password);
    await invitedPage.getByRole('button', { name: 'Accept invite' }).click();
    await invitedPage.waitForURL('**/agents');
    await invitedPage.getByRole('heading', { level: 1, name: 'Agents' }).waitFor();
    await invitedPage.locator('.account-email', { hasText: INVITED.email }).waitFor();
    await invitedPage.locator('.account-role', { hasText: 'Admin' }).waitFor();
    assert.deepEqual(invitedErrors, []);

    // A link works once.
    const again = await browser.newContext({ viewport: DESKTOP, baseURL: server.url });
    try {
      const other = await again.newPage();
      await other.goto(inviteLink);
      await other.getByLabel('Password').fill('another password 1234');
      await other.getByRole('button', { name: 'Accept invite' }).click();
      await other.getByText(/This invite link is not valid/).waitFor();
    } finally {
      await again.close();
    }
    // The chosen password signs in.
    const signIn = await fetch(`${server.url}/api/session`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(INVITED),
    });
    assert.equal(signIn.status, 200);
  });

  it('the owner changes the role and removes the member, which ends their session', async () => {
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Members' }).waitFor();
    await row(INVITED.email).getByRole('button', { name: 'Change role' }).click();
    let dialog = page.getByRole('dialog');
    await dialog.getByLabel('Role').selectOption('member');
    await dialog.getByRole('button', { name: 'Save role' }).click();
    await toast(page, 'Role updated.').waitFor();
    await row(INVITED.email).getByText('Member', { exact: true }).waitFor();

    await row(INVITED.email).getByRole('button', { name: 'Remove' }).click();
    dialog = page.getByRole('alertdialog', { name: 'Remove member?' });
    await dialog.getByRole('button', { name: 'Remove member' }).click();
    await toast(page, 'Member removed.').waitFor();
    await row(INVITED.email).waitFor({ state: 'detached' });

    // Their next step finds the session gone and lands on the sign-in page.
    await invitedPage.getByRole('link', { name: 'Members' }).click();
    await invitedPage.waitForURL('**/login');
  });

  it('the API reference renders the OpenAPI document offline', async () => {
    await page.getByRole('link', { name: 'API reference' }).click();
    await page.getByRole('heading', { level: 1, name: 'API reference' }).waitFor();
    await page.getByText('OpenAPI 3.1.0', { exact: false }).waitFor();
    await page.getByLabel('Filter endpoints').fill('/v1/contacts');
    // By the summary's method and path exactly: other operations mention this one in their titles.
    const create = page.locator('details')
      .filter({ has: page.locator('summary .api-method', { hasText: /^POST$/ }) })
      .filter({ has: page.locator('summary .api-path', { hasText: /^\/v1\/contacts$/ }) })
      .first();
    await create.locator('summary').click();
    await create.getByText('contact_exists', { exact: true }).first().waitFor();
    await create.getByText('permission_denied', { exact: true }).first().waitFor();
    await create.getByText('Request body (application/json)').waitFor();
    await screenshot(page, 'api-reference.png');
    assert.deepEqual(offOrigin, [], 'the dashboard loads nothing from other origins');
    assert.deepEqual(errors, []);
  });
});
