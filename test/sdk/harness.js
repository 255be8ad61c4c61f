// Test harness: builds (or takes ORCHARD_BIN) and runs a real `orchard serve`
// on loopback against the test env's Dovecot/Postfix, creates applications
// with the CLI, and hands out Nylas SDK clients pointed at it.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import Nylas, { NylasApiError } from 'nylas';

export { NylasApiError };

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');

// ---------------------------------------------------------------------------
// Test environment

const REQUIRED_ENV = ['ORCHARD_TEST_IMAP_ADDR', 'ORCHARD_TEST_SMTP_ADDR', 'ORCHARD_TEST_CA_FILE', 'ORCHARD_TEST_USERS'];

/** Returns the loopback test env, or throws a message that says how to get it. */
export function testEnv() {
  const missing = REQUIRED_ENV.filter((k) => !process.env[k]);
  if (missing.length > 0) {
    throw new Error(
      `SDK tests need the loopback mail test env; missing ${missing.join(', ')}.\n` +
        `Start it with:  scripts/testenv/install.sh && scripts/testenv/up.sh\n` +
        `then load it:   . /tmp/orchard-testenv/env   (see scripts/testenv/README.md)`,
    );
  }
  const users = {};
  for (const pair of process.env.ORCHARD_TEST_USERS.trim().split(/\s+/)) {
    const i = pair.indexOf(':');
    if (i <= 0) throw new Error(`ORCHARD_TEST_USERS entry ${JSON.stringify(pair.split(':')[0])} is not email:password`);
    users[pair.slice(0, i)] = pair.slice(i + 1);
  }
  for (const u of ['alice@example.test', 'bob@example.test', 'carol@example.test']) {
    if (!users[u]) throw new Error(`ORCHARD_TEST_USERS has no ${u}`);
  }
  if (!fs.existsSync(process.env.ORCHARD_TEST_CA_FILE)) {
    throw new Error(`ORCHARD_TEST_CA_FILE=${process.env.ORCHARD_TEST_CA_FILE} does not exist: restart the test env (scripts/testenv/up.sh)`);
  }
  const split = (addr) => {
    const i = addr.lastIndexOf(':');
    return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
  };
  return {
    imapAddr: process.env.ORCHARD_TEST_IMAP_ADDR,
    smtpAddr: process.env.ORCHARD_TEST_SMTP_ADDR,
    imap: split(process.env.ORCHARD_TEST_IMAP_ADDR),
    smtp: split(process.env.ORCHARD_TEST_SMTP_ADDR),
    caFile: process.env.ORCHARD_TEST_CA_FILE,
    users,
  };
}

/**
 * Wrong passwords the tests send. They are listed here so that the log
 * checks look for them as well as for the real ones.
 */
export const BAD_PASSWORDS = Object.freeze({
  icloud: 'wrng-pass-word-zzzz',
  imap: 'Not-The-Imap-Pass-9731',
  timeout: 'never-answered-pass-4410',
  refused: 'refused-port-pass-5521',
  untrusted: 'untrusted-ca-pass-6632',
  other: 'misc-secret-pass-7743',
});

/** Every password a test may send: good ones from the env and BAD_PASSWORDS. */
export function allPasswords() {
  return [...Object.values(testEnv().users), ...Object.values(BAD_PASSWORDS)];
}

// ---------------------------------------------------------------------------
// Binary

let builtBin;

