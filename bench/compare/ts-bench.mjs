// The TypeScript side of the comparison: @atproto/oauth-client-node 0.5.3 against the same
// official PDS as atoauth, one measurement per process. Prints one JSON line.
//   node ts-bench.mjs <login|throughput|dpop|storm|storm-worker> --pds URL --plc URL --control URL [...]
import { createHash, generateKeyPairSync, sign } from 'node:crypto'
import { readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { NodeOAuthClient, JoseKey, atprotoLoopbackClientMetadata } from '@atproto/oauth-client-node'

const [mode, ...rest] = process.argv.slice(2)
const opt = {}
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1]
const scope = 'atproto transition:generic'
const clientId = `http://localhost?redirect_uri=${encodeURIComponent('http://127.0.0.1/callback')}&scope=${encodeURIComponent(scope)}`

class MemoryStore {
  constructor() { this.map = new Map() }
  async get(k) { return this.map.get(k) }
  async set(k, v) { this.map.set(k, v) }
  async del(k) { this.map.delete(k) }
}
// A store two processes share (the TS SDK's default configuration has no cross-process lock).
class FileStore {
  constructor(path) { this.path = path }
  read() { return existsSync(this.path) ? JSON.parse(readFileSync(this.path, 'utf8')) : {} }
  write(data) { const tmp = `${this.path}.${process.pid}`; writeFileSync(tmp, JSON.stringify(data)); renameSync(tmp, this.path) }
  async get(k) { return this.read()[k] }
  async set(k, v) { const d = this.read(); d[k] = v; this.write(d) }
  async del(k) { const d = this.read(); delete d[k]; this.write(d) }
}

const counts = {}
let refreshGrants = 0, refreshRequests = 0
const countingFetch = async (input, init) => {
  const request = new Request(input, init)
  const path = new URL(request.url).pathname
  let grant
  if (request.method === 'POST' && path.endsWith('/oauth/token')) {
    grant = new URLSearchParams(await request.clone().text()).get('grant_type')
  }
  const response = await fetch(request)
  const key = grant ? `${path} (${grant})` : path
  counts[key] = (counts[key] || 0) + 1
  if (grant === 'refresh_token') { refreshRequests++; if (response.status === 200) refreshGrants++ }
  return response
}

function client({ alg, sessionStore } = {}) {
  return new NodeOAuthClient({
    clientMetadata: atprotoLoopbackClientMetadata(clientId),
    stateStore: new MemoryStore(),
    sessionStore: sessionStore ?? new MemoryStore(),
    handleResolver: opt.pds,
    plcDirectoryUrl: opt.plc,
    allowHttp: true,
    fetch: countingFetch,
    ...(alg === 'ES256' ? { runtimeImplementation: {
      createKey: () => JoseKey.generate(['ES256']),
      getRandomValues: (n) => crypto.getRandomValues(new Uint8Array(n)),
      digest: (bytes, algorithm) => createHash(algorithm.name).update(bytes).digest(),
    } } : {}),
  })
}

async function userStep(url, handle) {
  const password = handle.startsWith('alice') ? 'alice-pass' : 'bob-pass'
  const started = performance.now()
  const r = await fetch(`${opt.control}/authorize`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ authorize_url: url, username: handle, password, mode: 'api' }) })
  const body = await r.json()
  if (r.status !== 200) throw new Error(`authorize: ${JSON.stringify(body)}`)
  return { params: new URL(body.redirect_url).searchParams, ms: performance.now() - started }
}

async function login(c, handle) {
  const t0 = performance.now()
  const url = await c.authorize(handle, { scope })
  const authorizeMs = performance.now() - t0
  const user = await userStep(url.toString(), handle)
  const t1 = performance.now()
  const { session } = await c.callback(user.params)
  return { session, authorize_ms: authorizeMs, callback_ms: performance.now() - t1, user_ms: user.ms }
}

const peakRss = () => process.resourceUsage().maxRSS * 1024
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.round((sorted.length - 1) * p))]

