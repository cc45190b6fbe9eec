//! The parts of a DID document atproto uses (identity spec F).

use serde::Deserialize;
use url::Url;

use crate::http::TargetPolicy;
use crate::syntax::{Did, Handle};

/// A DID document, as far as atproto reads it. Unknown fields are ignored.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    /// The DID the document describes.
    pub id: String,
    /// URIs the subject is also known as; `at://<handle>` claims a handle.
    #[serde(default)]
    pub also_known_as: Vec<String>,
    /// Keys, including legacy forms.
    #[serde(default)]
    pub verification_method: Vec<VerificationMethod>,
    /// Services, among them the PDS.
    #[serde(default)]
    pub service: Vec<Service>,
}

/// A `verificationMethod` entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    /// `#atproto` or `did:…#atproto` (both forms occur).
    pub id: String,
    /// `Multikey`, or a legacy `EcdsaSecp256r1VerificationKey2019` /
    /// `EcdsaSecp256k1VerificationKey2019`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The controlling DID.
    #[serde(default)]
    pub controller: String,
    /// The key, multibase-encoded.
    #[serde(default)]
    pub public_key_multibase: Option<String>,
}

/// A `service` entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// `#atproto_pds` or `did:…#atproto_pds`.
    pub id: String,
    /// `AtprotoPersonalDataServer` for a PDS.
    #[serde(rename = "type")]
    pub kind: String,
    /// Usually a URL string; other shapes are kept but never used.
    pub service_endpoint: serde_json::Value,
}

impl DidDocument {
    /// The handle the document claims (F.26): the first `alsoKnownAs` entry of the form
    /// `at://<handle>` with a syntactically valid handle, lowercased. It is a claim only: see
    /// bidirectional verification.
    #[must_use]
    pub fn claimed_handle(&self) -> Option<Handle> {
        self.also_known_as.iter().find_map(|uri| {
            let rest = uri.strip_prefix("at://")?;
            Handle::new(rest).ok()
        })
    }

    /// The atproto signing key entry (F.28): `#atproto`, controlled by the DID itself.
    #[must_use]
    pub fn signing_key(&self) -> Option<&VerificationMethod> {
        self.verification_method.iter().find(|method| {
            fragment_is(&method.id, &self.id, "atproto")
                && method.controller == self.id
                && matches!(
                    method.kind.as_str(),
                    "Multikey"
                        | "EcdsaSecp256r1VerificationKey2019"
                        | "EcdsaSecp256k1VerificationKey2019"
                )
                && method.public_key_multibase.is_some()
        })
    }

    /// The PDS URL (F.27): the first service whose id ends in `#atproto_pds` and whose type is
    /// `AtprotoPersonalDataServer`, with an endpoint that is a bare origin (scheme, host, port).
    /// `http` is accepted only under an insecure target policy.
    ///
    /// # Errors
    /// A description of why no entry qualifies.
    pub fn pds_endpoint(&self, policy: TargetPolicy) -> Result<Url, String> {
        let entry = self
            .service
            .iter()
            .find(|s| {
                fragment_is(&s.id, &self.id, "atproto_pds") && s.kind == "AtprotoPersonalDataServer"
            })
            .ok_or_else(|| {
                "no #atproto_pds service of type AtprotoPersonalDataServer".to_owned()
            })?;
        let endpoint = entry
            .service_endpoint
            .as_str()
            .ok_or_else(|| "the #atproto_pds endpoint is not a string".to_owned())?;
        let url =
            Url::parse(endpoint).map_err(|e| format!("the PDS endpoint is not a URL: {e}"))?;
        if !policy.allows_scheme(url.scheme()) {
            return Err(format!("the PDS endpoint {endpoint} is not https"));
        }
        let bare = url.host().is_some()
            && url.username().is_empty()
            && url.password().is_none()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && !endpoint.trim_end_matches('/').ends_with('?');
        if !bare {
            return Err(format!("the PDS endpoint {endpoint} is not a bare origin"));
        }
        Ok(url)
    }

    /// Checks that the document describes `did` (E.24).
    pub(crate) fn describes(&self, did: &Did) -> bool {
        self.id == did.as_str()
    }
}

/// `id` is `#<fragment>` or `<did>#<fragment>` (F.29).
fn fragment_is(id: &str, did: &str, fragment: &str) -> bool {
    match id.split_once('#') {
        Some((prefix, f)) => f == fragment && (prefix.is_empty() || prefix == did),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(value: serde_json::Value) -> DidDocument {
        serde_json::from_value(value).unwrap()
    }

    fn alice() -> serde_json::Value {
        serde_json::json!({
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
            "alsoKnownAs": ["https://example.com/alice", "at://Alice.Example.com", "at://other.example.com"],
            "verificationMethod": [{
                "id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto",
                "type": "Multikey",
                "controller": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
                "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
            }],
            "service": [
                {"id": "#atproto_labeler", "type": "AtprotoLabeler", "serviceEndpoint": "https://labeler.example.com"},
                {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://pds.example.com"}
            ]
        })
    }

    #[test]
    fn f26_first_at_uri_is_the_claimed_handle_lowercased() {
        let doc = document(alice());
        assert_eq!(doc.claimed_handle().unwrap().as_str(), "alice.example.com");
        let mut value = alice();
        value["alsoKnownAs"] = serde_json::json!([
            "at://not a handle",
            "at://b.example.com/path",
            "at://c.example.com"
        ]);
        // Entries with something after the handle or bad syntax are skipped.
        assert_eq!(
            document(value).claimed_handle().unwrap().as_str(),
            "c.example.com"
        );
    }

    #[test]
    fn f27_pds_endpoint_rules() {
        let doc = document(alice());
        assert_eq!(
            doc.pds_endpoint(TargetPolicy::PublicHttpsOnly)
                .unwrap()
                .as_str(),
            "https://pds.example.com/"
        );
        for bad in [
            "http://pds.example.com",
            "https://pds.example.com/xrpc",
            "https://user@pds.example.com",
            "https://pds.example.com?x=1",
            "not a url",
        ] {
            let mut value = alice();
            value["service"][1]["serviceEndpoint"] = bad.into();
            assert!(
                document(value)
                    .pds_endpoint(TargetPolicy::PublicHttpsOnly)
                    .is_err(),
                "{bad}"
            );
        }
        let mut value = alice();
        value["service"][1]["type"] = "Something".into();
        assert!(
            document(value)
                .pds_endpoint(TargetPolicy::PublicHttpsOnly)
                .is_err()
        );
        let mut value = alice();
        value["service"][1]["serviceEndpoint"] = "http://localhost:2583".into();
        let doc = document(value);
        assert!(doc.pds_endpoint(TargetPolicy::PublicHttpsOnly).is_err());
        assert!(
            doc.pds_endpoint(TargetPolicy::InsecureAllowLoopbackHttp)
                .is_ok()
        );
    }

    #[test]
    fn f29_absolute_ids_and_legacy_keys() {
        let mut value = alice();
        value["service"][1]["id"] = "did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto_pds".into();
        value["verificationMethod"][0]["id"] = "#atproto".into();
        value["verificationMethod"][0]["type"] = "EcdsaSecp256k1VerificationKey2019".into();
        let doc = document(value);
        assert!(doc.pds_endpoint(TargetPolicy::PublicHttpsOnly).is_ok());
        assert!(doc.signing_key().is_some());
        let mut value = alice();
        value["service"][1]["id"] = "did:plc:someoneelse#atproto_pds".into();
        assert!(
            document(value)
                .pds_endpoint(TargetPolicy::PublicHttpsOnly)
                .is_err()
        );
    }
}
