//! Which daemon to watch: flags and environment, or named contexts from `<config dir>/tui.toml`.
//!
//! ```toml
//! default = "gpu1"
//! [contexts.gpu1]
//! url = "http://10.0.0.7:8190"
//! api_key_file = "/etc/comfydash/admin.key"   # or api_key = "..." or api_key_env = "VAR"
//! ```
//!
//! A context without a key setting uses the same key as the command line would
//! (`--api-key`, `COMFYDASH_ADMIN_KEY`, `<data-dir>/admin.key`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use comfydash_wire::connect::{DEFAULT_URL, KeySource, resolve_key};
use serde::Deserialize;

use crate::{Options, TuiError};

/// Environment variable naming another config file (for tests and unusual setups).
const CONFIG_ENV: &str = "COMFYDASH_TUI_CONFIG";

/// One daemon the console can connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Name shown in the header (`local` for the one built from flags).
    pub name: String,
    /// Base URL.
    pub url: String,
    /// API key, if any.
    pub key: Option<String>,
    /// Where the key came from, for the operator (never the key).
    pub key_source: String,
}

/// Everything the console needs before it starts: contexts and terminal capabilities.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Known daemons; at least one.
    pub contexts: Vec<Context>,
    /// Index of the one to connect to first.
    pub current: usize,
    /// False when `NO_COLOR` is set: the console then uses bold and reverse video only.
    pub color: bool,
    /// Whether the console owns a real terminal: `y` writes an OSC 52 escape to it, and
    /// SIGTERM, SIGHUP and SIGINT end the console cleanly.
    pub interactive: bool,
    /// The config file contexts came from (shown when there is nothing to switch to).
    pub config_path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default: Option<String>,
    #[serde(default)]
    contexts: BTreeMap<String, FileContext>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileContext {
    url: String,
    api_key: Option<String>,
    api_key_file: Option<PathBuf>,
    api_key_env: Option<String>,
}

impl Setup {
    /// One daemon, no config file: what tests and measurements use.
    pub fn for_url(url: &str, key: Option<String>) -> Setup {
        Setup {
            contexts: vec![Context {
                name: "local".into(),
                url: url.into(),
                key,
                key_source: "given".into(),
            }],
            current: 0,
            color: true,
            interactive: false,
            config_path: None,
        }
    }

    /// Resolves flags, environment and `tui.toml` into contexts.
    pub fn from_options(opts: &Options) -> Result<Setup, TuiError> {
        let path = config_path();
        let file = match &path {
            Some(p) => read_file(p)?,
            None => File::default(),
        };
        let flag = resolve_key(opts.api_key.as_deref(), opts.data_dir.as_deref());
        let mut setup = resolve(opts, file, path, flag)?;
        setup.color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Ok(setup)
    }

    /// The same setup, for a real terminal (see [`Setup::interactive`]).
    pub fn interactive(mut self) -> Setup {
        self.interactive = true;
        self
    }

    /// The same setup, with colour on or off.
    pub fn with_color(mut self, on: bool) -> Setup {
        self.color = on;
        self
    }
}

/// Picks the contexts and the current one from the file and the flags (no I/O but key files).
fn resolve(
    opts: &Options,
    file: File,
    path: Option<PathBuf>,
    (flag_key, flag_source): (Option<String>, KeySource),
) -> Result<Setup, TuiError> {
    let mut contexts = vec![Context {
        name: "local".into(),
        url: opts.url.clone().unwrap_or_else(|| DEFAULT_URL.into()),
        key: flag_key.clone(),
        key_source: describe(&flag_source),
    }];
    for (name, c) in &file.contexts {
        let (key, key_source) = match context_key(c) {
            Some(found) => found,
            None => (flag_key.clone(), describe(&flag_source)),
        };
        contexts.push(Context {
            name: name.clone(),
            url: c.url.clone(),
            key,
            key_source,
        });
    }
    let wanted = opts.context.clone().or_else(|| {
        // Flags describe a daemon of their own; the file's default applies only without them.
        (opts.url.is_none() && opts.api_key.is_none())
            .then(|| file.default.clone())
            .flatten()
    });
    let current = match wanted {
        None => 0,
        Some(name) => contexts
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| TuiError::UnknownContext {
                known: contexts
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                name,
                path: path.clone().unwrap_or_default(),
            })?,
    };
    if opts.context.is_some() {
        // Explicit flags still win over the chosen context's values.
        let c = &mut contexts[current];
        if let Some(u) = &opts.url {
            c.url = u.clone();
        }
        if opts.api_key.is_some() {
            c.key = flag_key;
            c.key_source = describe(&flag_source);
        }
    }
    Ok(Setup {
        contexts,
        current,
        color: true,
        interactive: false,
        config_path: path,
    })
}

fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("", "", "comfydash").map(|d| d.config_dir().join("tui.toml"))
}

fn read_file(path: &Path) -> Result<File, TuiError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(File::default()),
        Err(e) => {
            return Err(TuiError::Config {
                path: path.into(),
                message: e.to_string(),
            });
        }
    };
    toml::from_str(&text).map_err(|e| TuiError::Config {
        path: path.into(),
        message: e.to_string(),
    })
}

fn context_key(c: &FileContext) -> Option<(Option<String>, String)> {
    if let Some(k) = &c.api_key {
        return Some((Some(k.clone()), "tui.toml".into()));
    }
    if let Some(var) = &c.api_key_env {
        return Some((
            std::env::var(var).ok().filter(|k| !k.is_empty()),
            format!("${var}"),
        ));
    }
    let path = c.api_key_file.as_ref()?;
    let key = std::fs::read_to_string(path)
        .ok()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty());
    Some((key, path.display().to_string()))
}

fn describe(source: &KeySource) -> String {
    match source {
        KeySource::Flag => "--api-key".into(),
        KeySource::Env => "COMFYDASH_ADMIN_KEY".into(),
        KeySource::File(p) => p.display().to_string(),
        KeySource::None => "no key".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_contexts_parse() {
        let f: File = toml::from_str(
            r#"
            default = "gpu1"
            [contexts.gpu1]
            url = "http://10.0.0.7:8190"
            api_key = "k1"
            [contexts.gpu2]
            url = "http://10.0.0.8:8190"
            api_key_env = "NOT_SET_ANYWHERE_42"
            "#,
        )
        .unwrap();
        assert_eq!(f.default.as_deref(), Some("gpu1"));
        let k1 = context_key(&f.contexts["gpu1"]).unwrap();
        assert_eq!(k1.0.as_deref(), Some("k1"));
        let k2 = context_key(&f.contexts["gpu2"]).unwrap();
        assert_eq!(k2, (None, "$NOT_SET_ANYWHERE_42".into()));
    }

    fn file() -> File {
        toml::from_str(
            "default = 'west'\n[contexts.west]\nurl = 'http://w:8190'\napi_key = 'wk'\n\
             [contexts.east]\nurl = 'http://e:8190'",
        )
        .unwrap()
    }

    fn setup(opts: Options) -> Result<Setup, TuiError> {
        resolve(&opts, file(), None, (Some("fk".into()), KeySource::Env))
    }

    #[test]
    fn file_default_applies_without_flags() {
        let s = setup(Options::default()).unwrap();
        let c = &s.contexts[s.current];
        assert_eq!((c.name.as_str(), c.key.as_deref()), ("west", Some("wk")));
        // A context without a key setting uses the key the flags would.
        let east = s.contexts.iter().find(|c| c.name == "east").unwrap();
        assert_eq!(east.key.as_deref(), Some("fk"));
    }

    #[test]
    fn flags_and_context_choose() {
        let s = setup(Options {
            url: Some("http://other:1".into()),
            ..Options::default()
        })
        .unwrap();
        assert_eq!(s.contexts[s.current].url, "http://other:1");
        let s = setup(Options {
            context: Some("east".into()),
            url: Some("http://override:2".into()),
            ..Options::default()
        })
        .unwrap();
        assert_eq!(s.contexts[s.current].name, "east");
        assert_eq!(s.contexts[s.current].url, "http://override:2");
        let e = setup(Options {
            context: Some("north".into()),
            ..Options::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("east, west"), "{e}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(toml::from_str::<File>("[contexts.a]\nurl='x'\napikey='typo'").is_err());
    }
}
