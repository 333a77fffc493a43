//! Test harness: a simulator on 127.0.0.1:0, an HTTP client, a WebSocket reader and fixtures.

use std::time::Duration;

use comfydash_sim::{Sim, SimConfig};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait for anything in these tests.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A running simulator plus an HTTP client.
pub struct Harness {
    pub sim: Sim,
    pub http: reqwest::Client,
}

impl Harness {
    /// A simulator whose jobs take a few milliseconds.
    pub async fn start() -> Harness {
        Harness::with(SimConfig {
            exec_time: Duration::from_millis(4),
            ..SimConfig::default()
        })
        .await
    }

    /// A simulator with a given config.
    pub async fn with(config: SimConfig) -> Harness {
        let sim = Sim::start(config).await.expect("sim starts");
        let http = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .expect("client");
        Harness { sim, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.url())
    }

    /// POSTs a JSON body; returns status and raw text.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, String) {
        let resp = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("post");
        let status = resp.status();
        (status, resp.text().await.expect("body"))
    }

    /// POSTs raw bytes.
    pub async fn post_raw(&self, path: &str, body: &'static str) -> (StatusCode, String) {
        let resp = self
            .http
            .post(self.url(path))
            .body(body)
            .send()
            .await
            .expect("post");
        let status = resp.status();
        (status, resp.text().await.expect("body"))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self.http.get(self.url(path)).send().await.expect("get");
        let status = resp.status();
        (status, resp.text().await.expect("body"))
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_str(&body).expect("json")
    }

    /// Submits a prompt body and expects 200.
    pub async fn submit(&self, body: Value) -> Value {
        let (status, text) = self.post("/api/prompt", &body).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str(&text).expect("json")
    }

    /// Polls /history/{id} until the job is there.
    pub async fn wait_history(&self, prompt_id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let h = self.get_json(&format!("/api/history/{prompt_id}")).await;
            if let Some(entry) = h.get(prompt_id) {
                return entry.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{prompt_id} never reached history"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Polls /queue until the job is the running one.
    pub async fn wait_running(&self, prompt_id: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let q = self.get_json("/api/queue").await;
            if q["queue_running"]
                .as_array()
                .is_some_and(|r| r.iter().any(|j| j[1] == prompt_id))
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{prompt_id} never ran"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until `cond` holds, polling.
    pub async fn wait_until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !cond() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Uploads a file through /upload/image.
    pub async fn upload(
        &self,
        name: &str,
        bytes: Vec<u8>,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
        let mut form = reqwest::multipart::Form::new().part("image", part);
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        let resp = self
            .http
            .post(self.url("/api/upload/image"))
            .multipart(form)
            .send()
            .await
            .expect("upload");
        let status = resp.status();
        (status, resp.text().await.expect("body"))
    }

    /// Downloads an output item (`{"filename","subfolder","type"}`) through /view.
    pub async fn view(&self, item: &Value) -> Vec<u8> {
        let resp = self
            .http
            .get(self.url("/api/view"))
            .query(&[
                ("filename", item["filename"].as_str().expect("filename")),
                ("subfolder", item["subfolder"].as_str().expect("subfolder")),
                ("type", item["type"].as_str().expect("type")),
            ])
            .send()
            .await
            .expect("view");
        assert_eq!(resp.status(), StatusCode::OK);
        resp.bytes().await.expect("bytes").to_vec()
    }

    pub async fn ws(&self, client_id: &str) -> Ws {
        Ws::connect(&self.sim.ws_url(client_id)).await
    }
}

/// One frame from the server.
#[derive(Debug)]
pub enum Frame {
    Text(Value),
    Binary(Vec<u8>),
    Closed,
}

/// A WebSocket client.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(url: &str) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connects");
        Ws { stream }
    }

    /// The next frame, or `None` if nothing arrives within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Frame> {
        match tokio::time::timeout(wait, self.stream.next()).await {
            Err(_) => None,
            Ok(Some(Ok(Message::Text(t)))) => {
                Some(Frame::Text(serde_json::from_str(t.as_str()).expect("json")))
            }
            Ok(Some(Ok(Message::Binary(b)))) => Some(Frame::Binary(b.to_vec())),
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => Some(Frame::Closed),
            Ok(Some(Ok(_))) => Box::pin(self.next_within(wait)).await,
        }
    }

    /// The next text message (binary frames skipped).
    pub async fn next_json(&mut self) -> Value {
        loop {
            match self.next_within(PATIENCE).await {
                Some(Frame::Text(v)) => return v,
                Some(Frame::Binary(_)) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Every frame until `executing` with node null for `prompt_id` (inclusive).
    pub async fn until_done(&mut self, prompt_id: &str) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next_within(PATIENCE).await.expect("job finishes");
            let done = matches!(&frame, Frame::Text(v) if v["type"] == "executing"
                && v["data"]["node"].is_null() && v["data"]["prompt_id"] == prompt_id);
            assert!(
                !matches!(frame, Frame::Closed),
                "socket closed before {prompt_id} finished"
            );
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// Frames arriving within `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next_within(wait).await {
            let closed = matches!(frame, Frame::Closed);
            frames.push(frame);
            if closed {
                break;
            }
        }
        frames
    }

    pub async fn send_json(&mut self, v: Value) {
        self.stream
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
        // Drain until the server acknowledges, so it has seen the close.
        while let Some(Ok(_)) = self.stream.next().await {}
    }
}

/// The text events of a frame list, `(type, data)`.
pub fn events(frames: &[Frame]) -> Vec<(String, Value)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Text(v) => Some((
                v["type"].as_str().unwrap_or_default().to_string(),
                v["data"].clone(),
            )),
            _ => None,
        })
        .collect()
}

/// F1: EmptyImage → SaveImage.
pub fn f1(color: u32, prefix: &str) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}}
    })
}

/// An RGB PNG whose pixels come from `f(x, y)`.
pub fn png(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("header");
        let f = &f;
        let data: Vec<u8> = (0..height)
            .flat_map(|y| (0..width).flat_map(move |x| f(x, y)))
            .collect();
        w.write_image_data(&data).expect("data");
    }
    out
}

/// Decodes a PNG to (width, height, rgb bytes).
pub fn decode(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let d = comfydash_sim::decode_png(bytes).expect("png");
    (d.width, d.height, d.rgb)
}
