//! Workflow templates: API-format graphs with `{{placeholders}}`, filled per job.
//!
//! A placeholder is `{{prompt}}`, `{{input_image}}` or `{{params.NAME}}` (a dotted path into
//! the job's params), optionally with a default after `|`: a JSON literal (`{{params.steps|20}}`)
//! or `random` (a fresh 32-bit seed). A string that is exactly one placeholder takes the typed
//! value (a number stays a number); inside a longer string the value is interpolated.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

/// Templates shipped with comfydash.
const BUILTIN: &[(&str, &str)] = &[
    (
        "text2img",
        include_str!("../../assets/workflows/text2img.json"),
    ),
    (
        "img2img",
        include_str!("../../assets/workflows/img2img.json"),
    ),
];

/// Why a template could not be loaded or filled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// No template by that name.
    #[error("unknown workflow template {0:?}")]
    Unknown(String),
    /// A template file is not an API-format graph.
    #[error("workflow template {name}: {reason}")]
    Invalid {
        /// Template.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A placeholder has no value and no default.
    #[error(
        "placeholder {{{{{0}}}}} has no value (send it in params or give the template a default)"
    )]
    Unfilled(String),
    /// An image was sent to a template that cannot use one.
    #[error(
        "workflow {0:?} has no {{{{input_image}}}} placeholder, but the job sends an input image"
    )]
    ImageUnused(String),
    /// The template needs an image and the job sent none.
    #[error("workflow {0:?} needs an input image (input_image_url or input_image_base64)")]
    ImageMissing(String),
}

/// One template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Name (file stem).
    pub name: String,
    /// The graph.
    pub graph: Map<String, Value>,
    /// Placeholder names, sorted.
    pub placeholders: Vec<String>,
    /// Where it came from (`builtin` or a path).
    pub source: String,
}

