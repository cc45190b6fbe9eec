#!/usr/bin/env node
// atoauth's end-to-end test peer: the official ATProto PDS on loopback.
//
// One node (>= 22.19) process runs:
//   * a did:plc directory (@did-plc/server, in-memory)          http://localhost:<plc>
//   * the official PDS (@atproto/pds), also the OAuth server     http://localhost:<pds>
//   * an HTTPS host for confidential clients' metadata documents,
//     https://clients.atoauth-interop.internal:<port>, resolvable and trusted
//     only inside this process (the PDS fetches client metadata from it)
//   * a control server on http://127.0.0.1:<control>:
//       POST /authorize      {authorize_url, username, password, action: accept|reject, scope?}
//                            → {redirect_url, did}: plays the user (sign-in + consent)
//       PUT  /clients/<path> JSON body → {url}: publish a document on the HTTPS host
//       POST /sessions/age   {days, did?, client_id?} → {aged}: move OAuth sessions' creation time back
//       GET  /clients/<path> read it back;  GET /ready  the ready line
// then creates the test accounts and prints ONE JSON line on stdout, {"event":"ready",…}.
//
// Every port is chosen free at start (a lost race on the PDS port is retried).
// It exits, removing its data directory, on SIGTERM/SIGINT/SIGHUP and when its
// standard input reaches EOF (its parent went away), unless
// ATOAUTH_PDS_IGNORE_STDIN=1. Logs go to stderr; stdout carries only the ready line.
//
// Environment: ATOAUTH_PDS_ACCOUNTS ("alice:alice-pass,bob:bob-pass,carol:carol-pass"; ".test" is
// appended to bare names), ATOAUTH_PDS_PORT (fixed PDS port), ATOAUTH_PDS_LOG=1
// (PDS logs to <data_dir>/pds.log), ATOAUTH_PDS_KEEP_DATA=1.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'

import { confineToLoopback, freePort, listen, txtRecords } from './lib/loopback.mjs'

const started = Date.now()
const env = process.env
const CLIENT_HOST = 'clients.atoauth-interop.internal'

if (Number(process.versions.node.split('.')[0]) < 22) {
  console.error(`interop/pds: node ${process.version} cannot run @atproto/pds 0.5; run node_modules/.bin/node start.mjs`)
  process.exit(2)
}
confineToLoopback([CLIENT_HOST])

const accountsWanted = (env.ATOAUTH_PDS_ACCOUNTS ?? 'alice:alice-pass,bob:bob-pass,carol:carol-pass')
  .split(',')
  .filter(Boolean)
  .map((entry) => {
    const [name, password] = entry.split(':')
    const handle = name.includes('.') ? name : `${name}.test`
    return { handle, password, email: `${handle.split('.')[0]}@example.com` }
  })

// --- lifecycle: installed before anything starts, so every exit cleans up ---
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'atoauth-pds-'))
const closers = []
let stopping = false
async function stop(reason, code = 0) {
  if (stopping) return
  stopping = true
  setTimeout(() => process.exit(code || 1), 10_000).unref()
  for (const close of closers.reverse()) {
    try { await close() } catch (err) { if (err?.code !== 'ERR_SERVER_NOT_RUNNING') console.error('interop/pds: while stopping:', err) }
  }
  if (env.ATOAUTH_PDS_KEEP_DATA !== '1') fs.rmSync(dataDir, { recursive: true, force: true })
  console.error(`interop/pds: stopped (${reason})`)
  process.exit(code)
}
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => stop(signal))
process.on('uncaughtException', (err) => { console.error('interop/pds: fatal:', err); stop('error', 1) })
process.on('unhandledRejection', (err) => { console.error('interop/pds: fatal:', err); stop('error', 1) })
if (env.ATOAUTH_PDS_IGNORE_STDIN !== '1') {
  process.stdin.on('end', () => stop('stdin closed'))
  process.stdin.on('error', () => stop('stdin closed'))
  process.stdin.resume()
}

