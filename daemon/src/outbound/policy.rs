//! Which hosts and addresses the daemon may contact on a client's behalf.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use ipnet::IpNet;
use url::{Host, Url};

use super::OutboundError;

/// Longest URL accepted from a client, in characters.
pub const MAX_URL_LEN: usize = 2048;

const ALLOW_HINT: &str = "; refused (set COMFYDASH_OUTBOUND_ALLOW to allow private addresses)";
const COMFYUI_REASON: &str = "is a configured ComfyUI server; refused (ComfyUI has no authentication, \
     so client-supplied URLs may never reach it, even when allow-listed)";

/// Outbound URL policy: default refusal of non-public addresses, an allow list, and the ComfyUI servers that are never reachable.
#[derive(Clone, Debug)]
pub struct OutboundPolicy {
    /// Shared by every clone (API, worker, webhooks, resolver), so a reload reaches them all.
    rules: Arc<RwLock<Arc<Rules>>>,
}

#[derive(Debug, Default)]
struct Rules {
    allow_nets: Vec<IpNet>,
    allow_hosts: Vec<String>,
    /// Wildcard entries stored as ".example.internal", so `ends_with` cannot match "badexample.internal".
    allow_suffixes: Vec<String>,
    comfyui: Vec<ComfyTarget>,
    /// The URLs `comfyui` was parsed from.
    comfyui_urls: Vec<String>,
    /// The entries the allow rules were parsed from.
    allow: Vec<String>,
}

/// One configured ComfyUI server as host:port.
#[derive(Debug)]
struct ComfyTarget {
    host: String,
    port: u16,
    ip: Option<IpAddr>,
    /// A loopback or unspecified server answers on every loopback address of this machine,
    /// so `127.0.0.2:8188` or `[::1]:8188` reach a ComfyUI configured as `127.0.0.1:8188`.
    local: bool,
}

impl OutboundPolicy {
    /// Builds the policy from allow entries (CIDR, IP, host name or `*.suffix`) and the ComfyUI server URLs.
    pub fn new(allow: &[String], comfyui_urls: &[String]) -> Result<Self, OutboundError> {
        Ok(Self {
            rules: Arc::new(RwLock::new(Arc::new(Rules::build(allow, comfyui_urls)?))),
        })
    }

    /// Replaces the allow list and adds ComfyUI servers (reload). Servers are never taken off:
    /// one removed from the configuration may still be draining, and it still has no
    /// authentication. A bad allow entry keeps the old allow list, but the servers are added.
    pub fn update(&self, allow: &[String], comfyui_urls: &[String]) -> Result<(), OutboundError> {
        let old = self.rules();
        let mut urls = old.comfyui_urls.clone();
        for u in comfyui_urls {
            if !urls.contains(u) {
                urls.push(u.clone());
            }
        }
        let (rules, result) = match Rules::build(allow, &urls) {
            Ok(r) => (r, Ok(())),
            Err(e) => (Rules::build(&old.allow, &urls)?, Err(e)),
        };
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        result
    }

    fn rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Submit-time check without I/O: scheme, credentials, length, literal IP hosts and well-known local names.
    pub fn check_url(&self, raw: &str) -> Result<Url, OutboundError> {
        if raw.chars().count() > MAX_URL_LEN {
            return Err(invalid(format!("longer than {MAX_URL_LEN} characters")));
        }
        let url = Url::parse(raw).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::Scheme {
                scheme: url.scheme().chars().take(32).collect(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not contain a user name or password".into()));
        }
        let port = url.port_or_known_default();
        match url.host() {
            None => return Err(invalid("has no host".into())),
            Some(Host::Domain(name)) => self.check_name(name, port)?,
            Some(Host::Ipv4(ip)) => self.check_literal(ip.into(), port, &[])?,
            Some(Host::Ipv6(ip)) => self.check_literal(ip.into(), port, &[])?,
        }
        Ok(url)
    }

    /// Checks one resolved address; port 0 means unknown, which matches a ComfyUI server on any port.
    ///
    /// Named ComfyUI servers are matched by `host` name only here; sending also compares their resolved addresses.
    pub fn check_addr(&self, host: Option<&str>, addr: SocketAddr) -> Result<(), OutboundError> {
        let port = (addr.port() != 0).then_some(addr.port());
        let name = host.map(normalize);
        self.judge_ip(name.as_deref(), addr.ip(), port, &[])
            .map_err(|reason| refused(label(name.as_deref(), addr.ip()), reason))
    }

    /// Send-time check of a literal-IP host, which reqwest connects to without asking the resolver.
    pub(super) async fn check_literal_hop(&self, url: &Url) -> Result<(), OutboundError> {
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::from(ip),
            Some(Host::Ipv6(ip)) => IpAddr::from(ip),
            _ => return Ok(()),
        };
        let comfy_addrs = self.resolve_comfy_names().await;
        self.check_literal(ip, url.port_or_known_default(), &comfy_addrs)
    }

