//! API keys and roles: which key may do what, checked in constant time and never logged.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::KeyConfig;

/// What a key may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every GET.
    Read,
    /// Read, plus submitting jobs and posting telemetry (the Lensia backend).
    Submit,
    /// Everything, including cancel, retry, delete and pause.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Submit => "submit",
            Role::Admin => "admin",
        })
    }
}

/// The caller a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's name, recorded as the actor.
    pub name: String,
    /// Its role.
    pub role: Role,
}

struct Entry {
    digest: [u8; 32],
    name: String,
    role: Role,
}

/// The set of accepted keys, held as digests so comparison time does not depend on key length.
/// Replaceable at run time (SIGHUP reload).
pub struct Keys {
    entries: std::sync::RwLock<Vec<Entry>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        f.debug_list()
            .entries(entries.iter().map(|e| (&e.name, e.role)))
            .finish()
    }
}

impl Keys {
    /// Builds the set from configured keys.
    pub fn new(keys: &[KeyConfig]) -> Self {
        Keys {
            entries: std::sync::RwLock::new(Self::entries(keys)),
        }
    }

    fn entries(keys: &[KeyConfig]) -> Vec<Entry> {
        keys.iter()
            .map(|k| Entry {
                digest: Sha256::digest(k.key.as_bytes()).into(),
                name: k.name.clone(),
                role: k.role,
            })
            .collect()
    }

    /// Replaces every key at once.
    pub fn replace(&self, keys: &[KeyConfig]) {
        *self.entries.write().unwrap_or_else(|e| e.into_inner()) = Self::entries(keys);
    }

    /// Finds the key's owner. Every entry is compared, so timing does not reveal which one matched.
    pub fn authenticate(&self, presented: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        for e in entries.iter() {
            if bool::from(e.digest.ct_eq(&digest)) {
                found = Some(Caller {
                    name: e.name.clone(),
                    role: e.role,
                });
            }
        }
        found
    }

    /// Whether any admin key exists.
    pub fn has_admin(&self) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|e| e.role == Role::Admin)
    }
}

/// Reads `<data-dir>/admin.key`, creating it (mode 0600) with a fresh random key if missing.
pub fn load_or_create_admin_key(path: &Path) -> std::io::Result<(String, bool)> {
    match std::fs::read_to_string(path) {
        Ok(k) if !k.trim().is_empty() => return Ok((k.trim().to_string(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let key = format!("cdk_{}", hex::encode(rand::random::<[u8; 24]>()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("key.tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        std::io::Write::write_all(&mut f, format!("{key}\n").as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok((key, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_lookup() {
        let keys = Keys::new(&[
            KeyConfig {
                name: "lensia".into(),
                role: Role::Submit,
                key: "s3cret-submit".into(),
            },
            KeyConfig {
                name: "ops".into(),
                role: Role::Admin,
                key: "s3cret-admin".into(),
            },
        ]);
        assert_eq!(keys.authenticate("s3cret-admin").unwrap().name, "ops");
        assert_eq!(
            keys.authenticate("s3cret-submit").unwrap().role,
            Role::Submit
        );
        assert!(keys.authenticate("s3cret").is_none());
        assert!(keys.authenticate("").is_none());
        assert!(Role::Admin > Role::Submit && Role::Submit > Role::Read);
        assert!(!format!("{keys:?}").contains("s3cret"));
    }

    #[test]
    fn admin_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/admin.key");
        let (k1, created) = load_or_create_admin_key(&p).unwrap();
        assert!(created);
        let (k2, created) = load_or_create_admin_key(&p).unwrap();
        assert!(!created);
        assert_eq!(k1, k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
