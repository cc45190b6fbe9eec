// The official PDS's own scope code (@atproto/oauth-scopes, the copy the PDS runs) as an oracle
// for atoauth's differential tests. Reads one JSON request on stdin, writes one JSON answer:
//   { "tokens": ["repo:…", …], "checks": [{ "grant": "atproto …", "resource": "repo", "options": {…} }, …] }
//   → { "tokens": [{ "kept": bool, "normal": string|null, "error": string|null }, …], "checks": [bool, …] }
// "kept" is what the PDS's request manager does with a requested token (filter(isAtprotoOauthScope));
// "error" is set when that call throws (the PDS then answers the whole PAR with HTTP 500).
import {
  isAtprotoOauthScope,
  normalizeAtprotoOauthScopeValue,
  ScopePermissionsTransition,
} from '@atproto/oauth-scopes'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const tokens = request.tokens.map((token) => {
  try {
    return { kept: isAtprotoOauthScope(token), normal: normalizeAtprotoOauthScopeValue(token), error: null }
  } catch (err) {
    return { kept: false, normal: null, error: String(err) }
  }
})

const method = {
  repo: 'allowsRepo',
  rpc: 'allowsRpc',
  blob: 'allowsBlob',
  account: 'allowsAccount',
  identity: 'allowsIdentity',
}
const checks = request.checks.map(({ grant, resource, options }) =>
  new ScopePermissionsTransition(grant)[method[resource]](options),
)

process.stdout.write(JSON.stringify({ tokens, checks }))
