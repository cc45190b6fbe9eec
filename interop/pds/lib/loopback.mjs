// Keeps this process on loopback. Must run before any @atproto module loads.
//
//  * Name resolution: `localhost` and the client-metadata host alias resolve to
//    127.0.0.1; every other name fails with ENOTFOUND without a DNS query, so
//    the PDS cannot reach the network (its placeholder appview URL fails fast).
//  * TXT lookups answer only from `txtRecords` (the control server fills it, e.g. with a
//    `_lexicon.<authority>` record naming a permission set's repository); every other name
//    fails without a DNS query.
//  * Listening: a server started with only a port is bound to 127.0.0.1.
import dns from 'node:dns'
import dnsPromises from 'node:dns/promises'
import { syncBuiltinESMExports } from 'node:module'
import net from 'node:net'

export const BIND = '127.0.0.1'

/** DNS TXT records this process answers: lower-case name → list of values. */
export const txtRecords = new Map()

export function confineToLoopback(aliases) {
  const table = new Map([['localhost', BIND], ...aliases.map((a) => [a.toLowerCase(), BIND])])
  const refuse = (hostname) =>
    Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (interop/pds resolves loopback names only)`), {
      code: 'ENOTFOUND',
      errno: -3008,
      syscall: 'getaddrinfo',
      hostname,
    })
  const lookupSync = (hostname) => (net.isIP(hostname) ? hostname : table.get(String(hostname).toLowerCase()))

  const originalLookup = dns.lookup
  dns.lookup = function lookup(hostname, options, callback) {
    if (typeof options === 'function') [callback, options] = [options, {}]
    if (typeof options === 'number') options = { family: options }
    options ??= {}
    if (net.isIP(hostname)) return originalLookup.call(dns, hostname, options, callback)
    const address = lookupSync(hostname)
    if (!address) return process.nextTick(callback, refuse(hostname))
    if (options.all) return process.nextTick(callback, null, [{ address, family: 4 }])
    return process.nextTick(callback, null, address, 4)
  }
  dnsPromises.lookup = async (hostname, options = {}) => {
    if (typeof options === 'number') options = { family: options }
    const address = lookupSync(hostname)
    if (!address) throw refuse(hostname)
    const family = net.isIP(address)
    return options.all ? [{ address, family }] : { address, family }
  }
  const resolvers = ['resolve', 'resolve4', 'resolve6', 'resolveAny', 'resolveCaa', 'resolveCname', 'resolveMx',
    'resolveNaptr', 'resolveNs', 'resolvePtr', 'resolveSoa', 'resolveSrv', 'resolveTxt', 'reverse']
  const txt = (hostname) => {
    const values = txtRecords.get(String(hostname).toLowerCase().replace(/\.$/, ''))
    if (!values) throw Object.assign(refuse(hostname), { code: 'ENOTFOUND' })
    return values.map((value) => [value])
  }
  for (const name of resolvers) {
    dns[name] = (hostname, ...rest) => process.nextTick(rest.at(-1), refuse(hostname))
    dnsPromises[name] = async (hostname) => { throw refuse(hostname) }
  }
  dns.resolveTxt = (hostname, callback) => {
    try { process.nextTick(callback, null, txt(hostname)) } catch (err) { process.nextTick(callback, err) }
  }
  dnsPromises.resolveTxt = async (hostname) => txt(hostname)
  syncBuiltinESMExports()

  const originalListen = net.Server.prototype.listen
  net.Server.prototype.listen = function listen(...args) {
    const first = args[0]
    if (typeof first === 'number' && (args.length === 1 || typeof args[1] === 'function')) args.splice(1, 0, BIND)
    else if (first && typeof first === 'object' && first.port != null && !first.host) args[0] = { ...first, host: BIND }
    return originalListen.apply(this, args)
  }
}

/** Resolves with the port of a server once it listens (port 0 = any free port). */
export function listen(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, BIND, () => {
      server.off('error', reject)
      resolve(server.address().port)
    })
  })
}

/** A port that was free a moment ago (the caller retries on EADDRINUSE). */
export async function freePort() {
  const probe = net.createServer()
  const port = await listen(probe, 0)
  await new Promise((r) => probe.close(r))
  return port
}
