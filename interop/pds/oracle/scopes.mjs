// The official PDS's own scope code (@atproto/oauth-scopes, the copy the PDS runs) as an oracle
// for atoauth's differential tests. Reads one JSON request on stdin, writes one JSON answer:
//   { "tokens": ["repo:…", …],
//     "checks": [{ "grant": "atproto …", "resource": "repo", "options": {…} }, …],
//     "sets": [{ "token": "include:…", "document": {lexicon document} }, …] }
//   → { "tokens": [{ "kept": bool, "normal": string|null, "meaning": {resource, …fields}|null,
//                    "error": string|null }, …],
//       "checks": [bool, …],
//       "sets": [{ "valid": bool, "scopes": [string]|null }, …] }
// "kept" is what the PDS's request manager does with a requested token (filter(isAtprotoOauthScope));
// "error" is set when that call throws (the PDS then answers the whole PAR with HTTP 500).
// A set is read as the PDS's lexicon manager reads it: the document validated by the lexicon
// resolver (lexiconDocumentSchema; an invalid one fails the authorization), then the include
// token's IncludeScope.toScopes(defs.main) (the scopes that replace it in the token).
import { lexiconDocumentSchema } from '@atproto/lex-document'
import {
  AccountPermission,
  BlobPermission,
  IdentityPermission,
  IncludeScope,
  isAtprotoOauthScope,
  normalizeAtprotoOauthScopeValue,
  RepoPermission,
  RpcPermission,
  ScopePermissionsTransition,
} from '@atproto/oauth-scopes'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'))

// What the token means to the PDS: the parsed permission's fields, as its classes hold them.
const parsers = { account: AccountPermission, blob: BlobPermission, identity: IdentityPermission,
  include: IncludeScope, repo: RepoPermission, rpc: RpcPermission }
function meaning(token) {
  for (const [resource, Parser] of Object.entries(parsers)) {
    const parsed = Parser.fromString(token)
    if (parsed) return { resource, ...parsed }
  }
  return null
}

const tokens = (request.tokens ?? []).map((token) => {
  try {
    return {
      kept: isAtprotoOauthScope(token),
      normal: normalizeAtprotoOauthScopeValue(token),
      meaning: meaning(token),
      error: null,
    }
  } catch (err) {
    return { kept: false, normal: null, meaning: null, error: String(err) }
  }
})

const method = {
  repo: 'allowsRepo',
  rpc: 'allowsRpc',
  blob: 'allowsBlob',
  account: 'allowsAccount',
  identity: 'allowsIdentity',
}
const checks = (request.checks ?? []).map(({ grant, resource, options }) => {
  try {
    return new ScopePermissionsTransition(grant)[method[resource]](options)
  } catch {
    // The PDS answers such a request with HTTP 500: nothing is allowed.
    return false
  }
})

const sets = (request.sets ?? []).map(({ token, document }) => {
  const validated = lexiconDocumentSchema.safeParse(document)
  const main = validated.success ? validated.value.defs.main : undefined
  if (!main || main.type !== 'permission-set') return { valid: false, scopes: null }
  const include = IncludeScope.fromString(token)
  return { valid: true, scopes: include ? include.toScopes(main) : null }
})

process.stdout.write(JSON.stringify({ tokens, checks, sets }))
