//! Telling the other tabs of the origin that a session changed or ended, over a
//! `BroadcastChannel`. The core keeps tabs correct without it (each re-reads the stored session
//! before refreshing); this lets their pages update at once.

use wasm_bindgen::JsValue;
use web_sys::BroadcastChannel;

use crate::error::BrowserError;

/// What one tab tells the others.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Notice {
    /// New tokens were stored (a sign-in or a refresh).
    Updated {
        /// The account.
        did: String,
    },
    /// The session was deleted (signed out, or ended).
    Deleted {
        /// The account.
        did: String,
    },
    /// A sign-in popup finished (its opener waits for this nonce).
    PopupDone {
        /// The nonce the opener put in the app state.
        nonce: String,
    },
}

/// The origin's channel.
#[derive(Clone, Debug)]
pub(crate) struct Channel {
    channel: BroadcastChannel,
}

impl Channel {
    pub(crate) fn open(name: &str) -> Result<Self, BrowserError> {
        Ok(Self {
            channel: BroadcastChannel::new(name)
                .map_err(|e| BrowserError::js("BroadcastChannel", &e))?,
        })
    }

    /// Posts `notice` to every other tab (a tab does not receive its own messages).
    pub(crate) fn tell(&self, notice: &Notice) {
        if let Ok(text) = serde_json::to_string(notice) {
            let _ = self.channel.post_message(&JsValue::from_str(&text));
        }
    }

    /// The underlying channel, to listen on.
    pub(crate) fn inner(&self) -> &BroadcastChannel {
        &self.channel
    }

    /// Reads a message posted by [`tell`](Self::tell).
    pub(crate) fn read(data: &JsValue) -> Option<Notice> {
        serde_json::from_str(&data.as_string()?).ok()
    }
}