/** ORCHARD_BIN, or `go build` of ./cmd/orchard into a temp dir (once per process). */
export function orchardBin() {
  if (process.env.ORCHARD_BIN) {
    if (!fs.existsSync(process.env.ORCHARD_BIN)) throw new Error(`ORCHARD_BIN=${process.env.ORCHARD_BIN} does not exist`);
    return process.env.ORCHARD_BIN;
  }
  if (builtBin) return builtBin;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchard-sdk-bin-'));
  const out = path.join(dir, 'orchard');
  try {
    execFileSync('go', ['build', '-o', out, './cmd/orchard'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`go build ./cmd/orchard failed:\n${e.stderr?.toString() ?? e.message}`);
  }
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  builtBin = out;
  return out;
}

// ---------------------------------------------------------------------------
// Ports and processes

/** A port that nothing listens on right now (bound then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A TCP server on 127.0.0.1 that accepts connections and never writes a
 * byte: a mail server that hangs. close() destroys open sockets too.
 */
export async function startSilentServer() {
  const sockets = new Set();
  const srv = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: srv.address().port,
    connections: () => sockets.size,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

const running = new Set();
process.on('exit', () => {
  for (const p of running) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Base environment for every orchard command of one server. */
function orchardEnv({ dataDir, listen, ca, extra }) {
  const env = testEnv();
  const e = { PATH: process.env.PATH, HOME: process.env.HOME ?? os.tmpdir(), TMPDIR: os.tmpdir() };
  Object.assign(e, {
    ORCHARD_DATA_DIR: dataDir,
    ORCHARD_LISTEN: listen,
    ORCHARD_ICLOUD_IMAP_ADDR: env.imapAddr,
    ORCHARD_ICLOUD_SMTP_ADDR: env.smtpAddr,
    ORCHARD_PROVIDER_TIMEOUT: '3s',
    ORCHARD_LOG_FORMAT: 'text',
  });
  if (ca) e.ORCHARD_CA_FILE = env.caFile;
  return { ...e, ...extra };
}

/** Runs `orchard app create --name NAME --json` and returns {appId, apiKey}. */
export function createApp(server, name) {
  let out;
  try {
    out = execFileSync(orchardBin(), ['app', 'create', '--name', name, '--json'], {
      env: server.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 15000,
    }).toString();
  } catch (e) {
    throw new Error(`orchard app create --name ${name} failed: ${e.stderr?.toString() ?? e.message}`);
  }
  const lines = out.trim().split('\n');
  assert.equal(lines.length, 1, `app create --json must print one line, got: ${out}`);
  const j = JSON.parse(lines[0]);
  assert.match(j.application_id ?? '', /\S/, 'app create --json: application_id');
  assert.match(j.api_key ?? '', /\S/, 'app create --json: api_key');
  return { appId: j.application_id, apiKey: j.api_key };
}

/**
 * Starts orchard serve with a fresh data dir.
 *   apps: names of applications to create with the CLI before serve
 *         (the first one is the default {apiKey, appId}); [] = let serve
 *         bootstrap its "default" app on the empty database.
 *   ca:   pass ORCHARD_CA_FILE (default true).
 *   env:  extra/overriding ORCHARD_* variables.
 * Returns {url, apiKey, appId, apps, logFile, stdoutFile, dataDir, env, stop()}.
 * stop() sends SIGTERM and resolves {code, signal, ms}; it is idempotent.
 */
export async function startOrchard({ apps = ['sdk-test'], ca = true, env = {}, name = 'orchard' } = {}) {
  testEnv();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `orchard-sdk-${name}-`));
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const server = { url: `http://${listen}`, dataDir, env: orchardEnv({ dataDir, listen, ca, extra: env }) };
  server.apps = apps.map((n) => ({ name: n, ...createApp(server, n) }));
  if (server.apps.length > 0) Object.assign(server, { apiKey: server.apps[0].apiKey, appId: server.apps[0].appId });

  return launch(server);
}

/**
 * Starts serve again on prev's data dir, address and environment (after
 * prev stopped). Same apps, fresh log files.
 */
export async function startOrchardOn(prev) {
  const server = { url: prev.url, dataDir: prev.dataDir, env: prev.env, apps: prev.apps, apiKey: prev.apiKey, appId: prev.appId };
  return launch(server);
}

let launches = 0;

async function launch(server) {
  const { dataDir } = server;
  const bin = orchardBin();
  const n = ++launches;
  server.logFile = path.join(dataDir, `orchard.${n}.stderr.log`);
  server.stdoutFile = path.join(dataDir, `orchard.${n}.stdout.log`);
  const errFd = fs.openSync(server.logFile, 'a');
  const outFd = fs.openSync(server.stdoutFile, 'a');
  const proc = spawn(bin, ['serve'], { env: server.env, stdio: ['ignore', outFd, errFd] });
  fs.closeSync(errFd);
  fs.closeSync(outFd);
  running.add(proc);
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
    running.delete(proc);
    resolve({ code, signal });
  }));
  let exitInfo = null;
  exited.then((x) => (exitInfo = x));
  server.proc = proc;
  server.log = () => fs.readFileSync(server.logFile, 'utf8');
  server.stdout = () => fs.readFileSync(server.stdoutFile, 'utf8');

  // Readiness: GET /healthz answers 200.
  const deadline = Date.now() + 15000;
  for (;;) {
    if (exitInfo) {
      throw new Error(`orchard serve exited early (${JSON.stringify(exitInfo)}); stderr:\n${server.log()}`);
    }
    try {
      const r = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`orchard serve not ready on ${server.url} within 15 s; stderr:\n${server.log()}`);
    }
    await sleep(50);
  }

  let stopping;
  server.stop = () => {
    if (!stopping) {
      stopping = (async () => {
        const t0 = Date.now();
        if (!exitInfo) proc.kill('SIGTERM');
        let timer;
        const res = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r(null), 10000)))]);
        clearTimeout(timer);
        if (!res) {
          proc.kill('SIGKILL');
          await exited;
          return { code: null, signal: 'SIGKILL(after 10 s timeout)', ms: Date.now() - t0 };
        }
        return { ...res, ms: Date.now() - t0 };
      })();
    }
    return stopping;
  };
  server.cleanup = () => fs.rmSync(dataDir, { recursive: true, force: true });
  return server;
}

