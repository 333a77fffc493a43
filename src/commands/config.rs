//! `comfydash config check`: loads the configuration exactly as `comfydash daemon` would (same
//! flags, environment and file) and prints the effective result with every secret masked.
//! `comfydash config reload`: the running daemon re-reads its own configuration and says what
//! changed (a file that does not load is refused, exit 4, and the daemon keeps running as it was).

use comfydash_daemon::auth::Role;
use comfydash_daemon::config::Config;
use serde_json::{Value, json};

use super::{client, print_json};
use crate::cli::{ConfigCheckArgs, Remote};
use crate::exit::Exit;

/// Prints the effective configuration (TOML, or JSON); an invalid one is an error (exit 1).
pub fn check(args: &ConfigCheckArgs) -> anyhow::Result<Exit> {
    let config = crate::daemon::load_config(&args.daemon)?;
    let view = effective(&config)?;
    if args.json {
        print_json(&view)?;
    } else {
        out!("{}", toml::to_string_pretty(&without_nulls(view))?);
    }
    Ok(Exit::Success)
}

/// Asks the daemon to reload; prints each change, and warnings on stderr.
pub async fn reload(remote: &Remote) -> anyhow::Result<Exit> {
    let report = client(remote).reload_config().await?;
    if remote.json {
        print_json(&report)?;
    } else {
        if report.applied.is_empty() {
            outln!("reloaded; nothing changed that applies live");
        }
        for change in &report.applied {
            outln!("{change}");
        }
    }
    for warning in &report.warnings {
        eprintln!("comfydash: warning: {warning}");
    }
    Ok(Exit::Success)
}

/// The configuration as JSON, keys by name and role, secrets and URL passwords masked.
fn effective(config: &Config) -> anyhow::Result<Value> {
    let mut view = serde_json::to_value(config)?;
    // `Config` never serialises its keys; they come back here with the secret masked.
    view["keys"] = config
        .keys
        .iter()
        .map(|k| json!({"name": k.name, "role": k.role, "key": mask(&k.key)}))
        .collect();
    if !config.keys.iter().any(|k| k.role == Role::Admin) {
        let path = config.admin_key_path();
        view["admin_key"] = json!({
            "file": path,
            "exists": path.exists(),
            "note": "no admin key configured: the daemon uses this file, generating it on first start",
        });
    }
    if let Some(servers) = view["servers"].as_array_mut() {
        for s in servers {
            if let Some(u) = s["url"].as_str() {
                s["url"] = Value::String(mask_url(u));
            }
        }
    }
    Ok(view)
}

/// `abc…(24 chars)` for a long secret, `***` for a short one (where a prefix would give too much).
fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n < 16 {
        return "***".into();
    }
    let head: String = secret.chars().take(3).collect();
    format!("{head}…({n} chars)")
}

/// The URL with any password replaced by `***`.
fn mask_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

/// TOML has no null: an absent value is left out.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        assert_eq!(mask("short"), "***");
        assert_eq!(mask("abcdefghijklmnopqrstuvwx"), "abc…(24 chars)");
        assert_eq!(
            mask_url("http://user:secret@gpu:8188"),
            "http://user:***@gpu:8188/"
        );
        assert_eq!(mask_url("http://gpu:8188"), "http://gpu:8188");
    }
}
