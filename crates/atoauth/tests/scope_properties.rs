//! Property tests and a bounded fuzz run of the scope parser (permission spec §2, §6).
// Test code: helpers outside #[test] functions may unwrap too (clippy.toml covers only those).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use atoauth::scope::{Permission, Scope};
use proptest::prelude::*;

fn nsid() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9]{0,5}",
        "[a-z][a-z0-9-]{0,4}[a-z0-9]",
        "[a-zA-Z][a-zA-Z0-9]{0,6}",
    )
        .prop_map(|(a, b, c)| format!("{a}.{b}.{c}"))
}

fn service() -> impl Strategy<Value = String> {
    ("[a-z]{1,8}", "[a-z_]{1,8}")
        .prop_map(|(host, id)| format!("did:web:{host}.example.com%23{id}"))
}

fn nsids_or_star() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        1 => Just(vec!["*".to_owned()]),
        4 => prop::collection::vec(nsid(), 1..4),
    ]
}

/// Tokens in every spelling the grammar allows: positional or named, repeated values, defaults
/// written out or not.
fn token() -> impl Strategy<Value = String> {
    let actions = prop::collection::vec(
        prop::sample::select(vec!["create", "update", "delete"]),
        0..4,
    );
    let mimes = prop::collection::vec(
        prop::sample::select(vec![
            "image/png",
            "image/*",
            "video/mp4",
            "*/*",
            "text/html",
            "IMAGE/JPEG",
        ]),
        1..4,
    );
    prop_oneof![
        Just("atproto".to_owned()),
        Just("transition:generic".to_owned()),
        Just("transition:email".to_owned()),
        (nsids_or_star(), actions).prop_map(|(collections, actions)| {
            let mut query: Vec<String> = actions.iter().map(|a| format!("action={a}")).collect();
            if collections.len() == 1 && query.len().is_multiple_of(2) {
                format!(
                    "repo:{}{}",
                    collections[0],
                    if query.is_empty() {
                        String::new()
                    } else {
                        format!("?{}", query.join("&"))
                    }
                )
            } else {
                query.extend(collections.iter().map(|c| format!("collection={c}")));
                format!("repo?{}", query.join("&"))
            }
        }),
        (prop::collection::vec(nsid(), 1..3), service()).prop_map(|(methods, aud)| {
            let lxm: Vec<String> = methods.iter().map(|m| format!("lxm={m}")).collect();
            format!("rpc?{}&aud={aud}", lxm.join("&"))
        }),
        (nsid(), any::<bool>()).prop_map(|(m, star)| format!(
            "rpc:{m}?aud={}",
            if star {
                "*"
            } else {
                "did:web:a.example.com%23svc"
            }
        )),
        mimes.prop_map(|m| {
            if m.len() == 1 {
                format!("blob:{}", m[0])
            } else {
                format!(
                    "blob?{}",
                    m.iter()
                        .map(|v| format!("accept={v}"))
                        .collect::<Vec<_>>()
                        .join("&")
                )
            }
        }),
        prop::sample::select(vec![
            "account:email",
            "account:email?action=read",
            "account:email?action=manage",
            "account?attr=repo&action=manage",
            "identity:handle",
            "identity:*",
            "identity?attr=*",
        ])
        .prop_map(str::to_owned),
        (nsid(), prop::option::of(service())).prop_map(|(n, aud)| match aud {
            Some(aud) => format!("include:{n}?aud={aud}"),
            None => format!("include?nsid={n}"),
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn normalisation_is_idempotent_and_preserves_meaning(token in token()) {
        let parsed = Permission::parse(&token).unwrap();
        let canonical = parsed.to_string();
        let reparsed = Permission::parse(&canonical).unwrap();
        prop_assert_eq!(&reparsed, &parsed, "{} -> {}", token, canonical);
        prop_assert_eq!(reparsed.to_string(), canonical);
    }

    #[test]
    fn whole_scopes_normalise_idempotently(tokens in prop::collection::vec(token(), 0..6)) {
        let scope = Scope::parse(&tokens.join(" "));
        let canonical = scope.to_string();
        let again = Scope::parse(&canonical);
        prop_assert_eq!(again.permissions(), scope.permissions());
        prop_assert_eq!(again.to_string(), canonical);
    }
}

proptest! {
    // A bounded fuzz run in the normal test profile: arbitrary input never panics, and whatever
    // parses has a canonical form that parses back to the same permission.
    #![proptest_config(ProptestConfig { cases: 20_000, .. ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics(input in "[ -~]{0,64}|.{0,32}") {
        let scope = Scope::parse(&input);
        let _ = scope.to_string();
        if let Ok(permission) = Permission::parse(&input) {
            let canonical = permission.to_string();
            prop_assert_eq!(Permission::parse(&canonical).unwrap(), permission);
        }
    }

    #[test]
    fn mutated_valid_tokens_never_panic(base in token(), position in any::<prop::sample::Index>(), byte in 0x20u8..0x7f) {
        let mut bytes = base.into_bytes();
        let i = position.index(bytes.len());
        bytes[i] = byte;
        let input = String::from_utf8(bytes).unwrap();
        if let Ok(permission) = Permission::parse(&input) {
            prop_assert_eq!(Permission::parse(&permission.to_string()).unwrap(), permission);
        }
    }
}
