//! `comfydash submit`: builds a `POST /api/jobs` request from flags and files, sends it, and
//! optionally waits for the job to end.

use anyhow::{Context, bail};
use base64::Engine;
use comfydash_wire::{JobId, Prompt, SubmitJob};
use serde_json::{Map, Value};

use super::jobs::wait;
use super::{client, print_json};
use crate::cli::SubmitArgs;
use crate::exit::Exit;

/// Submits the job; with `--wait`, the exit code tells how it ended.
pub async fn run(args: SubmitArgs) -> anyhow::Result<Exit> {
    let request = request(&args)?;
    let client = client(&args.remote);
    let submitted = client.submit(&request).await?;
    let id = submitted.job.job_id.0.clone();
    if !args.wait {
        if args.remote.json {
            let mut v = serde_json::to_value(&submitted.job)?;
            v["created"] = Value::Bool(submitted.created);
            print_json(&v)?;
        } else {
            outln!("{id}");
        }
    } else if !args.remote.json {
        // The id first, so a script or a person can follow the job while we wait.
        outln!("{id}");
    }
    if !submitted.created {
        eprintln!(
            "comfydash: job {id} was already submitted with this request (status {})",
            submitted.job.status
        );
    }
    if !args.wait {
        return Ok(Exit::Success);
    }
    let job = wait::until_done(&client, &id, args.wait_timeout).await?;
    wait::report(&job, args.remote.json)
}

/// The request the flags describe.
fn request(args: &SubmitArgs) -> anyhow::Result<SubmitJob> {
    let prompt = match (&args.prompt, &args.workflow_file) {
        (Some(text), None) => Prompt::Text(text.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read workflow file {}", path.display()))?;
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("workflow file {} is not JSON", path.display()))?;
            Prompt::Graph(
                graph(value).with_context(|| format!("workflow file {}", path.display()))?,
            )
        }
        // clap requires exactly one of the two.
        _ => bail!("give a prompt or --workflow-file, not both"),
    };
    let input_image_base64 = match &args.image_file {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read image file {}", path.display()))?;
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        None => None,
    };
    let params = if args.params.is_empty() {
        None
    } else {
        Some(Value::Object(params(&args.params)?))
    };
    Ok(SubmitJob {
        job_id: JobId(
            args.job_id
                .clone()
                .unwrap_or_else(|| format!("cli-{}", uuid::Uuid::new_v4())),
        ),
        prompt,
        input_image_url: args.image.clone(),
        input_image_base64,
        webhook_url: args.webhook.clone(),
        params,
        workflow: args.workflow.clone(),
        priority: args.priority,
        timeout_s: args.timeout_s,
        output_base64: args.output_base64.then_some(true),
    })
}

/// The API-format graph in a workflow file: the bare graph, or the `prompt` of a `/prompt` body.
fn graph(value: Value) -> anyhow::Result<Map<String, Value>> {
    let Value::Object(mut map) = value else {
        bail!("expected a JSON object of nodes");
    };
    if map.get("nodes").is_some_and(Value::is_array) && map.contains_key("links") {
        bail!("this is a UI-format workflow; export it from ComfyUI with \"Export (API)\" instead");
    }
    // A node named "prompt" would have a class_type; a /prompt body's `prompt` holds nodes.
    let wrapped = map
        .get("prompt")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.contains_key("class_type"));
    if wrapped && let Some(Value::Object(inner)) = map.remove("prompt") {
        return Ok(inner);
    }
    Ok(map)
}

/// `key=value` pairs as an object; a value that parses as JSON is that JSON, else a string.
fn params(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for pair in pairs {
        let Some((key, raw)) = pair.split_once('=') else {
            bail!("--param {pair:?} is not KEY=VALUE");
        };
        if key.is_empty() {
            bail!("--param {pair:?} has an empty key");
        }
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn params_are_json_when_they_parse() {
        let p = params(&[
            "seed=7".into(),
            "name=red bike".into(),
            "tags=[\"a\"]".into(),
            "eq=a=b".into(),
            "empty=".into(),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"seed": 7, "name": "red bike", "tags": ["a"], "eq": "a=b", "empty": ""})
        );
        assert!(params(&["novalue".into()]).is_err());
    }

    #[test]
    fn graph_bare_or_wrapped() {
        let node = json!({"class_type": "KSampler", "inputs": {}});
        let bare = json!({"3": node});
        assert_eq!(Value::Object(graph(bare.clone()).unwrap()), bare);
        let wrapped = json!({"prompt": {"3": node}, "client_id": "x"});
        assert_eq!(Value::Object(graph(wrapped).unwrap()), bare);
        let named_prompt = json!({"prompt": node});
        assert_eq!(
            Value::Object(graph(named_prompt.clone()).unwrap()),
            named_prompt
        );
        assert!(graph(json!({"nodes": [], "links": []})).is_err());
        assert!(graph(json!([1])).is_err());
    }
}
