// End-to-end test of the chat demo (apps/chat) in a real browser: Debian's chromium, headless,
// driven by playwright-core. Two pages join room "alpha" as ann and bob, a third joins "beta" as
// cid; ann's message must reach bob (with ann's name) and must not reach cid.
//
// Environment:
//   CASGI_RUNNER    the runner binary   (default: <repo>/build/release/apps/casgi)
//   CASGI_CHAT      the chat app module (default: <repo>/build/release/apps/chat.so)
//   CASGI_CHAT_URL  test an already running server at this base URL instead of starting one
//   CASGI_CHROMIUM  the browser binary  (default: /usr/bin/chromium)
//
// Everything is bounded in time: each wait has its own timeout, the test has one, and a watchdog
// ends the process (killing the runner) if the whole file overruns. On failure, screenshots of the
// pages, their text and the runner's log are left in a temp dir whose path is printed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUNNER = process.env.CASGI_RUNNER || path.join(repo, 'build/release/apps/casgi');
const CHAT = process.env.CASGI_CHAT || path.join(repo, 'build/release/apps/chat.so');
const CHROMIUM = process.env.CASGI_CHROMIUM || '/usr/bin/chromium';

const START_TIMEOUT = 10_000; // runner prints its port line
const STOP_TIMEOUT = 10_000; // runner exits after SIGTERM (then SIGKILL)
const STEP_TIMEOUT = 8_000; // one page action or one expected change on a page
const QUIET_MS = 1_500; // how long cid's page must stay without ann's message
const TEST_TIMEOUT = 45_000;
const WATCHDOG_MS = 58_000;

const MESSAGE = 'hello from ann';

const work = mkdtempSync(path.join(tmpdir(), 'casgi-browser-'));
let runner = null; // { child, log(), exited: Promise<{code, signal}> }
let context = null; // the persistent browser context
let baseUrl = null;
let failed = false;

const t0 = Date.now();
const log = (...a) => console.log(`# [${((Date.now() - t0) / 1000).toFixed(1)} s]`, ...a);

// ---- the runner ------------------------------------------------------------------------------

function startRunner() {
  // In a process group of its own, so that stopping it reaches anything it started too.
  const child = spawn(RUNNER, [CHAT, '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  const keep = (chunk) => {
    out += chunk.toString();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  runner = { child, log: () => out, exited };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`runner printed no port within ${START_TIMEOUT} ms:\n${out}`)),
      START_TIMEOUT,
    );
    const look = () => {
      const m = /running on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stderr.off('data', look);
        resolve(`http://127.0.0.1:${m[1]}`);
      }
    };
    child.stderr.on('data', look);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${RUNNER}: ${e.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`runner exited early (code ${code}, signal ${signal}):\n${out}`));
    });
  });
}

function signalRunner(sig) {
  try {
    process.kill(-runner.child.pid, sig); // its process group
  } catch {
    runner.child.kill(sig);
  }
}

// SIGTERM, wait, then SIGKILL. Returns how it ended: { code, signal, killed }.
async function stopRunner() {
  if (!runner) return null;
  if (runner.stopped) return runner.stopped;
  const { child, exited } = runner;
  if (child.exitCode === null && child.signalCode === null) signalRunner('SIGTERM');
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), STOP_TIMEOUT);
  });
  let how = await Promise.race([exited, late]);
  clearTimeout(timer);
  if (how === null) {
    signalRunner('SIGKILL');
    how = { ...(await exited), killed: true };
  }
  // Whatever may still hold its output pipes must not keep this process alive.
  child.stdout.destroy();
  child.stderr.destroy();
  runner.stopped = how;
  return how;
}

// If anything hangs past every timeout, do not leave a server behind.
const watchdog = setTimeout(() => {
  console.error(`# watchdog: test file still running after ${WATCHDOG_MS} ms, giving up`);
  if (runner) signalRunner('SIGKILL');
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();
// Stopped from outside (run.sh's timeout, ctest, ^C): take the runner along.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    if (runner) signalRunner('SIGKILL');
    process.exit(1);
  });
}

// ---- the pages -------------------------------------------------------------------------------

// Opens a page on the room, joins as nick, and adds the page to pages (for evidence on failure).
async function openAs(pages, nick, room) {
  const page = await context.newPage();
  pages.push(page);
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.consoleLines = [];
  page.on('console', (m) => page.consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.consoleLines.push(`pageerror: ${e.message}`));
  // A page may ask with window.prompt() instead of (or before) its #nick input.
  page.on('dialog', (d) => (d.type() === 'prompt' ? d.accept(nick) : d.dismiss()).catch(() => {}));
  page.nick = nick;
  await page.goto(`${baseUrl}/?room=${encodeURIComponent(room)}`, { waitUntil: 'load' });
  const nickInput = page.locator('#nick');
  if (await nickInput.isVisible()) {
    await nickInput.fill(nick);
    const join = page.locator('#join');
    if ((await join.count()) > 0) await join.click();
    else await nickInput.press('Enter');
  }
  // Joined when the page lists itself among the members.
  await waitForMember(page, nick);
  log(`${nick} joined ${room}`);
  return page;
}

// Texts of the direct children of a list (one member or one message each).
function items(page, sel) {
  return page.$$eval(`${sel} > *`, (els) => els.map((e) => e.textContent.trim()));
}

// page.waitForFunction, with a failure that says which page waited for what.
async function waitOn(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: STEP_TIMEOUT });
  } catch (e) {
    if (e.name !== 'TimeoutError') throw e;
    throw new Error(`${page.nick}'s page: ${what} not seen within ${STEP_TIMEOUT} ms`);
  }
}

