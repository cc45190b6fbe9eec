//! A signed repository proof made by hand, as `com.atproto.sync.getRecord` returns it (a CAR
//! with the commit, the MST path and the record), and the ways a hostile PDS could bend one.

use cid::Cid;
use k256::ecdsa::signature::Signer;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How to bend a proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// An honest proof.
    None,
    /// The commit signature is another key's.
    BadSignature,
    /// The signature's malleable high-S twin (valid ECDSA, refused by atproto).
    HighS,
    /// The record sits in the tree under this key instead of the asked one.
    KeyPath(String),
    /// The record block's bytes are replaced, its CID kept.
    SwappedRecordBlock,
    /// The commit names this DID instead of the repository's.
    CommitDid(String),
}

/// A repository key and DID that sign proofs.
#[derive(Debug)]
pub struct TestRepo {
    did: String,
    key: k256::ecdsa::SigningKey,
}

#[derive(Serialize)]
struct Entry {
    p: u64,
    #[serde(with = "serde_bytes")]
    k: Vec<u8>,
    v: Cid,
    t: Option<Cid>,
}

#[derive(Serialize)]
struct Node {
    l: Option<Cid>,
    e: Vec<Entry>,
}

#[derive(Serialize)]
struct Unsigned<'a> {
    did: &'a str,
    rev: &'a str,
    data: Cid,
    prev: Option<Cid>,
    version: u64,
}

#[derive(Serialize)]
struct Signed<'a> {
    did: &'a str,
    rev: &'a str,
    data: Cid,
    prev: Option<Cid>,
    version: u64,
    #[serde(with = "serde_bytes")]
    sig: Vec<u8>,
}

#[derive(Serialize)]
struct Header {
    roots: Vec<Cid>,
    version: u64,
}

fn random_key() -> k256::ecdsa::SigningKey {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("OS randomness");
        if let Ok(key) = k256::ecdsa::SigningKey::from_slice(&bytes) {
            return key;
        }
    }
}

/// The CIDv1 (DAG-CBOR, SHA-256) of `bytes`.
fn cid_of(bytes: &[u8]) -> Cid {
    let digest = Sha256::digest(bytes);
    let hash = cid::multihash::Multihash::<64>::wrap(0x12, &digest).expect("a SHA-256 multihash");
    Cid::new_v1(0x71, hash)
}

fn cbor(value: &impl Serialize) -> Vec<u8> {
    serde_ipld_dagcbor::to_vec(value).expect("DAG-CBOR")
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

impl TestRepo {
    /// A repository for `did` with a fresh secp256k1 key.
    pub fn new(did: &str) -> Self {
        Self {
            did: did.to_owned(),
            key: random_key(),
        }
    }

    /// The key as a DID document writes it (`Multikey`, base58btc, multicodec secp256k1-pub).
    pub fn public_key_multibase(&self) -> String {
        let point = self.key.verifying_key().to_sec1_point(true);
        let mut bytes = vec![0xe7, 0x01];
        bytes.extend_from_slice(point.as_bytes());
        format!("z{}", bs58::encode(bytes).into_string())
    }

    /// A DID document with this key and `pds` as the PDS.
    pub fn did_document(&self, pds: &str) -> serde_json::Value {
        serde_json::json!({
            "id": self.did,
            "verificationMethod": [{
                "id": format!("{}#atproto", self.did),
                "type": "Multikey",
                "controller": self.did,
                "publicKeyMultibase": self.public_key_multibase(),
            }],
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}],
        })
    }

    /// The CAR proving `record` at `key_path`, bent by `tamper`.
    pub fn proof(&self, key_path: &str, record: &serde_json::Value, tamper: &Tamper) -> Vec<u8> {
        let record_bytes = cbor(record);
        let record_cid = cid_of(&record_bytes);
        let stored_key = match tamper {
            Tamper::KeyPath(other) => other.clone(),
            _ => key_path.to_owned(),
        };
        let node = cbor(&Node {
            l: None,
            e: vec![Entry {
                p: 0,
                k: stored_key.into_bytes(),
                v: record_cid,
                t: None,
            }],
        });
        let node_cid = cid_of(&node);
        let did = match tamper {
            Tamper::CommitDid(other) => other.clone(),
            _ => self.did.clone(),
        };
        let rev = "3l4abcdefgh22";
        let unsigned = cbor(&Unsigned {
            did: &did,
            rev,
            data: node_cid,
            prev: None,
            version: 3,
        });
        let signer = match tamper {
            Tamper::BadSignature => random_key(),
            _ => self.key.clone(),
        };
        let signature: k256::ecdsa::Signature = signer.sign(&unsigned);
        let signature = match tamper {
            Tamper::HighS => {
                let (r, s) = signature.split_scalars();
                k256::ecdsa::Signature::from_scalars(r, -s).expect("the high-S twin")
            }
            _ => signature,
        };
        let commit = cbor(&Signed {
            did: &did,
            rev,
            data: node_cid,
            prev: None,
            version: 3,
            sig: signature.to_bytes().to_vec(),
        });
        let commit_cid = cid_of(&commit);
        let record_block = match tamper {
            Tamper::SwappedRecordBlock => {
                cbor(&serde_json::json!({"id": "something.else.entirely"}))
            }
            _ => record_bytes,
        };
        let header = cbor(&Header {
            roots: vec![commit_cid],
            version: 1,
        });
        let mut car = Vec::new();
        varint(header.len(), &mut car);
        car.extend_from_slice(&header);
        for (cid, data) in [
            (commit_cid, commit),
            (node_cid, node),
            (record_cid, record_block),
        ] {
            let cid_bytes = cid.to_bytes();
            varint(cid_bytes.len() + data.len(), &mut car);
            car.extend_from_slice(&cid_bytes);
            car.extend_from_slice(&data);
        }
        car
    }
}
