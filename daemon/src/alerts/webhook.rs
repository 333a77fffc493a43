//! The generic JSON webhook: the [`comfydash_wire::AlertNotification`] body, any 2xx is success.

use super::deliver::Attempt;
use super::message::Message;

/// A generic JSON webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// The URL (may carry a token).
    pub url: String,
}

impl Webhook {
    /// The request for `msg`.
    pub fn attempt(&self, msg: &Message) -> Attempt {
        Attempt {
            url: self.url.clone(),
            body: serde_json::to_value(msg.notification()).unwrap_or_default(),
        }
    }
}
