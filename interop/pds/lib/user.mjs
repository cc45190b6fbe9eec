// Plays the user on the official authorization page without a browser.
//
// Given the URL a client sends the browser to after PAR
// (<issuer>/oauth/authorize?client_id=…&request_uri=…), this signs in, then
// accepts (optionally only a subset of the requested scope) or rejects, and
// returns the URL the browser would be redirected to. The redirect is never
// followed: the test hands it to the client under test.
//
// It replays the requests the authorize page's own script makes to
// @atproto/oauth-provider (0.22.x):
//   GET  /oauth/authorize                      as a top-level navigation → device
//                                              cookies and the csrf-token cookie
//   POST /@atproto/oauth-provider/~api/sign-in {locale, username, password, remember}
//   POST …/~api/consent {did, scope?}          Bearer <ephemeralToken> from sign-in
//   POST …/~api/reject {}
//   GET  <url from consent/reject>             → 303 to redirect_uri?iss&state&code
// The API identifies the pending request by the Referer (the authorize URL),
// wants same-origin fetch metadata, the Origin, and X-CSRF-Token. node's fetch
// forces `sec-fetch-mode: cors`, hence node:http. The csrf cookie is `Secure`
// even on http://localhost, so cookies are kept by hand.
import http from 'node:http'
import https from 'node:https'

const USER_AGENT = 'atoauth-interop-user/1' // device sessions are bound to the UA

export class UserStepError extends Error {
  constructor(step, status, detail) {
    const text = typeof detail === 'string' ? detail.slice(0, 400) : JSON.stringify(detail)
    super(`${step} failed (${status}): ${text}`)
    this.step = step
    this.status = status
  }
}

function send(url, { method = 'GET', headers = {}, body } = {}) {
  const transport = url.startsWith('https:') ? https : http
  return new Promise((resolve, reject) => {
    const request = transport.request(url, { method, headers }, (response) => {
      const chunks = []
      response.on('data', (c) => chunks.push(c))
      response.on('end', () =>
        resolve({ status: response.statusCode, headers: response.headers, text: Buffer.concat(chunks).toString('utf8') }))
    })
    request.on('error', reject)
    request.setTimeout(30_000, () => request.destroy(new Error(`timeout: ${method} ${url}`)))
    if (body) request.write(body)
    request.end()
  })
}

class CookieJar {
  #cookies = new Map()
  take(response) {
    for (const line of [].concat(response.headers['set-cookie'] ?? [])) {
      const pair = line.split(';')[0]
      const eq = pair.indexOf('=')
      this.#cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1))
    }
  }
  get(name) { return this.#cookies.get(name) }
  header() { return [...this.#cookies].filter(([, v]) => v).map(([k, v]) => `${k}=${v}`).join('; ') }
}

function parseJson(response, step) {
  try { return JSON.parse(response.text) } catch { throw new UserStepError(step, response.status, response.text) }
}

/**
 * @param {{authorizeUrl: string, username?: string, password?: string,
 *          action?: 'accept'|'reject', scope?: string}} request
 * @returns {Promise<{redirectUrl: string, did?: string}>}
 */
export async function authorize({ authorizeUrl, username, password, action = 'accept', scope }) {
  const issuer = new URL(authorizeUrl).origin
  const jar = new CookieJar()

  const page = await send(authorizeUrl, {
    headers: { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-site': 'cross-site', 'user-agent': USER_AGENT },
  })
  jar.take(page)
  // An invalid or expired request is answered with a redirect straight back.
  if (page.status === 303 && page.headers.location) return { redirectUrl: page.headers.location }
  if (page.status !== 200 || !jar.get('csrf-token')) throw new UserStepError('authorize page', page.status, page.text)

  // The API reads the request_uri from the Referer. A non-PAR authorize URL has
  // none: the page embeds the one the provider created for it.
  let referer = authorizeUrl
  if (!new URL(authorizeUrl).searchParams.get('request_uri')) {
    const found = /urn:ietf:params:oauth:request_uri:req-[0-9a-f]+/.exec(page.text)
    if (!found) throw new UserStepError('authorize page', page.status, 'no request_uri in the page')
    const clientId = new URL(authorizeUrl).searchParams.get('client_id')
    referer = `${issuer}/oauth/authorize?${new URLSearchParams({ client_id: clientId, request_uri: found[0] })}`
  }

  const api = `${issuer}/@atproto/oauth-provider/~api`
  const apiHeaders = (extra = {}) => ({
    'content-type': 'application/json',
    origin: issuer,
    referer,
    'sec-fetch-mode': 'same-origin',
    'sec-fetch-site': 'same-origin',
    'sec-fetch-dest': 'empty',
    'x-csrf-token': jar.get('csrf-token'),
    cookie: jar.header(),
    'user-agent': USER_AGENT,
    ...extra,
  })

  let next
  let did
  if (action === 'reject') {
    const rejected = await send(`${api}/reject`, { method: 'POST', headers: apiHeaders(), body: '{}' })
    jar.take(rejected)
    const body = parseJson(rejected, 'reject')
    if (rejected.status !== 200 || !body.url) throw new UserStepError('reject', rejected.status, body)
    next = body.url
  } else {
    const signedIn = await send(`${api}/sign-in`, {
      method: 'POST',
      headers: apiHeaders(),
      body: JSON.stringify({ locale: 'en', username, password, remember: false }),
    })
    jar.take(signedIn) // sign-in rotates the device cookies
    const account = parseJson(signedIn, 'sign-in')
    if (signedIn.status !== 200 || !account.account?.did) throw new UserStepError('sign-in', signedIn.status, account)
    did = account.account.did
    const bearer = account.ephemeralToken ? { authorization: `Bearer ${account.ephemeralToken}` } : {}
    const consented = await send(`${api}/consent`, {
      method: 'POST',
      headers: apiHeaders(bearer),
      body: JSON.stringify(scope ? { did, scope } : { did }),
    })
    jar.take(consented)
    const body = parseJson(consented, 'consent')
    if (consented.status !== 200 || !body.url) throw new UserStepError('consent', consented.status, body)
    next = body.url
  }

  const final = await send(next, {
    headers: { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-site': 'same-origin', referer, cookie: jar.header(), 'user-agent': USER_AGENT },
  })
  if (final.status !== 303 || !final.headers.location) throw new UserStepError('authorize/redirect', final.status, final.text)
  return { redirectUrl: final.headers.location, did }
}