    /// Send-time check of every address a name resolved to; one bad address refuses the name.
    pub(super) async fn check_resolved(
        &self,
        name: &str,
        port: Option<u16>,
        addrs: &[SocketAddr],
    ) -> Result<(), OutboundError> {
        let name = normalize(name);
        if addrs.is_empty() {
            return Err(OutboundError::Connect {
                host: name,
                reason: "name resolved to no addresses".into(),
            });
        }
        let comfy_addrs = self.resolve_comfy_names().await;
        for addr in addrs {
            self.judge_ip(Some(&name), addr.ip(), port, &comfy_addrs)
                .map_err(|reason| refused(label(Some(&name), addr.ip()), reason))?;
        }
        Ok(())
    }

    fn check_literal(
        &self,
        ip: IpAddr,
        port: Option<u16>,
        comfy_addrs: &[SocketAddr],
    ) -> Result<(), OutboundError> {
        self.judge_ip(None, ip, port, comfy_addrs)
            .map_err(|reason| refused(label(None, ip), reason))
    }

    /// Names refused before any DNS: the ComfyUI servers' names, and local names unless their addresses are allowed.
    fn check_name(&self, name: &str, port: Option<u16>) -> Result<(), OutboundError> {
        let name = normalize(name);
        if self.is_comfy_name(&name, port) {
            return Err(refused(name, COMFYUI_REASON.into()));
        }
        if self.host_allowed(&name) {
            return Ok(());
        }
        if let Some((what, addrs)) = special_name(&name) {
            // An operator who allowed 127.0.0.0/8 expects `localhost` to work; resolution decides then.
            if !addrs.iter().any(|ip| self.net_allowed(*ip)) {
                return Err(refused(name, format!("is {what}{ALLOW_HINT}")));
            }
        }
        Ok(())
    }

    /// Returns the refusal reason for an address, if any; ComfyUI comes first because allowing never opens it.
    fn judge_ip(
        &self,
        name: Option<&str>,
        ip: IpAddr,
        port: Option<u16>,
        comfy_addrs: &[SocketAddr],
    ) -> Result<(), String> {
        let ip = ip.to_canonical();
        let resolved_comfy = comfy_addrs
            .iter()
            .any(|a| a.ip().to_canonical() == ip && port_matches(port, a.port()));
        if resolved_comfy
            || self.is_comfy_ip(ip, port)
            || name.is_some_and(|n| self.is_comfy_name(n, port))
        {
            return Err(COMFYUI_REASON.into());
        }
        if self.net_allowed(ip) || name.is_some_and(|n| self.host_allowed(n)) {
            return Ok(());
        }
        match classify(ip) {
            Some(what) => Err(format!("is {what}{ALLOW_HINT}")),
            None => Ok(()),
        }
    }

    fn is_comfy_ip(&self, ip: IpAddr, port: Option<u16>) -> bool {
        self.rules().comfyui.iter().any(|t| {
            port_matches(port, t.port) && (t.ip == Some(ip) || (t.local && is_local_ip(ip)))
        })
    }

    fn is_comfy_name(&self, name: &str, port: Option<u16>) -> bool {
        self.rules().comfyui.iter().any(|t| {
            port_matches(port, t.port) && (t.host == name || (t.local && is_loopback_name(name)))
        })
    }

    fn net_allowed(&self, ip: IpAddr) -> bool {
        self.rules().allow_nets.iter().any(|net| net.contains(&ip))
    }

    fn host_allowed(&self, name: &str) -> bool {
        self.rules().allow_hosts.iter().any(|h| h == name)
            || self
                .rules()
                .allow_suffixes
                .iter()
                .any(|s| name.ends_with(s.as_str()))
    }

    /// Addresses of ComfyUI servers configured by name; local names are already covered by `ComfyTarget::local`.
    async fn resolve_comfy_names(&self) -> Vec<SocketAddr> {
        let mut addrs = Vec::new();
        let rules = self.rules();
        for target in rules.comfyui.iter().filter(|t| t.ip.is_none() && !t.local) {
            match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
                Ok(found) => addrs.extend(found),
                // If we cannot resolve it, neither can the request's connection reach it by this name.
                Err(err) => {
                    tracing::debug!(host = %target.host, %err, "ComfyUI host did not resolve")
                }
            }
        }
        addrs
    }
}

impl Rules {
    fn build(allow: &[String], comfyui_urls: &[String]) -> Result<Rules, OutboundError> {
        let mut rules = Rules::default();
        for entry in allow {
            rules.add_allow(entry)?;
        }
        for raw in comfyui_urls {
            rules.comfyui.push(ComfyTarget::parse(raw)?);
        }
        rules.comfyui_urls = comfyui_urls.to_vec();
        rules.allow = allow.to_vec();
        Ok(rules)
    }

