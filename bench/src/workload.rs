//! What the benchmarks submit: Lensia-style text jobs (the daemon fills its `text2img`
//! template) and the same graph filled by hand, for clients that talk to ComfyUI directly.

use serde_json::{Value, json};

/// A text prompt, as the Lensia backend sends it.
pub const PROMPT: &str = "a red bicycle leaning on a stone wall at dawn, soft light";

/// `POST /api/jobs` body of a text job; `seed` differs per job so ComfyUI's cache never
/// answers instead of running it.
pub fn text_job(job_id: &str, seed: u64) -> Value {
    json!({"job_id": job_id, "prompt": PROMPT, "params": {"seed": seed}})
}

/// The built-in `text2img` template filled with its defaults, `PROMPT` and `seed`: what the
/// daemon sends to ComfyUI for [`text_job`] (output prefix aside).
pub fn graph(seed: u64, filename_prefix: &str) -> Value {
    json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": filename_prefix, "images": ["8", 0]}}
    })
}