impl Template {
    /// Parses a template from JSON text.
    pub fn parse(name: &str, text: &str, source: &str) -> Result<Template, TemplateError> {
        let invalid = |reason: String| TemplateError::Invalid {
            name: name.into(),
            reason,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        // Accept a whole /prompt body too, as people save those.
        let graph = match v {
            Value::Object(m) => match m.get("prompt") {
                Some(Value::Object(g)) if !g.contains_key("class_type") => g.clone(),
                _ => m,
            },
            _ => return Err(invalid("not a JSON object".into())),
        };
        for (id, node) in &graph {
            if node.get("class_type").and_then(Value::as_str).is_none() {
                return Err(invalid(format!("node {id} has no class_type")));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        collect(&Value::Object(graph.clone()), &mut names);
        Ok(Template {
            name: name.into(),
            graph,
            placeholders: names.into_iter().collect(),
            source: source.into(),
        })
    }

    /// Whether it takes an input image.
    pub fn takes_image(&self) -> bool {
        self.placeholders.iter().any(|p| p == "input_image")
    }

    /// Node classes it uses.
    pub fn classes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .graph
            .values()
            .filter_map(|n| {
                n.get("class_type")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Values for placeholders.
#[derive(Debug, Clone, Default)]
pub struct FillValues<'a> {
    /// Text prompt.
    pub prompt: Option<&'a str>,
    /// Name of the uploaded image as LoadImage takes it.
    pub input_image: Option<&'a str>,
    /// The job's params.
    pub params: Option<&'a Value>,
}

fn placeholders_in(s: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = s[from..].find("{{").map(|i| i + from) {
        let Some(end) = s[start + 2..].find("}}").map(|i| i + start + 2) else {
            break;
        };
        out.push((start, end + 2, s[start + 2..end].trim()));
        from = end + 2;
    }
    out
}

fn split(ph: &str) -> (&str, Option<&str>) {
    match ph.split_once('|') {
        Some((n, d)) => (n.trim(), Some(d.trim())),
        None => (ph, None),
    }
}

fn collect(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::String(s) => {
            for (_, _, ph) in placeholders_in(s) {
                out.insert(split(ph).0.to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect(x, out)),
        _ => {}
    }
}

fn lookup(name: &str, vals: &FillValues) -> Option<Value> {
    match name {
        "prompt" => vals.prompt.map(|p| Value::String(p.into())),
        "input_image" => vals.input_image.map(|p| Value::String(p.into())),
        _ => {
            let path = name.strip_prefix("params.")?;
            let mut cur = vals.params?;
            for part in path.split('.') {
                cur = cur.get(part)?;
            }
            (!cur.is_null()).then(|| cur.clone())
        }
    }
}

fn resolve(ph: &str, vals: &FillValues) -> Result<Value, TemplateError> {
    let (name, default) = split(ph);
    if let Some(v) = lookup(name, vals) {
        return Ok(v);
    }
    match default {
        Some("random") => Ok(Value::from(rand::random::<u32>())),
        Some(d) => serde_json::from_str(d).or_else(|_| Ok(Value::String(d.to_string()))),
        None => Err(TemplateError::Unfilled(name.to_string())),
    }
}

fn fill_value(v: &Value, vals: &FillValues) -> Result<Value, TemplateError> {
    Ok(match v {
        Value::String(s) => {
            let phs = placeholders_in(s);
            match phs.as_slice() {
                [] => v.clone(),
                [(0, end, ph)] if *end == s.len() => resolve(ph, vals)?,
                _ => {
                    let mut out = String::with_capacity(s.len());
                    let mut last = 0;
                    for (start, end, ph) in phs {
                        out.push_str(&s[last..start]);
                        match resolve(ph, vals)? {
                            Value::String(t) => out.push_str(&t),
                            other => out.push_str(&other.to_string()),
                        }
                        last = end;
                    }
                    out.push_str(&s[last..]);
                    Value::String(out)
                }
            }
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| fill_value(x, vals))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), fill_value(x, vals)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        _ => v.clone(),
    })
}

/// Fills every placeholder of `graph`.
pub fn fill(
    graph: &Map<String, Value>,
    vals: &FillValues,
) -> Result<Map<String, Value>, TemplateError> {
    match fill_value(&Value::Object(graph.clone()), vals)? {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

/// Points every output node's `filename_prefix` at a per-attempt folder, so ComfyUI's cache
/// cannot hand back another job's file and client text never becomes a path.
pub fn rewrite_prefixes(graph: &mut Map<String, Value>, attempt: &str) {
    for (id, node) in graph.iter_mut() {
        if let Some(inputs) = node.get_mut("inputs").and_then(Value::as_object_mut)
            && inputs.contains_key("filename_prefix")
        {
            inputs.insert(
                "filename_prefix".into(),
                Value::String(format!("comfydash/{attempt}/n{id}")),
            );
        }
    }
}

/// All known templates, by name.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    /// Name → template.
    pub by_name: BTreeMap<String, Template>,
    /// Problems found while loading (shown by `GET /api/workflows`).
    pub warnings: Vec<String>,
}

impl Templates {
    /// Built-in templates, overridden and extended by `*.json` in `dir`.
    pub fn load(dir: Option<&Path>) -> Templates {
        let mut t = Templates::default();
        for (name, text) in BUILTIN {
            match Template::parse(name, text, "builtin") {
                Ok(tpl) => {
                    t.by_name.insert(name.to_string(), tpl);
                }
                Err(e) => t.warnings.push(e.to_string()),
            }
        }
        let Some(dir) = dir else { return t };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return t;
        };
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| TemplateError::Invalid {
                    name: name.into(),
                    reason: e.to_string(),
                })
                .and_then(|text| Template::parse(name, &text, &path.display().to_string()));
            match parsed {
                Ok(tpl) => {
                    t.by_name.insert(name.to_string(), tpl);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "workflow template skipped");
                    t.warnings.push(e.to_string());
                }
            }
        }
        t
    }

    /// The template for a text job: the named one, else the default for jobs with or without an image.
    pub fn pick(
        &self,
        name: Option<&str>,
        has_image: bool,
        defaults: (&str, &str),
    ) -> Result<&Template, TemplateError> {
        let name = name.unwrap_or(if has_image { defaults.1 } else { defaults.0 });
        self.by_name
            .get(name)
            .ok_or_else(|| TemplateError::Unknown(name.to_string()))
    }
}

/// Checks at submit time that a job's graph can be filled: every placeholder has a value or a
/// default, and an image is sent exactly when the graph takes one.
pub fn check(
    graph: &Map<String, Value>,
    name: &str,
    prompt: Option<&str>,
    has_image: bool,
    params: Option<&Value>,
) -> Result<(), TemplateError> {
    let mut names = std::collections::BTreeSet::new();
    collect(&Value::Object(graph.clone()), &mut names);
    let takes = names.contains("input_image");
    if has_image && !takes {
        return Err(TemplateError::ImageUnused(name.into()));
    }
    if takes && !has_image {
        return Err(TemplateError::ImageMissing(name.into()));
    }
    let vals = FillValues {
        prompt,
        input_image: has_image.then_some("check.png"),
        params,
    };
    fill(graph, &vals).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn graph(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn typed_values_interpolation_and_defaults() {
        let g = graph(json!({
            "1": {"class_type": "A", "inputs": {"seed": "{{params.seed}}", "steps": "{{params.steps|20}}",
                  "text": "a photo of {{prompt}}, {{params.style|\"plain\"}}", "img": "{{input_image}}",
                  "n": "{{ params.nested.x }}"}}
        }));
        let params = json!({"seed": 42, "nested": {"x": [1, 2]}});
        let out = fill(
            &g,
            &FillValues {
                prompt: Some("a cat"),
                input_image: Some("comfydash/x.png"),
                params: Some(&params),
            },
        )
        .unwrap();
        let inp = &out["1"]["inputs"];
        assert_eq!(inp["seed"], json!(42));
        assert_eq!(inp["steps"], json!(20));
        assert_eq!(inp["text"], json!("a photo of a cat, plain"));
        assert_eq!(inp["img"], json!("comfydash/x.png"));
        assert_eq!(inp["n"], json!([1, 2]));
    }

    #[test]
    fn unfilled_and_image_rules() {
        let g = graph(json!({"1": {"class_type": "A", "inputs": {"seed": "{{params.seed}}"}}}));
        assert_eq!(
            check(&g, "t", Some("x"), false, None),
            Err(TemplateError::Unfilled("params.seed".into()))
        );
        assert_eq!(
            check(&g, "t", Some("x"), true, Some(&json!({"seed": 1}))),
            Err(TemplateError::ImageUnused("t".into()))
        );
        let gi = graph(
            json!({"1": {"class_type": "LoadImage", "inputs": {"image": "{{input_image}}"}}}),
        );
        assert_eq!(
            check(&gi, "t", None, false, None),
            Err(TemplateError::ImageMissing("t".into()))
        );
        assert!(check(&gi, "t", None, true, None).is_ok());
    }

    #[test]
    fn random_seeds_and_prefix_rewrite() {
        let g = graph(
            json!({"1": {"class_type": "KSampler", "inputs": {"seed": "{{params.seed|random}}"}},
                             "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "../../etc/evil", "images": ["1", 0]}}}),
        );
        let mut out = fill(&g, &FillValues::default()).unwrap();
        assert!(out["1"]["inputs"]["seed"].is_u64());
        rewrite_prefixes(&mut out, "abc");
        assert_eq!(
            out["2"]["inputs"]["filename_prefix"],
            json!("comfydash/abc/n2")
        );
        assert_eq!(out["2"]["inputs"]["images"], json!(["1", 0]));
    }

    #[test]
    fn builtin_templates_load() {
        let t = Templates::load(None);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let text = t.pick(None, false, ("text2img", "img2img")).unwrap();
        assert!(!text.takes_image());
        assert!(text.placeholders.contains(&"prompt".to_string()));
        let img = t.pick(None, true, ("text2img", "img2img")).unwrap();
        assert!(img.takes_image());
        assert!(matches!(
            t.pick(Some("nope"), false, ("a", "b")),
            Err(TemplateError::Unknown(_))
        ));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[{}|a-z. ]{0,24}".prop_map(Value::from),
            "\\{\\{(prompt|input_image|params\\.[a-z]{1,3})(\\|[0-9a-z\"]{1,5})?\\}\\}"
                .prop_map(Value::from),
        ]
    }

    fn json_tree() -> impl Strategy<Value = Value> {
        json_leaf().prop_recursive(3, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("[a-z0-9]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Arbitrary graphs and params never panic the filler; when it succeeds no whole-value
        /// placeholder with a value is left behind.
        #[test]
        fn filler_never_panics(graph in proptest::collection::btree_map("[0-9]{1,2}", json_tree(), 0..5),
                               params in json_tree(), prompt in "[ -~]{0,20}") {
            let graph: Map<String, Value> = graph.into_iter().collect();
            let vals = FillValues { prompt: Some(&prompt), input_image: Some("in.png"), params: Some(&params) };
            if let Ok(out) = fill(&graph, &vals) {
                let text = Value::Object(out).to_string();
                prop_assert!(!text.contains("{{prompt}}") && !text.contains("{{input_image}}"));
            }
            let _ = check(&graph, "t", Some(&prompt), true, Some(&params));
        }

        /// Prefix rewriting never lets client text into a path.
        #[test]
        fn prefixes_are_always_ours(prefix in "[ -~]{0,40}") {
            let mut g = json!({"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix}}})
                .as_object().cloned().unwrap_or_default();
            rewrite_prefixes(&mut g, "abc");
            prop_assert_eq!(&g["9"]["inputs"]["filename_prefix"], &json!("comfydash/abc/n9"));
        }
    }
}
