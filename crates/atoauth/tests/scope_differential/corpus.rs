//! The seeded generator of scope tokens: every resource in positional and named forms, values
//! from pools of good and bad ones, spelled with percent-encodings of any character (upper or
//! lower hex), case changes, repeated and empty parameters, and random edits with the
//! characters the grammar cares about.

/// The seed of a run: `ATOAUTH_DIFFERENTIAL_SEED` (decimal or `0x…`) or a fixed default, so a
/// failure seen once can be replayed.
pub(crate) fn seed(default: u64) -> u64 {
    let Ok(text) = std::env::var("ATOAUTH_DIFFERENTIAL_SEED") else {
        return default;
    };
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("ATOAUTH_DIFFERENTIAL_SEED={text:?} is not a number"))
}

/// SplitMix64: a small, seeded, reproducible generator.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A pool of values: the first `.1` are valid, the rest are not.
pub(crate) type Pool = (&'static [&'static str], usize);

pub(crate) const NSIDS: Pool = (
    &[
        "app.bsky.feed.post",
        "app.bsky.feed.like",
        "app.bsky.actor.getProfile",
        "com.example.foo",
        "com.example.fooBar",
        "com.example.FooBar",
        "App.Bsky.feed.post",
        "com.Example.fooBar",
        "app.example.authFull",
        "com.example.foo2",
        "com.ex-ample.foo",
        "app.0bsky.post",
        "a.b.c",
        "a1.b2.c3",
        "chat.bsky.convo.sendMessage",
        "com.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.foo",
        "com.example.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "*",
        // Invalid from here.
        "app.bsky.*",
        "com.example",
        "app.bsky.feed.post.",
        "app.bsky.feed.3post",
        "app..bsky.post",
        "-app.bsky.post",
        "0com.example.foo",
        "com.-example.foo",
        "com.example-.foo",
        "com.example.foo-bar",
        "com.example.foo_bar",
        "com.example.f%C3%B3o",
        "com.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.foo",
        "com.example.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ".com.example.foo",
        "*.bsky.post",
        "com.example.*",
        "**",
    ],
    18,
);

pub(crate) const AUDIENCES: Pool = (
    &[
        "*",
        "did:web:api.bsky.app#bsky_appview",
        "did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto_labeler",
        "did:web:localhost%3A8443#svc",
        "did:web:localhost#svc",
        "did:web:API.bsky.app#bsky_appview",
        "did:web:exa_mple.com#svc",
        "did:web:1.2.3.4#svc",
        "did:web:x.com#a:b@c/d?e",
        "did:web:x.com#a!$'()*+,;=~",
        "did:web:x.com#%41",
        "did:web:x.com#a&b=c",
        // Invalid from here.
        "did:web:example.com%3A8443#svc",
        "did:web:api.bsky.app",
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme#svc",
        "did:plc:111#x",
        "did:plc:EWVI7NXZYOUN6ZHXRHS64OIZ#x",
        "did:web:x.com#",
        "did:web:x.com#a#b",
        "did:web:x.com#a b",
        "did:web:x.com#%4",
        "did:web:x.com:path#svc",
        "did:web:localhost%3a8443#svc",
        "did:web:1.2.3.999#svc",
        "did:web:%5B::1%5D#svc",
        "did:foo:bar#x",
        "DID:web:x.com#svc",
        "#svc",
    ],
    12,
);

pub(crate) const MIMES: Pool = (
    &[
        "*/*",
        "image/*",
        "image/png",
        "IMAGE/PNG",
        "Image/*",
        "video/mp4",
        "text/plain",
        "application/vnd.api+json",
        "application/x-www-form-urlencoded",
        "**/*",
        "a/b.c;d=e",
        // Invalid from here.
        "*/png",
        "*/**",
        "image",
        "image/",
        "/png",
        "image/png/x",
        "a/b*",
        "image/p*g",
        "image/ png",
    ],
    11,
);

pub(crate) const REPO_ACTIONS: Pool = (
    &[
        "create", "update", "delete", "read", "Create", "*", "CREATE", "manage",
    ],
    3,
);
pub(crate) const ACCOUNT_ATTRS: Pool = (&["email", "repo", "status", "phone", "*", "Email"], 3);
pub(crate) const ACCOUNT_ACTIONS: Pool = (&["read", "manage", "write", "Read", "*"], 2);
pub(crate) const IDENTITY_ATTRS: Pool = (&["handle", "*", "email", "Handle"], 2);

