// The TypeScript BFF of the side-by-side benchmark: the shape of the cookbook web apps. Express,
// @atproto/oauth-client-node with the loopback development client, the account's DID in a signed
// cookie, and /xrpc/* forwarded to the user's PDS through OAuthSession.fetchHandler (DPoP).
//   node ts-bff.mjs --pds URL --plc URL [--standin URL]
// Prints one JSON line {"event":"ready","port":N} on stdout once listening on 127.0.0.1.
// With --standin, sessions are stored with that URL as their PDS (`aud`): the benchmark's fast
// upstream, which answers XRPC with fixed JSON, so that the BFF's own cost is what is measured.
import { randomBytes } from 'node:crypto'
import express from 'express'
import cookieParser from 'cookie-parser'
import { NodeOAuthClient, atprotoLoopbackClientMetadata } from '@atproto/oauth-client-node'

const args = process.argv.slice(2)
const opt = {}
for (let i = 0; i < args.length; i += 2) opt[args[i].replace(/^--/, '')] = args[i + 1]

class MemoryStore {
  constructor(rewrite = (v) => v) { this.map = new Map(); this.rewrite = rewrite }
  async get(k) { return this.map.get(k) }
  async set(k, v) { this.map.set(k, this.rewrite(v)) }
  async del(k) { this.map.delete(k) }
}

const app = express()
app.disable('x-powered-by')
app.use(cookieParser(randomBytes(32).toString('hex')))
app.use(express.urlencoded({ extended: false }))

const server = app.listen(0, '127.0.0.1', () => {
  const port = server.address().port
  const scope = 'atproto transition:generic'
  const redirectUri = `http://127.0.0.1:${port}/callback`
  const clientId = `http://localhost?redirect_uri=${encodeURIComponent(redirectUri)}&scope=${encodeURIComponent(scope)}`
  const client = new NodeOAuthClient({
    clientMetadata: atprotoLoopbackClientMetadata(clientId),
    stateStore: new MemoryStore(),
    sessionStore: new MemoryStore((session) => opt.standin
      ? { ...session, tokenSet: { ...session.tokenSet, aud: opt.standin } }
      : session),
    handleResolver: opt.pds,
    plcDirectoryUrl: opt.plc,
    allowHttp: true,
  })

  app.post('/login', async (req, res) => {
    try {
      const url = await client.authorize(String(req.body.identifier ?? ''), { scope })
      res.redirect(303, url.toString())
    } catch (err) {
      res.status(400).send(`sign-in failed: ${err.message}`)
    }
  })

  app.get('/callback', async (req, res) => {
    try {
      const { session } = await client.callback(new URLSearchParams(req.originalUrl.split('?')[1] ?? ''))
      res.cookie('sid', session.did, { signed: true, httpOnly: true, sameSite: 'lax' })
      res.redirect(303, '/')
    } catch (err) {
      res.status(400).send(`sign-in failed: ${err.message}`)
    }
  })

  app.all('/xrpc/:nsid', async (req, res) => {
    const did = req.signedCookies.sid
    if (!did) return res.status(401).json({ error: 'AuthenticationRequired' })
    try {
      const session = await client.restore(did)
      const query = req.originalUrl.includes('?') ? `?${req.originalUrl.split('?')[1]}` : ''
      const upstream = await session.fetchHandler(`/xrpc/${req.params.nsid}${query}`, {
        method: req.method,
        headers: req.headers['content-type'] ? { 'content-type': req.headers['content-type'] } : {},
        body: req.method === 'POST' ? req : undefined,
        duplex: 'half',
      })
      res.status(upstream.status)
      const type = upstream.headers.get('content-type')
      if (type) res.set('content-type', type)
      res.send(Buffer.from(await upstream.arrayBuffer()))
    } catch (err) {
      res.status(502).json({ error: 'UpstreamFailure', message: err.message })
    }
  })

  console.log(JSON.stringify({ event: 'ready', port }))
})

console.warn = () => {} // the SDK warns about its missing lock on every construction
