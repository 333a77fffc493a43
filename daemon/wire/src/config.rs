//! Reloading the daemon's configuration.

use serde::{Deserialize, Serialize};

/// `POST /api/config/reload` (and the log of a SIGHUP): what a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReloadReport {
    /// Changes applied, one line each (servers added, removed or moved, secrets, alerts).
    pub applied: Vec<String>,
    /// What needs attention: template problems, and what only applies at the next restart.
    pub warnings: Vec<String>,
}