// --- TLS for the client-metadata host: a throw-away CA trusted only here (and by clients that
// are told to: client-host-ca.crt), and a leaf certificate for the host signed by it. A strict
// verifier (webpki, used by rustls) refuses a self-signed CA certificate as a server's.
const caKeyFile = path.join(dataDir, 'client-host-ca.key')
const caFile = path.join(dataDir, 'client-host-ca.crt')
const keyFile = path.join(dataDir, 'client-host.key')
const csrFile = path.join(dataDir, 'client-host.csr')
const certFile = path.join(dataDir, 'client-host.crt')
const extFile = path.join(dataDir, 'client-host.ext')
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
execFileSync('openssl', ['req', '-x509', ...ec, '-days', '30', '-subj', '/CN=atoauth interop CA',
  '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  '-keyout', caKeyFile, '-out', caFile], { stdio: 'ignore' })
execFileSync('openssl', ['req', ...ec, '-subj', `/CN=${CLIENT_HOST}`, '-keyout', keyFile, '-out', csrFile],
  { stdio: 'ignore' })
fs.writeFileSync(extFile, `subjectAltName=DNS:${CLIENT_HOST}\nbasicConstraints=CA:FALSE\n` +
  'keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n')
execFileSync('openssl', ['x509', '-req', '-in', csrFile, '-CA', caFile, '-CAkey', caKeyFile,
  '-CAcreateserial', '-days', '30', '-extfile', extFile, '-out', certFile], { stdio: 'ignore' })
const clientHostTls = { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) }
tls.setDefaultCACertificates([...tls.getCACertificates('default'), fs.readFileSync(caFile).toString()])

if (env.ATOAUTH_PDS_LOG === '1') {
  env.LOG_ENABLED = 'true'
  env.LOG_DESTINATION = path.join(dataDir, 'pds.log')
  env.LOG_LEVEL ??= 'info'
}

// --- PLC directory ---
const plc = await import('@did-plc/server')
const plcServer = plc.PlcServer.create({ db: plc.Database.mock(), port: 0 })
const plcHttp = await plcServer.start()
closers.push(() => plcServer.destroy())
const plcUrl = `http://localhost:${plcHttp.address().port}`

// --- the PDS (its issuer URL carries the port, so the port is chosen first) ---
const { PDS, envToCfg, envToSecrets, readEnv } = await import('@atproto/pds')
const { Secp256k1Keypair } = await import('@atproto/crypto')
const rotationKey = await Secp256k1Keypair.create({ exportable: true })
const rotationKeyHex = Buffer.from(await rotationKey.export()).toString('hex')

async function startPds(attempt) {
  const port = env.ATOAUTH_PDS_PORT ? Number(env.ATOAUTH_PDS_PORT) : await freePort()
  const dir = path.join(dataDir, `pds-${attempt}`)
  const config = {
    ...readEnv(),
    devMode: true, // http issuer and resource on localhost
    hostname: 'localhost', // issuer http://localhost:<port>
    port,
    didPlcUrl: plcUrl,
    dataDirectory: dir,
    blobstoreDiskLocation: path.join(dir, 'blobs'),
    serviceHandleDomains: ['.test'],
    inviteRequired: false,
    jwtSecret: randomBytes(16).toString('hex'),
    adminPassword: 'admin-pass',
    plcRotationKeyK256PrivateKeyHex: rotationKeyHex,
    // Never contacted: the loopback guard makes these names fail at once.
    bskyAppViewUrl: 'https://appview.invalid',
    bskyAppViewDid: 'did:example:appview',
    modServiceUrl: 'https://moderation.invalid',
    modServiceDid: 'did:example:moderation',
    crawlers: [],
    serviceName: 'atoauth-interop',
  }
  fs.mkdirSync(dir, { recursive: true })
  const pds = await PDS.create(envToCfg(config), envToSecrets(config))
  try {
    await pds.start()
  } catch (err) {
    await pds.destroy().catch(() => {})
    throw err
  }
  return { pds, url: `http://localhost:${port}`, config }
}
let running
for (let attempt = 1; !running; attempt++) {
  try {
    running = await startPds(attempt)
  } catch (err) {
    if (err?.code !== 'EADDRINUSE' || attempt >= 8 || env.ATOAUTH_PDS_PORT) throw err
    console.error(`interop/pds: PDS port taken, retrying (${attempt})`)
  }
}
const { pds, url: pdsUrl } = running
closers.push(() => pds.destroy())

// Token-endpoint answers by the DPoP key that asked (the `x` of the proof's `jwk`), counted in
// this process, so a test can count the grants its own client got while others sign in too.
// Only the header is read: the body stays the PDS's.
const tokenAnswers = new Map() // x → { status: count }
pds.server.on('request', (req, res) => {
  if (req.method !== 'POST' || !(req.url ?? '').startsWith('/oauth/token')) return
  let x = null
  try {
    const header = JSON.parse(Buffer.from(String(req.headers.dpop ?? '').split('.')[0], 'base64url').toString('utf8'))
    x = typeof header?.jwk?.x === 'string' ? header.jwk.x : null
  } catch {}
  if (!x) return
  res.on('finish', () => {
    const counts = tokenAnswers.get(x) ?? {}
    counts[res.statusCode] = (counts[res.statusCode] ?? 0) + 1
    tokenAnswers.set(x, counts)
  })
})

// --- HTTPS client-metadata host and the control server ---
const documents = new Map() // '/path' → Buffer
const cleanPath = (raw) => {
  const normal = path.posix.normalize(decodeURIComponent(raw.split('?')[0]))
  return normal.startsWith('/') && !normal.includes('..') ? normal : null
}
const clientHost = https.createServer(clientHostTls, (req, res) => {
  const body = documents.get(cleanPath(req.url ?? '/'))
  if (!body) return res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}')
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body)
})
const clientHostPort = await listen(clientHost)
closers.push(() => new Promise((r) => clientHost.close(r)))
const clientHostUrl = `https://${CLIENT_HOST}:${clientHostPort}`

