//! Standard Webhooks signatures: `whsec_` secrets (configured, from the environment, or generated
//! into the data dir) and the `webhook-signature` header, one `v1,` signature per secret.

use std::path::Path;

use base64::Engine;
use standardwebhooks::Webhook;

use super::WebhookError;

const PREFIX: &str = "whsec_";
/// Fewer key bytes than this is too guessable to sign with.
const MIN_KEY_BYTES: usize = 16;

/// Checks that `secret` is `whsec_` followed by base64 of at least 16 bytes.
pub fn check_secret(secret: &str) -> Result<(), WebhookError> {
    let bad = |why: &str| WebhookError::Secret(format!("a secret {why}"));
    let b64 = secret
        .strip_prefix(PREFIX)
        .ok_or_else(|| bad("must start with whsec_"))?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad("must be whsec_ followed by standard base64"))?;
    if key.len() < MIN_KEY_BYTES {
        return Err(bad("must hold at least 16 bytes"));
    }
    Ok(())
}

/// A new secret: `whsec_` and base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Reads the secret kept at `path`, creating it (mode 0600) when absent; true when created.
pub fn load_or_create_secret(path: &Path) -> Result<(String, bool), WebhookError> {
    let io = |source| WebhookError::SecretFile {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => {
            let s = s.trim().to_string();
            check_secret(&s)?;
            return Ok((s, false));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let secret = generate_secret();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("secret.tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(io)?;
        std::io::Write::write_all(&mut f, format!("{secret}\n").as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok((secret, true))
}

/// Signs with every configured secret, so receivers can rotate without a gap.
pub struct Signer {
    keys: Vec<Webhook>,
}

impl Signer {
    /// A signer for these secrets (already checked).
    pub fn new(secrets: &[String]) -> Result<Signer, WebhookError> {
        let keys = secrets
            .iter()
            .map(|s| {
                check_secret(s)?;
                Webhook::new(s).map_err(|e| WebhookError::Secret(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Signer { keys })
    }

    /// The `webhook-signature` value for one attempt: `v1,<base64>` per secret, space-separated.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<String, WebhookError> {
        let sigs = self
            .keys
            .iter()
            .map(|k| k.sign(id, timestamp, body))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| WebhookError::Sign(e.to_string()))?;
        Ok(sigs.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn spec_vector() {
        let s = Signer::new(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()]).unwrap();
        let sig = s
            .sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#,
            )
            .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn every_secret_signs() {
        let (a, b) = (generate_secret(), generate_secret());
        let both = Signer::new(&[a.clone(), b.clone()]).unwrap();
        let one = |s: &str| {
            Signer::new(&[s.into()])
                .unwrap()
                .sign("id", 1, b"{}")
                .unwrap()
        };
        assert_eq!(
            both.sign("id", 1, b"{}").unwrap(),
            format!("{} {}", one(&a), one(&b))
        );
    }

    #[test]
    fn secrets_are_checked() {
        check_secret(&generate_secret()).unwrap();
        assert!(check_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(check_secret("whsec_not base64!").is_err());
        assert!(check_secret("whsec_c2hvcnQ=").is_err());
    }

    #[test]
    fn generated_secret_is_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhook.secret");
        let (s, created) = load_or_create_secret(&path).unwrap();
        assert!(created);
        assert_eq!(load_or_create_secret(&path).unwrap(), (s, false));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