async function main() {
  if (mode === 'login') {
    const c = client({ alg: opt.alg })
    const cold = await login(c, 'alice.test')
    const coldRequests = { ...counts }
    for (const k of Object.keys(counts)) delete counts[k]
    const warm = await login(c, 'alice.test')
    return { cold: { ...cold, session: undefined, requests: coldRequests }, warm: { ...warm, session: undefined, requests: { ...counts } }, peak_rss: peakRss() }
  }
  if (mode === 'throughput') {
    const c = client({ alg: opt.alg })
    const { session } = await login(c, 'bob.test')
    const n = Number(opt.n), seconds = Number(opt.seconds)
    await session.fetchHandler('/xrpc/com.atproto.server.getSession')
    const latencies = []
    const cpu0 = process.cpuUsage(), t0 = performance.now(), deadline = t0 + seconds * 1000
    await Promise.all(Array.from({ length: n }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now()
        const r = await session.fetchHandler('/xrpc/com.atproto.server.getSession')
        await r.arrayBuffer()
        if (r.status !== 200) throw new Error(`getSession ${r.status}`)
        latencies.push(performance.now() - t)
      }
    }))
    const wall = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    latencies.sort((a, b) => a - b)
    return { n, requests: latencies.length, rps: latencies.length / wall, p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99),
      cpu_us_per_request: (cpu.user + cpu.system) / latencies.length, peak_rss: peakRss() }
  }
  if (mode === 'dpop') {
    const alg = opt.alg ?? 'ES256K'
    const key = await JoseKey.generate([alg])
    const token = 'eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJIUzI1NiJ9.payload.signature'
    const proof = async () => key.createJwt({ alg, typ: 'dpop+jwt', jwk: key.bareJwk }, {
      iat: Math.floor(Date.now() / 1e3), jti: Math.random().toString(36).slice(2), htm: 'POST',
      htu: 'https://pds.example.com/xrpc/com.atproto.repo.createRecord', nonce: 'f7d0b3b6-2c9b-4d37-9d5d-2b0f4d1a9c11',
      ath: createHash('sha256').update(token).digest('base64url') })
    for (let i = 0; i < 200; i++) await proof()
    let count = 0; const t0 = performance.now()
    while (performance.now() - t0 < 2000) { await proof(); count++ }
    const proofUs = (performance.now() - t0) * 1000 / count
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const message = Buffer.alloc(520, 97)
    let signs = 0; const t1 = performance.now()
    while (performance.now() - t1 < 1000) { sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' }); signs++ }
    return { alg, proof_us: proofUs, bare_es256_signature_us: (performance.now() - t1) * 1000 / signs }
  }
  if (mode === 'storm') {
    const store = opt.store ? new FileStore(opt.store) : new MemoryStore()
    const c = client({ sessionStore: store })
    const { session } = await login(c, 'alice.test')
    const sub = session.did
    const stored = await store.get(sub)
    stored.tokenSet.expires_at = new Date(Date.now() - 600_000).toISOString()
    await store.set(sub, stored)
    const processes = Number(opt.processes ?? 1), calls = Number(opt.calls ?? 1000)
    refreshGrants = 0; refreshRequests = 0
    const t0 = performance.now()
    let grants = 0, requests = 0, failed = 0
    if (processes === 1) {
      failed = (await stormCalls(c, sub, calls)).failed
      grants = refreshGrants; requests = refreshRequests
    } else {
      const reports = await Promise.all(Array.from({ length: processes }, () => new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [new URL(import.meta.url).pathname, 'storm-worker', '--pds', opt.pds, '--plc', opt.plc,
          '--store', opt.store, '--sub', sub, '--calls', String(calls / processes)], { stdio: ['ignore', 'pipe', 'ignore'] })
        let out = ''; child.stdout.on('data', (d) => { out += d })
        child.on('exit', () => { try { resolve(JSON.parse(out.trim().split('\n').pop())) } catch (e) { reject(e) } })
      })))
      for (const r of reports) { grants += r.grants; requests += r.requests; failed += r.failed }
    }
    let survived = false
    try {
      const again = await client({ sessionStore: store }).restore(sub, false)
      survived = (await again.fetchHandler('/xrpc/com.atproto.server.getSession')).status === 200
    } catch { survived = false }
    return { processes, calls, refresh_grants: grants, refresh_requests: requests, failed, survived, ms: performance.now() - t0 }
  }
  if (mode === 'storm-worker') {
    const c = client({ sessionStore: new FileStore(opt.store) })
    const { failed } = await stormCalls(c, opt.sub, Number(opt.calls))
    return { grants: refreshGrants, requests: refreshRequests, failed }
  }
  throw new Error(`unknown mode ${mode}`)
}

async function stormCalls(c, sub, calls) {
  let failed = 0
  await Promise.all(Array.from({ length: calls }, async () => {
    try {
      const s = await c.restore(sub)
      const r = await s.fetchHandler('/xrpc/com.atproto.server.getSession')
      await r.arrayBuffer()
      if (r.status !== 200) failed++
    } catch { failed++ }
  }))
  return { failed }
}

const warn = console.warn
console.warn = () => {} // the SDK warns about its missing lock on every construction
main().then((r) => { console.log(JSON.stringify(r)); process.exit(0) }, (e) => { warn(e); process.exit(1) })