async function waitForMember(page, nick) {
  await waitOn(
    page,
    `member "${nick}" in #members`,
    (n) =>
      [...document.querySelectorAll('#members > *')].some((e) =>
        new RegExp(`(^|\\W)${n}(\\W|$)`).test(e.textContent.trim()),
      ),
    nick,
  );
}

async function send(page, text) {
  await page.locator('#text').fill(text);
  const button = page.locator('#send');
  if ((await button.count()) > 0) await button.click();
  else await page.locator('#text').press('Enter');
}

// A message entry: a child of #messages holding the text and the sender's name. The chat page
// marks them up as li.message > span.nick + span.text (compared exactly then); any other markup
// passes when the entry holds the text and, besides it, the name.
async function waitForMessage(page, from, text) {
  await waitOn(
    page,
    `message "${text}" from "${from}" in #messages`,
    ([f, t]) =>
      [...document.querySelectorAll('#messages > *')].some((e) => {
        const nick = e.querySelector('.nick');
        const body = e.querySelector('.text');
        if (nick && body) return nick.textContent.trim() === f && body.textContent.trim() === t;
        const s = e.textContent;
        return s.includes(t) && s.replace(t, ' ').includes(f);
      }),
    [from, text],
  );
}

async function saveEvidence(pages) {
  for (const page of pages) {
    if (!page || page.isClosed()) continue;
    const base = path.join(work, `fail-${page.nick}`);
    try {
      await page.screenshot({ path: `${base}.png`, fullPage: true, timeout: 5_000 });
      const members = await items(page, '#members').catch((e) => [`(${e.message})`]);
      const messages = await items(page, '#messages').catch((e) => [`(${e.message})`]);
      const status = await page
        .$eval('#status', (e) => e.textContent.trim())
        .catch(() => '(no #status)');
      writeFileSync(
        `${base}.txt`,
        `url: ${page.url()}\nstatus: ${status}\nmembers: ${JSON.stringify(members)}\nmessages: ${JSON.stringify(messages)}\n` +
          `console:\n${page.consoleLines.join('\n')}\n`,
      );
    } catch (e) {
      console.error(`# could not save evidence for ${page.nick}: ${e.message}`);
    }
  }
  if (runner) writeFileSync(path.join(work, 'runner.log'), runner.log());
  console.error(`# failure evidence (screenshots, page text, runner log) in ${work}`);
}

// ---- the test --------------------------------------------------------------------------------

before(async () => {
  if (process.env.CASGI_CHAT_URL) {
    baseUrl = process.env.CASGI_CHAT_URL.replace(/\/+$/, '');
  } else {
    baseUrl = await startRunner();
  }
  log(`server at ${baseUrl}`);
  context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 20_000,
  });
  log(`chromium ${context.browser()?.version() ?? ''} started`);
  context.setDefaultTimeout(STEP_TIMEOUT);
});

async function closeBrowser() {
  const c = context;
  context = null;
  if (c) await c.close();
}

// A safety net: the last test closes the browser and stops the runner already.
after(async () => {
  try {
    await closeBrowser();
  } catch (e) {
    console.error(`# closing the browser: ${e.message}`);
  }
  await stopRunner();
  // The browser profile is no evidence; the screenshots and logs are kept on failure.
  rmSync(path.join(work, 'profile'), { recursive: true, force: true });
  if (failed) console.error(`# kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
});

test('a message reaches its room and only its room', { timeout: TEST_TIMEOUT }, async () => {
  const pages = [];
  try {
    const ann = await openAs(pages, 'ann', 'alpha');
    const bob = await openAs(pages, 'bob', 'alpha');
    const cid = await openAs(pages, 'cid', 'beta');

    // Presence: bob sees ann in the member list (and ann sees bob join).
    await waitForMember(bob, 'ann');
    await waitForMember(ann, 'bob');

    await send(ann, MESSAGE);
    await waitForMessage(bob, 'ann', MESSAGE);
    log(`bob got ann's message`);

    // Give a wrongly routed broadcast time to show up on cid's page, then check it did not.
    await cid.waitForTimeout(QUIET_MS);
    const cidMessages = await items(cid, '#messages');
    assert.ok(
      !cidMessages.some((m) => m.includes(MESSAGE)),
      `room beta got room alpha's message: ${JSON.stringify(cidMessages)}`,
    );
    const cidMembers = await items(cid, '#members');
    assert.ok(
      !cidMembers.some((m) => /\b(ann|bob)\b/.test(m)),
      `room beta lists members of room alpha: ${JSON.stringify(cidMembers)}`,
    );
  } catch (e) {
    failed = true;
    await saveEvidence(pages);
    throw e;
  }
});

// With the pages gone, the server must stop on SIGTERM in time, exit 0 and, in a sanitizer build,
// report nothing.
test('the runner stops cleanly', { skip: !!process.env.CASGI_CHAT_URL }, async () => {
  await closeBrowser();
  const how = await stopRunner();
  log(`runner stopped: code ${how.code}, signal ${how.signal}${how.killed ? ' (SIGKILL)' : ''}`);
  const out = runner.log();
  try {
    assert.ok(!how.killed, `runner still running ${STOP_TIMEOUT} ms after SIGTERM`);
    assert.equal(how.signal, null, `runner died of ${how.signal}`);
    assert.equal(how.code, 0, 'runner exit code');
    assert.doesNotMatch(out, /ERROR: (Address|Leak|Thread)Sanitizer|runtime error:/);
  } catch (e) {
    failed = true;
    writeFileSync(path.join(work, 'runner.log'), out);
    console.error(`# runner log:\n${out}`);
    throw e;
  }
});