/// Percent-encodes each byte of `value` for which `which` holds, with upper- or lower-case hex.
fn encode_where(value: &str, lower: bool, mut which: impl FnMut(u8) -> bool) -> String {
    value
        .bytes()
        .map(|b| match (which(b), lower) {
            (false, _) => (b as char).to_string(),
            (true, false) => format!("%{b:02X}"),
            (true, true) => format!("%{b:02x}"),
        })
        .collect()
}

/// A value as it may be written in a token: raw, or with some, all special, or all characters
/// percent-encoded; `#` and `&` and `=` and `?` inside values sometimes left raw.
pub(crate) fn spell(rng: &mut Rng, value: &str) -> String {
    let lower = rng.chance(30);
    match rng.below(12) {
        0..=5 => value.to_owned(),
        6 => encode_where(value, lower, |b| b"#%+&=?: ".contains(&b)),
        7 => encode_where(value, lower, |b| !b.is_ascii_alphanumeric()),
        8 => encode_where(value, lower, |_| true),
        9 => {
            // A random subset of the characters.
            let mut picks = Rng(rng.next());
            encode_where(value, lower, |_| picks.chance(35))
        }
        10 => encode_where(value, lower, |b| b"#:/*".contains(&b)),
        _ => encode_where(value, lower, |b| b.is_ascii_alphabetic() && b % 3 == 0),
    }
}

