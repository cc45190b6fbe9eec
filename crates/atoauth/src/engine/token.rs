//! Token responses (L2, N7) and OAuth error responses from the authorization server.

use serde_json::Value;

use crate::error::{Endpoint, OAuthError};
use crate::http::Response;
use crate::secret::{AccessToken, RefreshToken};
use crate::syntax::{Did, DidMethod};

/// A validated token response.
#[derive(Clone, Debug)]
pub(crate) struct TokenSet {
    /// The access token (L2.1).
    pub(crate) access_token: AccessToken,
    /// The refresh token, if issued (L2.5).
    pub(crate) refresh_token: Option<RefreshToken>,
    /// The account (L2.3).
    pub(crate) sub: Did,
    /// The granted scope (L2.4, L7).
    pub(crate) scope: String,
    /// Absolute expiry in Unix seconds, from `expires_in` (L2.5).
    pub(crate) expires_at: Option<i64>,
}

/// The OAuth error in a non-success response, kept as data.
pub(crate) fn server_error(endpoint: Endpoint, response: &Response) -> OAuthError {
    let body: Value = serde_json::from_slice(response.body()).unwrap_or_default();
    OAuthError::Server {
        endpoint,
        status: response.status().as_u16(),
        error: body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error")
            .to_owned(),
        description: body
            .get("error_description")
            .and_then(Value::as_str)
            .map(|d| d.chars().take(300).collect()),
    }
}

/// The access token in a response, if any: so that tokens can be revoked when a later check
/// fails (L5).
pub(crate) fn issued_access_token(response: &Response) -> Option<AccessToken> {
    let body: Value = serde_json::from_slice(response.body()).ok()?;
    body.get("access_token")
        .and_then(Value::as_str)
        .map(AccessToken::new)
}

/// L2: checks a token endpoint response; `now` turns `expires_in` into an absolute time.
///
/// # Errors
/// The OAuth error the server sent, or the first L2 rule broken.
pub(crate) fn parse_token_response(
    endpoint: Endpoint,
    response: &Response,
    now: i64,
) -> Result<TokenSet, OAuthError> {
    if !response.status().is_success() {
        return Err(server_error(endpoint, response));
    }
    let invalid = |rule: &'static str, reason: &str| OAuthError::InvalidResponse {
        endpoint: endpoint.to_string(),
        rule,
        reason: reason.to_owned(),
    };
    if response.status() != http::StatusCode::OK {
        return Err(invalid(
            "L2",
            &format!("expected HTTP 200, got {}", response.status().as_u16()),
        ));
    }
    let body: Value = serde_json::from_slice(response.body())
        .map_err(|_| invalid("L2", "the body is not JSON"))?;
    let object = body
        .as_object()
        .ok_or_else(|| invalid("L2", "the body is not a JSON object"))?;
    let access_token = object
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("L2.1", "no access_token"))?;
    let token_type = object.get("token_type").and_then(Value::as_str);
    if !token_type.is_some_and(|t| t.eq_ignore_ascii_case("DPoP")) {
        return Err(invalid(
            "L2.2",
            &format!("token_type is {token_type:?}, expected DPoP"),
        ));
    }
    let sub = object
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("L2.3", "no sub"))?;
    let sub = Did::new(sub)
        .ok()
        .filter(|did| matches!(did.method(), DidMethod::Plc | DidMethod::Web))
        .ok_or_else(|| invalid("L2.3", "sub is not a did:plc or did:web DID"))?;
    let scope = object
        .get("scope")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("L2.4", "no scope"))?;
    if !scope.split(' ').any(|s| s == "atproto") {
        return Err(invalid("L2.4", "the granted scope lacks \"atproto\""));
    }
    let refresh_token = match object.get("refresh_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) => Some(RefreshToken::new(token.clone())),
        Some(_) => return Err(invalid("L2.5", "refresh_token is not a string")),
    };
    let expires_at = match object.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                // Whole seconds; an absurd lifetime is capped rather than overflowing.
                .map(|s| now.saturating_add(s.min(1e10) as i64))
                .ok_or_else(|| invalid("L2.5", "expires_in is not a non-negative number"))?,
        ),
    };
    if object.contains_key("id_token") {
        return Err(invalid(
            "L2.6",
            "an id_token was returned (OpenID Connect is not supported)",
        ));
    }
    Ok(TokenSet {
        access_token: AccessToken::new(access_token),
        refresh_token,
        sub,
        scope: scope.to_owned(),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn response(status: u16, body: &Value) -> Response {
        http::Response::builder()
            .status(status)
            .body(serde_json::to_vec(body).unwrap())
            .unwrap()
    }

    fn good() -> Value {
        json!({
            "access_token": "at", "token_type": "DPoP", "refresh_token": "rt",
            "sub": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "scope": "atproto transition:generic",
            "expires_in": 3600,
        })
    }

    #[test]
    fn l2_valid_response() {
        let tokens = parse_token_response(Endpoint::Token, &response(200, &good()), 1000).unwrap();
        assert_eq!(tokens.access_token.secret(), "at");
        assert_eq!(tokens.refresh_token.unwrap().secret(), "rt");
        assert_eq!(tokens.expires_at, Some(4600));
        assert_eq!(tokens.sub.as_str(), "did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    }

    #[test]
    fn l2_each_check() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("access_token", Value::Null, "L2.1"),
            ("token_type", json!("Bearer"), "L2.2"),
            ("sub", Value::Null, "L2.3"),
            ("sub", json!("alice.example"), "L2.3"),
            (
                "sub",
                json!("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"),
                "L2.3",
            ),
            ("scope", Value::Null, "L2.4"),
            ("scope", json!("transition:generic"), "L2.4"),
            ("refresh_token", json!(5), "L2.5"),
            ("expires_in", json!("soon"), "L2.5"),
            ("id_token", json!("x.y.z"), "L2.6"),
        ];
        for (field, value, rule) in cases {
            let mut body = good();
            if value.is_null() {
                body.as_object_mut().unwrap().remove(field);
            } else {
                body[field] = value.clone();
            }
            let error =
                parse_token_response(Endpoint::Token, &response(200, &body), 0).unwrap_err();
            assert!(
                matches!(&error, OAuthError::InvalidResponse { rule: r, .. } if *r == rule),
                "{field}={value}: {error}"
            );
        }
        let error = parse_token_response(Endpoint::Token, &response(201, &good()), 0).unwrap_err();
        assert!(matches!(
            error,
            OAuthError::InvalidResponse { rule: "L2", .. }
        ));
    }

    #[test]
    fn oauth_errors_are_kept_as_data_without_secrets() {
        let error = parse_token_response(
            Endpoint::Refresh,
            &response(
                400,
                &json!({"error": "invalid_grant", "error_description": "Refresh token replayed"}),
            ),
            0,
        )
        .unwrap_err();
        assert_eq!(error.oauth_error_code(), Some("invalid_grant"));
        assert!(error.to_string().contains("Refresh token replayed"));
    }
}
