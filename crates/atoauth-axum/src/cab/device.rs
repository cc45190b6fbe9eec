//! The app's own word on a device (U8). The deny-list and the cookie's presence are generic; only
//! the app knows whether a sign-in cookie is valid and whose it is. A [`DeviceCheck`] sees the
//! proven DPoP key's thumbprint beside the request's headers, so it can check the cookie's value
//! and tie the device to the app's user (to revoke all of one user's devices later, say) — which
//! middleware in front of the route cannot, as it never sees a verified proof.

use axum::http::HeaderMap;

/// What a [`DeviceCheck`] is asked about: a request whose proof has been verified.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeviceRequest<'a> {
    /// The RFC 7638 thumbprint of the device's DPoP key (the assertion's `cnf.jkt`).
    pub jkt: &'a str,
    /// The request's headers, cookies included.
    pub headers: &'a HeaderMap,
    /// The authorization server the assertion would be for, as asked (not yet checked).
    pub audience: &'a str,
}

/// Decides, after the deny-list and the cookie's presence, whether a device may have an
/// assertion. A refusal is a 403 `access_denied` whose description carries the reason (it goes
/// to the browser, so keep secrets out of it); the browser then ends that session at once.
///
/// ```
/// use atoauth_axum::cab::{DeviceCheck, DeviceRequest};
///
/// /// Only browsers holding the app's current sign-in cookie.
/// #[derive(Debug)]
/// struct SignedIn;
///
/// #[async_trait::async_trait]
/// impl DeviceCheck for SignedIn {
///     async fn check(&self, device: &DeviceRequest<'_>) -> Result<(), String> {
///         let cookies = device.headers.get("cookie").and_then(|v| v.to_str().ok());
///         match cookies {
///             Some(c) if c.split("; ").any(|c| c == "app_session=valid") => Ok(()),
///             _ => Err("sign in to the app again".to_owned()),
///         }
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait DeviceCheck: Send + Sync + std::fmt::Debug {
    /// `Ok(())` lets the request go on; `Err(reason)` refuses it.
    async fn check(&self, device: &DeviceRequest<'_>) -> Result<(), String>;
}
