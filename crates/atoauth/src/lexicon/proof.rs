//! Checking a record proof as `com.atproto.sync.getRecord` returns it: a CAR file whose root is
//! the signed commit, with the MST nodes on the path to the record and the record itself.
//!
//! - Every block's bytes hash to its CID (SHA-256), so no block can be swapped.
//! - The commit names the expected DID and its signature verifies with the DID's key.
//! - The MST, walked from the commit's `data`, holds the record's key and points to the record's
//!   CID; the record is that block.
//!
//! CAR framing is read with `iroh-car`, CIDs with `cid`, DAG-CBOR with `serde_ipld_dagcbor`. The
//! MST walk and the commit check are written here: the crates that implement them (atrium-repo)
//! would pull the whole generated API into the core crate.

use std::collections::HashMap;

use cid::Cid;
use ipld_core::ipld::Ipld;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::did_key::SigningKey;

/// The multihash code of SHA-256, and the codecs a repository uses.
const SHA2_256: u64 = 0x12;
const DAG_CBOR: u64 = 0x71;
const RAW: u64 = 0x55;
/// A bound on the MST's depth (a real tree is a handful of levels).
const MAX_DEPTH: usize = 64;

/// The blocks of a CAR, each checked against its CID.
pub(crate) struct Blocks {
    root: Cid,
    blocks: HashMap<Cid, Vec<u8>>,
}

impl Blocks {
    /// Reads `car` (a CARv1 with one root), checking each block's hash.
    pub(crate) async fn read(car: &[u8]) -> Result<Self, String> {
        let mut reader = iroh_car::CarReader::new(car)
            .await
            .map_err(|e| format!("not a CAR file: {e}"))?;
        let root = match reader.header().roots() {
            [root] => *root,
            roots => return Err(format!("the CAR has {} roots, not one", roots.len())),
        };
        let mut blocks = HashMap::new();
        while let Some((cid, data)) = reader
            .next_block()
            .await
            .map_err(|e| format!("a CAR block does not parse: {e}"))?
        {
            check_hash(&cid, &data)?;
            blocks.insert(cid, data);
        }
        Ok(Self { root, blocks })
    }

    fn get(&self, cid: &Cid) -> Result<&[u8], String> {
        self.blocks
            .get(cid)
            .map(Vec::as_slice)
            .ok_or_else(|| format!("the proof lacks block {cid}"))
    }

    fn decode<T: for<'de> Deserialize<'de>>(&self, cid: &Cid, what: &str) -> Result<T, String> {
        serde_ipld_dagcbor::from_slice(self.get(cid)?)
            .map_err(|e| format!("the {what} block {cid} is not valid DAG-CBOR of its kind: {e}"))
    }
}

/// A block's CID must be the SHA-256 of its bytes, with a repository codec.
fn check_hash(cid: &Cid, data: &[u8]) -> Result<(), String> {
    let hash = cid.hash();
    let ok = hash.code() == SHA2_256
        && matches!(cid.codec(), DAG_CBOR | RAW)
        && hash.digest() == Sha256::digest(data).as_slice();
    if ok {
        Ok(())
    } else {
        Err(format!("block {cid} does not hash to its CID"))
    }
}

/// A repository commit (v3); `sig` signs the DAG-CBOR encoding of the other fields.
#[derive(Deserialize)]
struct SignedCommit {
    did: String,
    version: u64,
    data: Cid,
    rev: String,
    prev: Option<Cid>,
    #[serde(with = "serde_bytes")]
    sig: Vec<u8>,
}

/// The unsigned commit, its fields in DAG-CBOR's canonical order (shorter keys first).
#[derive(Serialize)]
struct UnsignedCommit<'a> {
    did: &'a str,
    rev: &'a str,
    data: Cid,
    prev: Option<Cid>,
    version: u64,
}

/// An MST node: a left subtree, then entries whose keys share `p` bytes with the previous one.
#[derive(Deserialize)]
struct Node {
    l: Option<Cid>,
    e: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    p: usize,
    #[serde(with = "serde_bytes")]
    k: Vec<u8>,
    v: Cid,
    t: Option<Cid>,
}

