//! Requests against real servers on loopback: redirects, limits, timeouts, posts and send-time refusals.

use std::time::{Duration, Instant};

use super::super::{Limits, Outbound, OutboundError};
use super::{Reply, TestServer, ok, policy, raw, redirect};

fn outbound(allow: &[&str], comfyui: &[&str]) -> Outbound {
    Outbound::new(policy(allow, comfyui)).expect("client")
}

fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

fn chain(path: &str) -> Reply {
    match path {
        "/r3" => redirect(302, "/r2"),
        "/r2" => redirect(301, "r1"),
        "/r1" => redirect(307, "/final?x=1"),
        "/final?x=1" | "/final" => ok("done"),
        _ => raw("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()),
    }
}

#[tokio::test]
async fn fetch_follows_redirects_up_to_the_limit() {
    let server = TestServer::start("127.0.0.1:0", chain).await;
    let out = outbound(&["127.0.0.0/8"], &[]);
    let fetched = out
        .fetch(&server.url("/r3"), &limits())
        .await
        .expect("fetch");
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, b"done");
    assert_eq!(fetched.final_url.path(), "/final");
    assert_eq!(fetched.content_type.as_deref(), Some("text/plain"));
    assert_eq!(server.paths(), ["/r3", "/r2", "/r1", "/final?x=1"]);

    let two = Limits {
        max_redirects: 2,
        ..limits()
    };
    let err = out
        .fetch(&server.url("/r3"), &two)
        .await
        .expect_err("too many");
    assert!(
        matches!(err, OutboundError::TooManyRedirects { limit: 2 }),
        "{err}"
    );
    assert_eq!(err.code(), "too_many_redirects");

    let err = out
        .fetch(&server.url("/missing"), &limits())
        .await
        .expect_err("404");
    assert!(
        matches!(err, OutboundError::Status { status: 404, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn fetch_through_an_allowed_name_uses_the_guarding_resolver() {
    let server = TestServer::start("127.0.0.1:0", chain).await;
    // A ComfyUI on another loopback port: without the request's port the resolver would refuse.
    let other_port = server.addr.port().wrapping_add(1).max(1);
    let out = outbound(&["localhost"], &[&format!("http://127.0.0.1:{other_port}")]);
    let url = format!("http://localhost:{}/final", server.addr.port());
    let fetched = out.fetch(&url, &limits()).await.expect("fetch");
    assert_eq!(fetched.body, b"done");
}

#[tokio::test]
async fn redirect_to_comfyui_is_refused() {
    let comfy = TestServer::start("127.0.0.1:0", |_| ok("interrupted")).await;
    let port = comfy.addr.port();
    let redirector = TestServer::start("127.0.0.1:0", move |path| match path {
        "/to-ip" => redirect(302, &format!("http://127.0.0.1:{port}/interrupt")),
        _ => redirect(302, &format!("http://localhost:{port}/interrupt")),
    })
    .await;
    let out = outbound(
        &["0.0.0.0/0", "::/0", "localhost"],
        &[&format!("http://127.0.0.1:{port}")],
    );
    for path in ["/to-ip", "/to-name"] {
        let err = out
            .fetch(&redirector.url(path), &limits())
            .await
            .expect_err(path);
        assert_eq!(err.code(), "url_refused", "{path}: {err}");
    }
    let direct = format!("http://localhost:{port}/interrupt");
    let err = out.fetch(&direct, &limits()).await.expect_err("direct");
    assert_eq!(err.code(), "url_refused");
    assert!(comfy.requests().is_empty(), "ComfyUI was reached");
    assert_eq!(redirector.paths(), ["/to-ip", "/to-name"]);
}

#[tokio::test]
async fn redirect_to_an_address_outside_the_allow_list_is_refused() {
    let target = TestServer::start("127.0.0.1:0", |_| ok("secret")).await;
    let port = target.addr.port();
    let redirector = TestServer::start("127.0.0.2:0", move |_| {
        redirect(302, &format!("http://127.0.0.1:{port}/admin"))
    })
    .await;
    let out = outbound(&["127.0.0.2"], &[]);
    let err = out
        .fetch(&redirector.url("/go"), &limits())
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "url_refused", "{err}");
    assert!(
        err.to_string().contains("127.0.0.1 is a loopback address"),
        "{err}"
    );
    assert!(target.requests().is_empty());
}

#[tokio::test]
async fn name_refused_at_send_time_surfaces_as_url_refused() {
    // `send` skips check_url, as a hop would after DNS changed since submit time.
    let server = TestServer::start("127.0.0.1:0", |_| ok("hi")).await;
    let out = outbound(&[], &[]);
    let url = format!("http://localhost:{}/", server.addr.port());
    let client = out.client(limits().connect_timeout).expect("client");
    let request = client.get(&url).build().expect("request");
    let err = out
        .send(&client, request, &limits())
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "url_refused", "{err}");
    assert!(err.to_string().contains("localhost (resolved to "), "{err}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn literal_ip_is_checked_at_send_time() {
    let server = TestServer::start("127.0.0.1:0", |_| ok("hi")).await;
    let out = outbound(&[], &[]);
    let client = out.client(limits().connect_timeout).expect("client");
    let request = client.get(server.url("/")).build().expect("request");
    let err = out
        .send(&client, request, &limits())
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "url_refused", "{err}");
    assert!(server.requests().is_empty());
}

fn sized(path: &str) -> Reply {
    let body = "x".repeat(2000);
    match path {
        "/length" => ok(&body),
        "/small" => ok(&body[..1000]),
        _ => raw(format!(
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{body}"
        )),
    }
}

#[tokio::test]
async fn body_over_the_limit_is_too_large() {
    let server = TestServer::start("127.0.0.1:0", sized).await;
    let out = outbound(&["127.0.0.1"], &[]);
    let small = Limits {
        max_bytes: 1000,
        ..limits()
    };
    for path in ["/length", "/no-length"] {
        let err = out.fetch(&server.url(path), &small).await.expect_err(path);
        assert!(
            matches!(err, OutboundError::TooLarge { limit: 1000 }),
            "{path}: {err}"
        );
        assert_eq!(err.code(), "too_large");
    }
    let fetched = out
        .fetch(&server.url("/small"), &small)
        .await
        .expect("at the limit");
    assert_eq!(fetched.body.len(), 1000);
    for path in ["/length", "/no-length"] {
        let posted = out
            .post(&server.url(path), &[], Vec::new(), &small)
            .await
            .expect(path);
        assert_eq!(posted.status, 200);
        assert_eq!(
            posted.body.len(),
            1000,
            "{path}: post truncates instead of failing"
        );
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = TestServer::start("127.0.0.1:0", |_| Reply::Hang).await;
    let out = outbound(&["127.0.0.1"], &[]);
    let short = Limits {
        timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let started = Instant::now();
    let err = out
        .fetch(&server.url("/"), &short)
        .await
        .expect_err("timeout");
    assert!(matches!(err, OutboundError::Timeout { .. }), "{err}");
    assert_eq!(err.code(), "timeout");
    let err = out
        .post(&server.url("/"), &[], b"{}".to_vec(), &short)
        .await
        .expect_err("timeout");
    assert_eq!(err.code(), "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn post_returns_the_answer_and_does_not_follow_redirects() {
    let server = TestServer::start("127.0.0.1:0", |path| match path {
        "/hook" => raw(
            "HTTP/1.1 201 Created\r\nX-Reply: yes\r\nContent-Length: 6\r\nConnection: close\r\n\r\nthanks"
                .into(),
        ),
        "/moved" => redirect(302, "/elsewhere"),
        _ => ok("should not be reached"),
    })
    .await;
    let out = outbound(&["127.0.0.1"], &[]);
    let headers = vec![
        ("X-Comfydash-Signature".to_owned(), "sha256=abc".to_owned()),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    let posted = out
        .post(
            &server.url("/hook"),
            &headers,
            br#"{"a":1}"#.to_vec(),
            &limits(),
        )
        .await
        .expect("post");
    assert_eq!(posted.status, 201);
    assert_eq!(posted.body, b"thanks");
    assert_eq!(
        posted.headers.get("x-reply").map(|v| v.as_bytes()),
        Some(&b"yes"[..])
    );
    let request = server.requests().remove(0).to_ascii_lowercase();
    assert!(request.starts_with("post /hook "), "{request}");
    assert!(
        request.contains("x-comfydash-signature: sha256=abc"),
        "{request}"
    );
    assert!(request.contains("user-agent: comfydash/"), "{request}");
    assert!(request.ends_with(r#"{"a":1}"#), "{request}");

    let posted = out
        .post(&server.url("/moved"), &[], Vec::new(), &limits())
        .await
        .expect("3xx");
    assert_eq!(posted.status, 302);
    assert_eq!(server.paths(), ["/hook", "/moved"]);

    let bad = vec![("bad header".to_owned(), "x".to_owned())];
    let err = out
        .post(&server.url("/hook"), &bad, Vec::new(), &limits())
        .await
        .expect_err("header");
    assert_eq!(err.code(), "invalid_header");
}

#[tokio::test]
async fn connection_failure_names_the_host_only() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let out = outbound(&["127.0.0.1"], &[]);
    let url = format!("http://127.0.0.1:{port}/hook?token=s3cret");
    let err = out.fetch(&url, &limits()).await.expect_err("closed port");
    assert_eq!(err.code(), "connect_failed", "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}