/// `text` with some letters' case flipped (names are case-sensitive).
fn recase(rng: &mut Rng, text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() && rng.chance(40) {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// `resource` with its positional parameter `name` written positionally, by name, both, or not
/// at all, plus other named parameters, with repeated, empty and unknown parameters now and then.
pub(crate) fn token(
    rng: &mut Rng,
    resource: &str,
    name: &str,
    values: &[String],
    rest: &[(&str, String)],
) -> String {
    let resource = if rng.chance(3) {
        recase(rng, resource)
    } else {
        resource.to_owned()
    };
    let spelled_name = |rng: &mut Rng| {
        if rng.chance(3) {
            recase(rng, name)
        } else if rng.chance(3) {
            spell(rng, name)
        } else {
            name.to_owned()
        }
    };
    let mut params: Vec<String> = Vec::new();
    let mut head = resource.clone();
    match (rng.below(20), values) {
        (_, []) => {}
        (0..=10, [one]) => head = format!("{resource}:{one}"),
        (11, [first, others @ ..]) => {
            head = format!("{resource}:{first}");
            for value in others {
                params.push(format!("{}={value}", spelled_name(rng)));
            }
        }
        (12, _) => head = format!("{resource}:"),
        (13, [one]) => {
            head = format!("{resource}:{one}");
            params.push(format!("{}={one}", spelled_name(rng)));
        }
        _ => {
            for value in values {
                params.push(format!("{}={value}", spelled_name(rng)));
            }
        }
    }
    params.extend(rest.iter().map(|(n, v)| format!("{n}={v}")));
    if rng.chance(4) {
        let (extra, value) = (
            rng.pick(&[
                "extra", "Action", "aud", "lxm", "", "nsid", "attr", "accept",
            ]),
            rng.pick(&["x", "", "*", "create"]),
        );
        params.push(format!("{extra}={value}"));
    }
    if rng.chance(4) {
        // A parameter written without `=`, or an empty one between separators.
        let at = rng.below(params.len() + 1);
        let blank = rng.pick(&["", "action", "aud", "="]).to_owned();
        params.insert(at, blank);
    }
    if rng.chance(4) && !params.is_empty() {
        // The same parameter twice.
        let again = params[rng.below(params.len())].clone();
        params.push(again);
    }
    if rng.chance(20) {
        params.reverse();
    }
    let mut out = match (params.is_empty(), rng.chance(5)) {
        (true, true) => format!("{head}?"),
        (true, false) => head,
        (false, _) => format!("{head}?{}", params.join("&")),
    };
    if rng.chance(3) {
        out.push(if rng.chance(50) { '&' } else { '?' });
    }
    out
}

/// A value from `pool` (its good entries are picked most of the time), spelled in one of the
/// ways [`spell`] knows.
pub(crate) fn spelled(rng: &mut Rng, (pool, good): Pool) -> String {
    let value = if rng.chance(85) {
        pool[rng.below(good)]
    } else {
        pool[good + rng.below(pool.len() - good)]
    };
    let value = if rng.chance(4) {
        recase(rng, value)
    } else {
        value.to_owned()
    };
    spell(rng, &value)
}

pub(crate) fn some(rng: &mut Rng, pool: Pool, max: usize) -> Vec<String> {
    let n = rng.below(max) + 1;
    (0..n).map(|_| spelled(rng, pool)).collect()
}

fn repeat_named(
    rng: &mut Rng,
    name: &'static str,
    pool: Pool,
    counts: &[usize],
) -> Vec<(&'static str, String)> {
    let n = counts[rng.below(counts.len())];
    (0..n).map(|_| (name, spelled(rng, pool))).collect()
}

pub(crate) fn grammar_token(rng: &mut Rng) -> String {
    match rng.below(17) {
        0 => rng
            .pick(&[
                "atproto",
                "transition:generic",
                "transition:chat.bsky",
                "transition:email",
                "transition:foo",
                "transition:Generic",
                "Transition:generic",
                "transition:generic?",
                "transition?generic",
                "atproto:x",
                "atproto?",
                "Atproto",
                "Repo:a.b.c",
                "foo:bar",
                "include",
                "rpc",
                "blob",
            ])
            .to_owned(),
        1..=3 => {
            let collections = some(rng, NSIDS, 3);
            let actions = repeat_named(rng, "action", REPO_ACTIONS, &[0, 0, 1, 2, 3]);
            token(rng, "repo", "collection", &collections, &actions)
        }
        4..=6 => {
            let methods = some(rng, NSIDS, 3);
            let aud = repeat_named(rng, "aud", AUDIENCES, &[1, 1, 1, 1, 0, 2]);
            token(rng, "rpc", "lxm", &methods, &aud)
        }
        7..=9 => {
            let accept = some(rng, MIMES, 3);
            token(rng, "blob", "accept", &accept, &[])
        }
        10 | 11 => {
            let max = if rng.chance(10) { 2 } else { 1 };
            let attr = some(rng, ACCOUNT_ATTRS, max);
            let actions = repeat_named(rng, "action", ACCOUNT_ACTIONS, &[0, 1, 1, 2]);
            token(rng, "account", "attr", &attr, &actions)
        }
        12 => {
            let max = if rng.chance(10) { 2 } else { 1 };
            let attr = some(rng, IDENTITY_ATTRS, max);
            let actions = repeat_named(rng, "action", ACCOUNT_ACTIONS, &[0, 0, 0, 1]);
            token(rng, "identity", "attr", &attr, &actions)
        }
        _ => {
            let max = if rng.chance(10) { 2 } else { 1 };
            let nsid = some(rng, NSIDS, max);
            let aud = repeat_named(rng, "aud", AUDIENCES, &[0, 1, 1, 2]);
            token(rng, "include", "nsid", &nsid, &aud)
        }
    }
}

/// One to three random edits with the characters the grammar cares about.
pub(crate) fn mutate(rng: &mut Rng, token: &str) -> String {
    const CHARS: &[&str] = &[
        "%", "%2", "%25", "%3A", "%3a", "%3F", "%23", "%26", "%3D", "%2B", "%20", "%E0%A4%A",
        "%FF", "%C3%A9", ":", "?", "&", "=", "#", "+", "*", "/", ".", "\"", "\\", "é", "A", "-",
        ",", ";", "@", "!", "~", "'", "(", ")", "[", "]", "$", "^", "`", "{", "|", "}",
    ];
    let mut chars: Vec<String> = token.chars().map(String::from).collect();
    for _ in 0..=rng.below(3) {
        let at = rng.below(chars.len() + 1);
        match rng.below(4) {
            0 => chars.insert(at, rng.pick(CHARS).to_owned()),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            2 if at < chars.len() => {
                let flipped = recase(rng, &chars[at]);
                chars[at] = flipped;
            }
            _ if at < chars.len() => chars[at] = rng.pick(CHARS).to_owned(),
            _ => chars.push(rng.pick(CHARS).to_owned()),
        }
    }
    chars.concat()
}

fn vector_tokens() -> Vec<String> {
    [
        "permission_scopes_valid.txt",
        "permission_scopes_invalid.txt",
    ]
    .iter()
    .flat_map(|file| {
        let path = format!("{}/testdata/scopes/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path)
            .unwrap()
            .split('\n')
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.contains(' '))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    })
    .collect()
}

/// The test vectors, then `grammar` tokens from the grammar and `mutated` edited ones.
pub(crate) fn corpus(seed: u64, grammar: usize, mutated: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut tokens = vector_tokens();
    for _ in 0..grammar {
        tokens.push(grammar_token(&mut rng));
    }
    for _ in 0..mutated {
        let base = grammar_token(&mut rng);
        tokens.push(mutate(&mut rng, &base));
    }
    tokens.retain(|t| !t.is_empty() && !t.contains(' '));
    tokens.sort();
    tokens.dedup();
    tokens
}
