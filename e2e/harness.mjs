// Shared helpers of the end-to-end tests: a real a2v2 server on a free port with a fresh data
// directory, Debian's Chromium driven by playwright-core, and small waiting helpers.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SCREENSHOTS = path.join(REPO, 'docs', 'screenshots');

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

export const DESKTOP = { width: 1280, height: 800 };

export async function startServer(extraArgs = []) {
  const bin = process.env.A2V2_BIN || path.join(REPO, 'target', 'debug', 'a2v2');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'a2v2-e2e-'));
  // The server reads A2V2_* settings from the environment; none of the caller's may leak in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('A2V2_')));
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...env, NO_COLOR: '1' },
  });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not report its address within 60 s:\n${output}`)), 60_000);
    // Both streams are read for the whole run, so a chatty server never blocks on a full pipe.
    const onData = (chunk) => {
      output += chunk;
      const match = output.replace(/\x1b\[[0-9;]*m/g, '').match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening:\n${output}`));
    });
  });
  return {
    url,
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

// Collects script errors and CSP violations, the failures a page shows no sign of.
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // Expected 4xx answers (a 401 before sign-in, the 422 of a validation test) are logged
    // by Chromium as "Failed to load resource"; they are part of the flows under test.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) errors.push(msg.text());
  });
  return errors;
}

export async function screenshot(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  // Toasts from earlier steps would cover the content the picture is about.
  await page.evaluate(() => document.querySelectorAll('.toasts').forEach((region) => region.replaceChildren()));
  await page.screenshot({ path: path.join(SCREENSHOTS, name) });
}

export async function eventually(check, { timeout = 5000, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// A management-API session held by the test itself, for setup steps that are not under test.
export async function apiSession(base, email, password) {
  const res = await fetch(`${base}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const { csrf_token: csrf } = await res.json();
  return async (method, pathname, body) => {
    const response = await fetch(`${base}${pathname}`, {
      method,
      headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
}

export async function keyInfo(base, secret) {
  const res = await fetch(`${base}/v1/key`, { headers: { authorization: `Bearer ${secret}` } });
  return { status: res.status, body: await res.json().catch(() => null) };
}