let readyLine = null
const control = http.createServer(async (req, res) => {
  const reply = (status, value) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(typeof value === 'string' ? value : JSON.stringify(value))
  try {
    const chunks = []
    for await (const chunk of req) chunks.push(chunk)
    const body = Buffer.concat(chunks)
    if (req.url === '/ready' && req.method === 'GET') return readyLine ? reply(200, readyLine) : reply(503, { error: 'starting' })
    if (req.url === '/authorize' && req.method === 'POST') return reply(...(await authorizeFor(body)))
    // DNS TXT records the PDS sees (e.g. `_lexicon.<authority>` → `did=…`): PUT a JSON list of
    // values, DELETE to remove.
    const txtMatch = /^\/dns\/txt\/([A-Za-z0-9._-]+)$/.exec(req.url ?? '')
    if (txtMatch && req.method === 'PUT') {
      let values
      try { values = JSON.parse(body.toString('utf8')) } catch { return reply(400, { error: 'body must be JSON' }) }
      if (!Array.isArray(values) || !values.every((v) => typeof v === 'string')) return reply(400, { error: 'a list of strings' })
      txtRecords.set(txtMatch[1].toLowerCase(), values)
      return reply(200, { name: txtMatch[1].toLowerCase(), values })
    }
    if (txtMatch && req.method === 'DELETE') return reply(200, { removed: txtRecords.delete(txtMatch[1].toLowerCase()) })
    // Make every lexicon the PDS stored stale, as if its 5-minute refresh time had passed, so
    // the next expansion (a refresh) fetches the permission set again.
    if (req.url === '/lexicons/age' && req.method === 'POST') {
      const result = await pds.ctx.accountManager.db.db
        .updateTable('lexicon')
        .set({ updatedAt: new Date(0).toISOString() })
        .executeTakeFirst()
      return reply(200, { aged: Number(result?.numUpdatedRows ?? 0) })
    }
    // Move the OAuth sessions' creation time back by `days` (of one account and client, or all), as
    // if they had been signed in that long ago: the PDS's lifetime limits (2 weeks for public
    // clients, 2 years for confidential ones) then apply at the next refresh. Only createdAt
    // moves; the last refresh (updatedAt) stays, so inactivity limits do not interfere.
    if (req.url === '/sessions/age' && req.method === 'POST') {
      let input
      try { input = JSON.parse(body.toString('utf8') || '{}') } catch { return reply(400, { error: 'body must be JSON' }) }
      const days = Number(input.days)
      if (!Number.isFinite(days) || days <= 0) return reply(400, { error: 'days: a positive number' })
      const db = pds.ctx.accountManager.db.db
      let rows = db.selectFrom('token').select(['id', 'createdAt'])
      if (input.did) rows = rows.where('did', '=', input.did)
      if (input.client_id) rows = rows.where('clientId', '=', input.client_id)
      rows = await rows.execute()
      for (const row of rows) {
        const moved = new Date(new Date(row.createdAt).getTime() - days * 86_400_000).toISOString()
        await db.updateTable('token').set({ createdAt: moved }).where('id', '=', row.id).execute()
      }
      return reply(200, { aged: rows.length })
    }
    const answersMatch = /^\/token-answers\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '')
    if (answersMatch && req.method === 'GET') return reply(200, tokenAnswers.get(answersMatch[1]) ?? {})
    const match = /^\/clients(\/.+)$/.exec(req.url ?? '')
    const documentPath = match && cleanPath(match[1])
    if (!documentPath) return reply(404, { error: 'not found' })
    if (req.method === 'GET') return documents.has(documentPath) ? reply(200, documents.get(documentPath).toString()) : reply(404, { error: 'not found' })
    if (req.method !== 'PUT') return reply(405, { error: 'use GET or PUT' })
    try { JSON.parse(body.toString('utf8')) } catch { return reply(400, { error: 'body must be JSON' }) }
    documents.set(documentPath, body)
    return reply(201, { url: `${clientHostUrl}${documentPath}` })
  } catch (err) {
    return reply(500, { error: String(err?.message ?? err) })
  }
})
async function authorizeFor(body) {
  let input
  try { input = JSON.parse(body.toString('utf8')) } catch { return [400, { error: 'body must be JSON' }] }
  const action = input.action ?? 'accept'
  if (!input.authorize_url || !['accept', 'reject'].includes(action) || (action === 'accept' && (!input.username || !input.password))) {
    return [400, { error: 'authorize_url is required, with username and password to accept; action is accept or reject' }]
  }
  const { authorize } = await import('./lib/user.mjs')
  try {
    const out = await authorize({ authorizeUrl: input.authorize_url, username: input.username, password: input.password, action, scope: input.scope })
    return [200, { redirect_url: out.redirectUrl, did: out.did ?? null }]
  } catch (err) {
    return [err.status >= 400 && err.status < 500 ? 422 : 500, { error: String(err.message ?? err), step: err.step ?? null }]
  }
}
const controlPort = await listen(control)
closers.push(() => new Promise((r) => control.close(r)))

// --- test accounts, created like any client would ---
const accounts = []
for (const wanted of accountsWanted) {
  const res = await fetch(`${pdsUrl}/xrpc/com.atproto.server.createAccount`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ handle: wanted.handle, email: wanted.email, password: wanted.password }),
  })
  const body = await res.json()
  if (!res.ok) throw new Error(`createAccount ${wanted.handle}: ${res.status} ${JSON.stringify(body)}`)
  accounts.push({ handle: wanted.handle, did: body.did, password: wanted.password, email: wanted.email })
}

readyLine = JSON.stringify({
  event: 'ready',
  pid: process.pid,
  node: process.version,
  pds_version: pds.ctx.cfg.service.version,
  startup_ms: Date.now() - started,
  pds_url: pdsUrl,
  issuer: pds.ctx.cfg.oauth.issuer,
  plc_url: plcUrl,
  handle_domains: pds.ctx.cfg.identity.serviceHandleDomains,
  accounts,
  control_url: `http://127.0.0.1:${controlPort}`,
  client_host_url: clientHostUrl,
  data_dir: dataDir,
})
process.stdout.write(readyLine + '\n')