    fn add_allow(&mut self, entry: &str) -> Result<(), OutboundError> {
        let entry = entry.trim();
        if entry.is_empty() {
            return Ok(());
        }
        let bad = |reason: &str| OutboundError::Config {
            what: "outbound allow entry",
            entry: entry.to_owned(),
            reason: reason.to_owned(),
        };
        if entry.contains('/') {
            let net: IpNet = entry
                .parse()
                .map_err(|_| bad("not a valid CIDR (e.g. 10.1.2.0/24 or fd00::/8)"))?;
            self.allow_nets.push(net.trunc());
            return Ok(());
        }
        let unbracketed = entry
            .strip_prefix('[')
            .and_then(|e| e.strip_suffix(']'))
            .unwrap_or(entry);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            self.allow_nets.push(IpNet::from(ip.to_canonical()));
            return Ok(());
        }
        let expected = "expected a CIDR (10.0.0.0/8), an IP address, a host name or *.domain";
        let (name, wildcard) = match entry.strip_prefix("*.") {
            Some(suffix) => (normalize(suffix), true),
            None => (normalize(entry), false),
        };
        if !is_host_name(&name) {
            return Err(bad(expected));
        }
        if wildcard {
            self.allow_suffixes.push(format!(".{name}"));
        } else {
            self.allow_hosts.push(name);
        }
        Ok(())
    }
}

impl ComfyTarget {
    fn parse(raw: &str) -> Result<Self, OutboundError> {
        let bad = |reason: String| OutboundError::Config {
            what: "ComfyUI URL",
            entry: raw.to_owned(),
            reason,
        };
        // Accept "127.0.0.1:8188" too: without "://" it would parse as a URL whose scheme is the host.
        let full = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("http://{raw}")
        };
        let url = Url::parse(&full).map_err(|e| bad(e.to_string()))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| bad("no port".into()))?;
        let (host, ip) = match url.host() {
            Some(Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::from(ip))),
            Some(Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::from(ip).to_canonical())),
            Some(Host::Domain(name)) => (normalize(name), None),
            None => return Err(bad("no host".into())),
        };
        let local = ip.is_some_and(is_local_ip) || is_loopback_name(&host);
        Ok(Self {
            host,
            port,
            ip,
            local,
        })
    }
}

/// What a non-public address is, for the refusal message; `None` means public.
fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    Some(match ip.octets() {
        [0, 0, 0, 0] => "the unspecified address",
        [0, ..] => "a \"this network\" address",
        [127, ..] => "a loopback address",
        [10, ..] | [192, 168, ..] => "a private address",
        [172, b, ..] if (16..=31).contains(&b) => "a private address",
        [169, 254, ..] => "a link-local/metadata address",
        [100, b, ..] if (64..=127).contains(&b) => "a shared (carrier-grade NAT) address",
        [192, 0, 0, _] => "an IETF protocol address",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "a documentation address",
        [198, 18 | 19, ..] => "a benchmarking address",
        [224..=239, ..] => "a multicast address",
        [255, 255, 255, 255] => "the broadcast address",
        [240..=255, ..] => "a reserved address",
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(match s {
        _ if ip.is_unspecified() => "the unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        // ::a.b.c.d (deprecated IPv4-compatible) has no public use.
        [0, 0, 0, 0, 0, 0, _, _] => "a reserved address",
        [a, ..] if a & 0xfe00 == 0xfc00 => "a private (unique local) address",
        [a, ..] if a & 0xffc0 == 0xfe80 => "a link-local address",
        [a, ..] if a & 0xffc0 == 0xfec0 => "a private (site-local) address",
        [a, ..] if a & 0xff00 == 0xff00 => "a multicast address",
        [0x2001, 0x0db8, ..] => "a documentation address",
        [0x0100, 0, 0, 0, ..] => "a discard-only address",
        _ => return None,
    })
}

/// Well-known names for local addresses, with the addresses they stand for.
fn special_name(name: &str) -> Option<(&'static str, &'static [IpAddr])> {
    const LOOPBACK: &[IpAddr] = &[
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    const METADATA: &[IpAddr] = &[IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254))];
    if is_loopback_name(name) {
        Some(("a loopback name", LOOPBACK))
    } else if name == "metadata.google.internal" {
        Some(("a cloud metadata name", METADATA))
    } else {
        None
    }
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

fn is_local_ip(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

fn port_matches(port: Option<u16>, target: u16) -> bool {
    port.is_none_or(|p| p == target)
}

/// Host names compare case-insensitively and without the root dot ("LocalHost." is "localhost").
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// "10.0.0.1", "::ffff:7f00:1 (IPv4 127.0.0.1)" or "evil.example (resolved to 127.0.0.1)".
fn label(name: Option<&str>, ip: IpAddr) -> String {
    let canonical = ip.to_canonical();
    let ip = if canonical == ip {
        ip.to_string()
    } else {
        format!("{ip} (IPv4 {canonical})")
    };
    match name {
        Some(name) => format!("{name} (resolved to {ip})"),
        None => ip,
    }
}

fn refused(host: String, reason: String) -> OutboundError {
    OutboundError::Refused { host, reason }
}

fn invalid(reason: String) -> OutboundError {
    OutboundError::InvalidUrl { reason }
}
