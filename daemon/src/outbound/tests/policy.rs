//! Policy decisions: ranges, names, schemes, allow entries and the ComfyUI servers.

use std::net::SocketAddr;

use reqwest::dns::Resolve;

use super::super::OutboundError;
use super::super::resolver::{GuardResolver, with_port};
use super::{OutboundPolicy, policy, strings};

#[test]
fn refuses_non_public_literal_hosts_and_local_names() {
    let p = policy(&[], &[]);
    for url in [
        "http://127.0.0.1/",
        "http://127.255.255.254:8080/",
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.0.1/",
        "http://100.64.0.1/",
        "http://100.127.255.255/",
        "http://0.0.0.0/",
        "http://0.1.2.3/",
        "http://224.0.0.1/",
        "http://239.255.255.250/",
        "http://255.255.255.255/",
        "http://240.0.0.1/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[fe80::1]/",
        "http://[ff02::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost:3000/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ] {
        let err = p.check_url(url).expect_err(url);
        assert_eq!(err.code(), "url_refused", "{url}: {err}");
    }
}

#[test]
fn accepts_public_hosts() {
    let p = policy(&[], &[]);
    for url in [
        "http://8.8.8.8/",
        "https://example.com/hook?token=x",
        "http://172.32.0.1/",
        "http://100.128.0.1/",
        "http://[2606:4700:4700::1111]/",
        "http://[::ffff:8.8.8.8]/",
        "https://hooks.example.com:8443/a",
    ] {
        p.check_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

#[test]
fn refusal_messages_name_the_range_but_not_the_url() {
    let p = policy(&[], &[]);
    let err = p
        .check_url("http://169.254.169.254/latest?token=s3cret")
        .expect_err("metadata");
    assert_eq!(
        err.to_string(),
        "host 169.254.169.254 is a link-local/metadata address; refused \
         (set COMFYDASH_OUTBOUND_ALLOW to allow private addresses)"
    );
    let err = p
        .check_url("http://[::ffff:127.0.0.1]/")
        .expect_err("mapped");
    let message = err.to_string();
    assert!(
        message.contains("(IPv4 127.0.0.1) is a loopback address"),
        "{message}"
    );
}

#[test]
fn refuses_other_schemes_credentials_and_malformed_urls() {
    let p = policy(&["0.0.0.0/0"], &[]);
    for url in [
        "file:///etc/passwd",
        "ftp://example.com/x",
        "gopher://example.com/",
        "gopher:x",
        "javascript:alert(1)",
        "data:text/plain,hi",
        "ws://example.com/",
    ] {
        assert_eq!(
            p.check_url(url).expect_err(url).code(),
            "url_scheme",
            "{url}"
        );
    }
    for url in ["http://user:pass@example.com/", "http://user@example.com/"] {
        let err = p.check_url(url).expect_err(url);
        assert_eq!(err.code(), "invalid_url");
        assert!(!err.to_string().contains("pass@"), "{err}");
    }
    for url in ["not a url", "http://", "", "http://exa mple.com/"] {
        assert_eq!(
            p.check_url(url).expect_err(url).code(),
            "invalid_url",
            "{url}"
        );
    }
    let prefix = "https://example.com/";
    let longest = format!("{prefix}{}", "a".repeat(2048 - prefix.len()));
    assert!(p.check_url(&longest).is_ok());
    let too_long = format!("{longest}a");
    assert_eq!(
        p.check_url(&too_long).expect_err("long").code(),
        "invalid_url"
    );
}

#[test]
fn allow_list_opens_cidrs_ips_and_names() {
    let p = policy(
        &[
            "10.1.2.0/24",
            "127.0.0.0/8",
            "::1/128",
            "192.168.1.7",
            "[fd00::7]",
            "Hooks.Internal",
            "*.svc.example.internal",
            "  ",
        ],
        &[],
    );
    for url in [
        "http://10.1.2.200/",
        "http://127.0.0.5:9000/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://192.168.1.7/",
        "http://[fd00::7]/",
        "http://localhost:3000/",
        "http://hooks.internal/",
        "http://a.svc.example.internal/",
        "http://b.a.svc.example.internal/",
    ] {
        p.check_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    for url in [
        "http://10.1.3.1/",
        "http://192.168.1.8/",
        "http://169.254.169.254/",
        "http://metadata.google.internal/",
    ] {
        assert_eq!(
            p.check_url(url).expect_err(url).code(),
            "url_refused",
            "{url}"
        );
    }
    let addr = |s: &str| s.parse::<SocketAddr>().expect("socket addr");
    // A host entry opens whatever that name resolves to.
    assert!(
        p.check_addr(Some("hooks.internal"), addr("10.9.9.9:80"))
            .is_ok()
    );
    assert!(
        p.check_addr(Some("a.svc.example.internal"), addr("192.168.0.1:443"))
            .is_ok()
    );
    assert!(
        p.check_addr(Some("svc.example.internal"), addr("10.0.0.1:80"))
            .is_err()
    );
    assert!(
        p.check_addr(Some("evilsvc.example.internal"), addr("10.0.0.1:80"))
            .is_err()
    );
    assert!(p.check_addr(None, addr("[::ffff:127.0.0.9]:80")).is_ok());
    assert!(p.check_addr(None, addr("[fe80::1]:80")).is_err());
}

#[test]
fn bad_allow_entries_are_reported_with_the_entry() {
    for bad in [
        "10.0.0.0/33",
        "10.0.0/8",
        "fd00::/129",
        "http://example.com",
        "*",
        "*.",
        "exa mple.com",
        "1.2.3.4:80",
    ] {
        let err = OutboundPolicy::new(&strings(&[bad]), &[]).expect_err(bad);
        assert_eq!(err.code(), "config", "{bad}");
        assert!(
            matches!(&err, OutboundError::Config { entry, .. } if entry == bad),
            "{err}"
        );
        assert!(err.to_string().contains(bad), "{err}");
    }
    let err = OutboundPolicy::new(&[], &strings(&["http://[bad"])).expect_err("comfyui url");
    assert_eq!(err.code(), "config");
}

#[test]
fn comfyui_is_refused_even_when_everything_is_allowed() {
    let p = policy(
        &["0.0.0.0/0", "::/0", "localhost", "*.internal"],
        &[
            "http://127.0.0.1:8188",
            "comfy.internal:8190",
            "http://[fd00::5]:8191/",
        ],
    );
    for url in [
        "http://127.0.0.1:8188/interrupt",
        "http://127.0.0.2:8188/interrupt",
        "http://[::ffff:127.0.0.1]:8188/interrupt",
        "http://[::1]:8188/",
        "http://0.0.0.0:8188/",
        "http://localhost:8188/interrupt",
        "http://LocalHost.:8188/prompt",
        "http://comfy.internal:8190/interrupt",
        "http://COMFY.INTERNAL.:8190/",
        "http://[fd00::5]:8191/",
    ] {
        let err = p.check_url(url).expect_err(url);
        assert_eq!(err.code(), "url_refused", "{url}");
        assert!(err.to_string().contains("ComfyUI"), "{err}");
    }
    for url in [
        "http://127.0.0.1:8189/",
        "http://localhost:9000/",
        "http://comfy.internal:8188/",
        "http://10.0.0.1:8188/",
        "http://[fd00::5]:8188/",
    ] {
        p.check_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let addr = |s: &str| s.parse::<SocketAddr>().expect("socket addr");
    assert!(
        p.check_addr(Some("x.example"), addr("127.0.0.1:8188"))
            .is_err()
    );
    assert!(
        p.check_addr(Some("x.example"), addr("127.0.0.1:0"))
            .is_err(),
        "unknown port"
    );
    assert!(
        p.check_addr(Some("x.example"), addr("127.0.0.1:8189"))
            .is_ok()
    );
}

/// Resolves `name` with the guarding resolver as a request to `port` would.
async fn resolve(
    p: &OutboundPolicy,
    name: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, OutboundError> {
    let resolver = GuardResolver::new(p.clone());
    let name = name.parse().expect("resolver name");
    // The resolver reads the port when `resolve` is called, so the call must happen inside the scope.
    match with_port(port, async { resolver.resolve(name).await }).await {
        Ok(addrs) => Ok(addrs.collect()),
        Err(err) => Err(err
            .downcast_ref::<OutboundError>()
            .cloned()
            .unwrap_or_else(|| panic!("resolver error is not ours: {err}"))),
    }
}

#[tokio::test]
async fn localhost_resolving_to_loopback_is_refused_without_allow() {
    let err = resolve(&policy(&[], &[]), "localhost", 80)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "url_refused");
    assert!(err.to_string().contains("localhost (resolved to "), "{err}");
    let addrs = resolve(&policy(&["localhost"], &[]), "localhost", 80)
        .await
        .expect("allowed");
    assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
}

#[tokio::test]
async fn comfyui_is_refused_at_resolution_by_host_and_port() {
    let p = policy(
        &["0.0.0.0/0", "::/0", "localhost"],
        &["http://127.0.0.1:8188"],
    );
    let err = resolve(&p, "localhost", 8188).await.expect_err("comfyui");
    assert!(err.to_string().contains("ComfyUI"), "{err}");
    assert!(resolve(&p, "localhost", 8189).await.is_ok());
}

#[test]
fn reload_replaces_the_allow_list_and_only_adds_comfyui_servers() {
    let p = policy(&["10.0.0.0/8"], &["http://10.0.0.5:8188"]);
    let clone = p.clone();
    assert!(p.check_url("http://10.1.1.1/a.png").is_ok());
    assert!(p.check_url("http://192.168.1.9/a.png").is_err());
    p.update(
        &strings(&["192.168.0.0/16"]),
        &strings(&["http://192.168.1.7:8188"]),
    )
    .expect("valid update");
    // Every clone (API, worker, webhooks, resolver) sees the new rules.
    for q in [&p, &clone] {
        assert!(q.check_url("http://192.168.1.9/a.png").is_ok());
        assert!(q.check_url("http://10.1.1.1/a.png").is_err());
        let added = q.check_url("http://192.168.1.7:8188/prompt").unwrap_err();
        assert!(added.to_string().contains("ComfyUI"), "{added}");
        // The old server stays refused: it may still be draining, and it has no authentication.
        let kept = q.check_url("http://10.0.0.5:8188/prompt").unwrap_err();
        assert!(kept.to_string().contains("ComfyUI"), "{kept}");
    }
}

#[test]
fn a_bad_allow_entry_on_reload_keeps_the_old_list_but_adds_the_servers() {
    let p = policy(&["10.0.0.0/8"], &[]);
    let err = p
        .update(
            &strings(&["not a/net"]),
            &strings(&["http://10.0.0.6:8188"]),
        )
        .expect_err("bad entry");
    assert!(err.to_string().contains("not a/net"), "{err}");
    assert!(p.check_url("http://10.1.1.1/a.png").is_ok());
    let comfy = p.check_url("http://10.0.0.6:8188/").unwrap_err();
    assert!(comfy.to_string().contains("ComfyUI"), "{comfy}");
}
