//! The event a terminal job produces: its JSON body (outputs as absolute URLs from
//! `webhooks.public_url`), and at send time the body with outputs inlined when the job asked.

use std::path::Path;

use base64::Engine;
use comfydash_wire::{Job, WebhookEventType, WebhookJob, WebhookOutput, WebhookPayload};

use crate::store::NewWebhookEvent;

/// The outbox row for a job that just ended, or `None` when it has no webhook or has not ended.
pub fn event_for(job: &Job, public_url: &str, now_ms: i64) -> Option<NewWebhookEvent> {
    let url = job.webhook_url.clone()?;
    let kind = WebhookEventType::for_status(job.status)?;
    let base = public_url.trim_end_matches('/');
    let id = &job.job_id;
    let payload = WebhookPayload {
        kind,
        timestamp: chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default(),
        data: WebhookJob {
            job_id: id.clone(),
            status: job.status,
            outputs: job
                .outputs
                .iter()
                .map(|o| WebhookOutput {
                    index: o.index,
                    url: format!("{base}/api/jobs/{id}/outputs/{}", o.index),
                    filename: o.filename.clone(),
                    content_type: o.content_type.clone(),
                    size: o.size,
                    sha256: o.sha256.clone(),
                    base64: None,
                })
                .collect(),
            error: job.error.clone(),
            timings: job.timings.clone(),
            attempts: job.attempt,
            params: job.params.clone(),
            created_at: job.created_at,
            finished_at: job.finished_at,
        },
    };
    Some(NewWebhookEvent {
        id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        job_id: id.0.clone(),
        host: host_key(&url),
        url,
        kind,
        // A wire type always serialises.
        payload: serde_json::to_string(&payload).unwrap_or_default(),
        inline_outputs: job.output_base64 && !job.outputs.is_empty(),
        at_ms: now_ms,
    })
}

/// `host:port` of a URL, lowercase: the key of the per-host limit ("" when it does not parse;
/// the send then fails on the outbound rules).
pub fn host_key(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_ascii_lowercase();
            Some(format!("{host}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_default()
}

/// The bytes to post: the stored payload, with each output's file inlined when asked. Files are
/// read here rather than stored with the event, so the job's end never waits on them.
pub async fn body(payload: &str, inline: bool, data_dir: &Path) -> Vec<u8> {
    if !inline {
        return payload.as_bytes().to_vec();
    }
    let Ok(mut p) = serde_json::from_str::<WebhookPayload>(payload) else {
        return payload.as_bytes().to_vec();
    };
    let job_id = p.data.job_id.0.clone();
    for o in &mut p.data.outputs {
        let path = crate::worker::output_path(data_dir, &job_id, o.index, &o.filename);
        match tokio::fs::read(&path).await {
            Ok(bytes) => o.base64 = Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            Err(e) => {
                tracing::warn!(job = %job_id, output = o.index, error = %e, "webhook: output file unreadable; sent without base64");
            }
        }
    }
    serde_json::to_vec(&p).unwrap_or_else(|_| payload.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys() {
        assert_eq!(host_key("https://Example.com/x?t=1"), "example.com:443");
        assert_eq!(host_key("http://127.0.0.1:9000/h"), "127.0.0.1:9000");
        assert_eq!(host_key("not a url"), "");
    }
}
