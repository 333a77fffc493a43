//! `GET /metrics`: Prometheus text format. The quick-start's six `dashboard_*` names are written
//! by hand, byte for byte as its exporter did; everything else is `comfydash_*` from a registry.
//! Every value comes from counters and in-memory state, so a scrape costs O(1) in job history.

use std::sync::Mutex;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder, exponential_buckets,
};

use crate::config::QueueConfig;
use crate::servers::Servers;
use crate::store::Snapshot;

/// The metric handles; cheap to share behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    jobs: IntGaugeVec,
    finished: IntCounterVec,
    webhooks: IntCounterVec,
    queue_paused: IntGauge,
    queue_wait: Histogram,
    processing: Histogram,
    webhook_latency: HistogramVec,
    http: IntCounterVec,
    http_latency: HistogramVec,
    server_up: IntGaugeVec,
    server_latency: prometheus::GaugeVec,
    server_vram: IntGaugeVec,
    server_in_flight: IntGaugeVec,
    external: prometheus::GaugeVec,
    sync: Mutex<()>,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Metric definitions are constants: an error here is a programming mistake caught by tests.
    r.unwrap_or_else(|e| panic!("metric definition: {e}"))
}

impl Metrics {
    /// Registers every `comfydash_*` metric.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let secs = exponential_buckets(0.05, 2.0, 16).unwrap_or_default();
        let fast = exponential_buckets(0.001, 2.5, 12).unwrap_or_default();
        let m = Metrics {
            jobs: must(IntGaugeVec::new(
                Opts::new("comfydash_jobs", "Jobs by current state"),
                &["status"],
            )),
            finished: must(IntCounterVec::new(
                Opts::new(
                    "comfydash_jobs_finished_total",
                    "Jobs that reached a terminal state, by state",
                ),
                &["status"],
            )),
            webhooks: must(IntCounterVec::new(
                Opts::new(
                    "comfydash_webhook_events_total",
                    "Webhook events by final outcome (created counts every event)",
                ),
                &["outcome"],
            )),
            queue_paused: must(IntGauge::new(
                "comfydash_queue_paused",
                "1 while the queue is paused",
            )),
            queue_wait: must(Histogram::with_opts(
                HistogramOpts::new(
                    "comfydash_job_queue_wait_seconds",
                    "Time from acceptance to execution start",
                )
                .buckets(secs.clone()),
            )),
            processing: must(Histogram::with_opts(
                HistogramOpts::new(
                    "comfydash_job_processing_seconds",
                    "Time from execution start to end of completed jobs",
                )
                .buckets(secs.clone()),
            )),
            webhook_latency: must(HistogramVec::new(
                HistogramOpts::new(
                    "comfydash_webhook_delivery_seconds",
                    "Latency of webhook delivery attempts by outcome",
                )
                .buckets(fast.clone()),
                &["outcome"],
            )),
            http: must(IntCounterVec::new(
                Opts::new(
                    "comfydash_http_requests_total",
                    "HTTP requests by route, method and status",
                ),
                &["route", "method", "status"],
            )),
            http_latency: must(HistogramVec::new(
                HistogramOpts::new(
                    "comfydash_http_request_duration_seconds",
                    "HTTP request latency by route",
                )
                .buckets(fast),
                &["route"],
            )),
            server_up: must(IntGaugeVec::new(
                Opts::new(
                    "comfydash_server_up",
                    "1 when the ComfyUI server answers its probe",
                ),
                &["server", "status"],
            )),
            server_latency: must(prometheus::GaugeVec::new(
                Opts::new(
                    "comfydash_server_probe_latency_seconds",
                    "Latency of the last successful probe",
                ),
                &["server"],
            )),
            server_vram: must(IntGaugeVec::new(
                Opts::new("comfydash_server_vram_bytes", "VRAM reported by the server"),
                &["server", "kind"],
            )),
            server_in_flight: must(IntGaugeVec::new(
                Opts::new(
                    "comfydash_server_in_flight",
                    "Prompts handed to the server and not finished",
                ),
                &["server"],
            )),
            external: must(prometheus::GaugeVec::new(
                Opts::new(
                    "comfydash_external_metric",
                    "Latest value reported through POST /api/telemetry",
                ),
                &["source", "metric"],
            )),
            registry,
            sync: Mutex::new(()),
        };
        let build = must(IntGaugeVec::new(
            Opts::new("comfydash_build_info", "Build information"),
            &["version"],
        ));
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let r = &m.registry;
        must(r.register(Box::new(build)));
        must(r.register(Box::new(m.jobs.clone())));
        must(r.register(Box::new(m.finished.clone())));
        must(r.register(Box::new(m.webhooks.clone())));
        must(r.register(Box::new(m.queue_paused.clone())));
        must(r.register(Box::new(m.queue_wait.clone())));
        must(r.register(Box::new(m.processing.clone())));
        must(r.register(Box::new(m.webhook_latency.clone())));
        must(r.register(Box::new(m.http.clone())));
        must(r.register(Box::new(m.http_latency.clone())));
        must(r.register(Box::new(m.server_up.clone())));
        must(r.register(Box::new(m.server_latency.clone())));
        must(r.register(Box::new(m.server_vram.clone())));
        must(r.register(Box::new(m.server_in_flight.clone())));
        must(r.register(Box::new(m.external.clone())));
        m
    }

    /// Records a job's end (queue wait and processing time of completed jobs).
    pub fn job_ended(&self, job: &comfydash_wire::Job) {
        if let Some(q) = job.timings.queued_ms {
            self.queue_wait.observe(q as f64 / 1000.0);
        }
        if job.status == comfydash_wire::JobStatus::Completed
            && let Some(p) = job.timings.processing_ms
        {
            self.processing.observe(p as f64 / 1000.0);
        }
    }

    /// Records one webhook delivery attempt (`delivered`, `retry`, `failed`).
    pub fn webhook_attempt(&self, outcome: &str, latency: Duration) {
        self.webhook_latency
            .with_label_values(&[outcome])
            .observe(latency.as_secs_f64());
    }

    /// Records one HTTP request.
    pub fn http_request(&self, route: &str, method: &str, status: u16, latency: Duration) {
        self.http
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.http_latency
            .with_label_values(&[route])
            .observe(latency.as_secs_f64());
    }

    /// Brings counter-backed metrics up to date and renders the whole exposition.
    pub fn render(
        &self,
        snap: &Snapshot,
        servers: &Servers,
        queue: &QueueConfig,
        external: &std::collections::BTreeMap<
            String,
            std::collections::BTreeMap<String, comfydash_wire::ExternalValue>,
        >,
    ) -> String {
        {
            let _guard = self.sync.lock().unwrap_or_else(|e| e.into_inner());
            for st in comfydash_wire::JobStatus::ALL {
                self.jobs
                    .with_label_values(&[st.as_str()])
                    .set(snap.get(st.as_str()) as i64);
            }
            // Persisted totals only grow, also across restarts: add what is new since the last scrape.
            for st in ["completed", "failed", "cancelled"] {
                let c = self.finished.with_label_values(&[st]);
                let total = snap.get(&format!("finished_{st}"));
                c.inc_by(total.saturating_sub(c.get()));
            }
            for (outcome, key) in [
                ("created", "webhooks_total"),
                ("delivered", "webhooks_delivered"),
                ("failed", "webhooks_failed"),
            ] {
                let c = self.webhooks.with_label_values(&[outcome]);
                c.inc_by(snap.get(key).saturating_sub(c.get()));
            }
            self.queue_paused.set(snap.paused as i64);
            // Reset, so a server removed on reload leaves no stale series behind.
            self.server_up.reset();
            self.server_latency.reset();
            self.server_vram.reset();
            self.server_in_flight.reset();
            for s in servers.all() {
                self.server_up
                    .with_label_values(&[&s.name, s.status.as_str()])
                    .set(s.status.is_up() as i64);
                if let Some(l) = s.latency_ms {
                    self.server_latency
                        .with_label_values(&[&s.name])
                        .set(l as f64 / 1000.0);
                }
                if let Some((total, free)) = s.vram {
                    self.server_vram
                        .with_label_values(&[&s.name, "total"])
                        .set(total as i64);
                    self.server_vram
                        .with_label_values(&[&s.name, "used"])
                        .set(total.saturating_sub(free) as i64);
                }
                self.server_in_flight
                    .with_label_values(&[&s.name])
                    .set(s.in_flight as i64);
            }
            self.external.reset();
            for (source, metrics) in external {
                for (name, v) in metrics {
                    self.external
                        .with_label_values(&[source, name])
                        .set(v.value);
                }
            }
        }
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut out = String::from_utf8(buf).unwrap_or_default();
        out.push_str(&legacy(snap, queue));
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The quick-start's exporter output (section 7), same names, help, types and values.
fn legacy(snap: &Snapshot, queue: &QueueConfig) -> String {
    let pending = snap.get("pending");
    let level = match crate::api::queue_health(pending, queue) {
        comfydash_wire::QueueHealth::Good => 0,
        comfydash_wire::QueueHealth::Moderate => 1,
        comfydash_wire::QueueHealth::High => 2,
    };
    let rate =
        crate::api::rate(snap.get("webhooks_delivered"), snap.get("webhooks_failed")) / 100.0;
    format!(
        "# HELP dashboard_jobs_total Total number of jobs\n\
         # TYPE dashboard_jobs_total gauge\n\
         dashboard_jobs_total {}\n\
         # HELP dashboard_jobs_pending Pending jobs in queue\n\
         # TYPE dashboard_jobs_pending gauge\n\
         dashboard_jobs_pending {}\n\
         # HELP dashboard_jobs_processing Currently processing jobs\n\
         # TYPE dashboard_jobs_processing gauge\n\
         dashboard_jobs_processing {}\n\
         # HELP dashboard_jobs_completed Completed jobs\n\
         # TYPE dashboard_jobs_completed counter\n\
         dashboard_jobs_completed {}\n\
         # HELP dashboard_queue_health Queue health status (0=healthy, 1=warning, 2=critical)\n\
         # TYPE dashboard_queue_health gauge\n\
         dashboard_queue_health {}\n\
         # HELP dashboard_webhook_success_rate Webhook success rate\n\
         # TYPE dashboard_webhook_success_rate gauge\n\
         dashboard_webhook_success_rate {}\n",
        snap.get("total"),
        pending,
        snap.get("processing"),
        snap.get("completed"),
        level,
        rate
    )
}