// ---------------------------------------------------------------------------
// SDK helpers

/** A Nylas client for server (default key: its first app's key). */
export function client(server, apiKey = server.apiKey) {
  return new Nylas({ apiKey, apiUri: server.url, timeout: 30 });
}

/**
 * Awaits promise, which must reject with NylasApiError of the given status
 * and type; message (RegExp or array of RegExp) must match. Returns the error.
 */
export async function expectApiError(promise, { status, type, message, not = [] }, label = '') {
  let err;
  try {
    const res = await promise;
    assert.fail(`${label}: expected NylasApiError ${status} ${type}, got success: ${JSON.stringify(res).slice(0, 500)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  const where = label ? `${label}: ` : '';
  assert.ok(err instanceof NylasApiError, `${where}expected NylasApiError, got ${err?.constructor?.name}: ${err?.message}`);
  const desc = `${where}[${err.statusCode} ${err.type}] ${err.message}`;
  assert.equal(err.statusCode, status, `${desc}: statusCode`);
  if (type !== undefined) assert.equal(err.type, type, `${desc}: type`);
  assert.equal(typeof err.requestId, 'string', `${desc}: requestId must come from X-Request-Id`);
  assert.match(err.requestId, /^[0-9a-f-]{8,}$/i, `${desc}: requestId`);
  assert.ok(typeof err.message === 'string' && err.message.length > 10, `${desc}: message must be helpful`);
  for (const re of [message ?? []].flat()) assert.match(err.message, re, `${desc}: message`);
  for (const s of not) assert.ok(!err.message.includes(s), `${desc}: message must not contain ${JSON.stringify(s)}`);
  return err;
}

/** Asserts that none of the secrets appears in text (reports which did). */
export function assertNoSecrets(text, secrets, what) {
  const leaked = secrets.filter((s) => s && text.includes(s));
  assert.deepEqual(leaked, [], `${what} contains secret(s): ${leaked.map((s) => JSON.stringify(s)).join(', ')}`);
}

/**
 * The end-of-file checks for one server: SIGTERM → exit code 0 within a few
 * seconds, and no password anywhere in its log output.
 */
export async function stopAndCheck(server, secrets = allPasswords()) {
  const res = await server.stop();
  assert.equal(res.signal, null, `orchard serve was killed by ${res.signal}; stderr:\n${server.log().slice(-4000)}`);
  assert.equal(res.code, 0, `orchard serve exit code after SIGTERM; stderr:\n${server.log().slice(-4000)}`);
  assert.ok(res.ms < 5000, `orchard serve took ${res.ms} ms to stop after SIGTERM`);
  assertNoSecrets(server.log(), secrets, `server log ${server.logFile}`);
  assertNoSecrets(server.stdout(), secrets, `server stdout ${server.stdoutFile}`);
  return res;
}