/// A record proven to be in `did`'s repository under `key`: its CID and content.
pub(crate) struct ProvenRecord {
    pub(crate) cid: Cid,
    pub(crate) value: serde_json::Value,
}

/// Checks the proof in `blocks` that `did`'s repository, signed with `key`, holds `key_path`
/// (`collection/rkey`), and returns the record; `None` when the proof shows the tree has no
/// such key (a PDS answers a missing record with that proof of absence).
pub(crate) fn verify_record(
    blocks: &Blocks,
    did: &str,
    key: &SigningKey,
    key_path: &str,
) -> Result<Option<ProvenRecord>, String> {
    let commit: SignedCommit = blocks.decode(&blocks.root, "commit")?;
    if commit.did != did {
        return Err(format!("the commit is {}'s, not {did}'s", commit.did));
    }
    if commit.version != 3 {
        return Err(format!("commit version {} (expected 3)", commit.version));
    }
    let unsigned = serde_ipld_dagcbor::to_vec(&UnsignedCommit {
        did: &commit.did,
        rev: &commit.rev,
        data: commit.data,
        prev: commit.prev,
        version: commit.version,
    })
    .map_err(|e| format!("cannot re-encode the commit: {e}"))?;
    if !key.verifies(&unsigned, &commit.sig) {
        return Err("the commit signature does not verify with the DID's signing key".to_owned());
    }
    let Some(cid) = find(blocks, commit.data, key_path.as_bytes())? else {
        return Ok(None);
    };
    let ipld: Ipld = blocks.decode(&cid, "record")?;
    Ok(Some(ProvenRecord {
        cid,
        value: to_json(ipld),
    }))
}

/// Walks the MST from `root` to `key`: the CID it maps to, or `None` when the tree proves it
/// absent (the walk ends where the key would be). A missing node on the way is an error.
fn find(blocks: &Blocks, root: Cid, key: &[u8]) -> Result<Option<Cid>, String> {
    let mut node_cid = root;
    for _ in 0..MAX_DEPTH {
        let node: Node = blocks.decode(&node_cid, "MST node")?;
        let mut previous: Vec<u8> = Vec::new();
        // The subtree left of the current entry: `l` before the first, then each `t`.
        let mut left = node.l;
        let mut next = None;
        for entry in &node.e {
            let shared = previous
                .get(..entry.p)
                .ok_or("an MST entry's prefix is too long")?;
            let mut full = shared.to_vec();
            full.extend_from_slice(&entry.k);
            match key.cmp(full.as_slice()) {
                std::cmp::Ordering::Equal => return Ok(Some(entry.v)),
                std::cmp::Ordering::Less => {
                    next = Some(left);
                    break;
                }
                std::cmp::Ordering::Greater => {}
            }
            if full <= previous && !previous.is_empty() {
                return Err("MST entries are out of order".to_owned());
            }
            previous = full;
            left = entry.t;
        }
        match next.unwrap_or(left) {
            Some(child) => node_cid = child,
            None => return Ok(None),
        }
    }
    Err("the MST is deeper than any real repository".to_owned())
}

/// A record as JSON, the way atproto writes DAG-CBOR data in JSON: links as `{"$link"}`,
/// bytes as `{"$bytes"}` (base64, no padding).
fn to_json(ipld: Ipld) -> serde_json::Value {
    use base64ct::Encoding;
    use serde_json::Value;
    match ipld {
        Ipld::Null => Value::Null,
        Ipld::Bool(b) => Value::Bool(b),
        Ipld::Integer(i) => {
            i64::try_from(i).map_or_else(|_| Value::String(i.to_string()), Value::from)
        }
        Ipld::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Ipld::String(s) => Value::String(s),
        Ipld::Bytes(b) => {
            serde_json::json!({"$bytes": base64ct::Base64Unpadded::encode_string(&b)})
        }
        Ipld::List(list) => Value::Array(list.into_iter().map(to_json).collect()),
        Ipld::Map(map) => Value::Object(map.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
        Ipld::Link(cid) => serde_json::json!({"$link": cid.to_string()}),
    }
}
