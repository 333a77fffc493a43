//! Per-node validation (ComfyUI's `validate_inputs`): required inputs, links and their types,
//! casts, min/max, combos and LoadImage's own file check, recursing up the links.

use std::collections::HashSet;

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::NodeResult;
use super::cast::{compare, py_float, py_int, py_string};
use crate::files::{Dirs, Folder};
use crate::nodes::{InputSpec, InputType, NodeClass};
use crate::pyfmt::{py_repr, py_str, py_type_name};

/// A Python exception raised inside the validator.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{type_name}: {message}")]
pub struct PyException {
    /// Exception type as `full_type_name` prints it (`KeyError`).
    pub type_name: String,
    /// `str(exception)`.
    pub message: String,
    /// `traceback.format_tb` lines.
    pub traceback: Vec<String>,
}

impl PyException {
    fn new(type_name: &str, message: String, code: &str) -> PyException {
        let frame = |func: &str, line: u32, code: &str| {
            format!("  File \"/opt/ComfyUI/execution.py\", line {line}, in {func}\n    {code}\n")
        };
        PyException {
            type_name: type_name.into(),
            message,
            traceback: vec![
                frame(
                    "validate_prompt",
                    1182,
                    "m = await validate_inputs(prompt_id, prompt, o, validated)",
                ),
                frame("validate_inputs", 941, code),
            ],
        }
    }

    /// The `exception_during_validation` reason attached to an output node.
    pub fn as_validation_error(&self) -> Value {
        json!({
            "type": "exception_during_validation",
            "message": "Exception when validating node",
            "details": self.message,
            "extra_info": {"exception_type": self.type_name, "traceback": self.traceback},
        })
    }

    fn as_inner_error(&self, input_name: &str, info: &Value, linked: &Value) -> Value {
        json!({
            "type": "exception_during_inner_validation",
            "message": "Exception when validating inner node",
            "details": self.message,
            "extra_info": {
                "input_name": input_name,
                "input_config": info,
                "exception_message": self.message,
                "exception_type": self.type_name,
                "traceback": self.traceback,
                "linked_node": linked,
            },
        })
    }
}

/// Validation state for one prompt: the graph being normalised and the `validated` memo.
pub struct Validator<'a> {
    graph: Map<String, Value>,
    dirs: &'a Dirs,
    validated: IndexMap<String, NodeResult>,
    in_progress: HashSet<String>,
}

fn reason(kind: &str, message: &str, details: String, extra_info: Value) -> Value {
    json!({"type": kind, "message": message, "details": details, "extra_info": extra_info})
}

impl<'a> Validator<'a> {
    /// Starts validating `graph` (already checked for class types).
    pub fn new(graph: Map<String, Value>, dirs: &'a Dirs) -> Validator<'a> {
        Validator {
            graph,
            dirs,
            validated: IndexMap::new(),
            in_progress: HashSet::new(),
        }
    }

    /// Stores a result in the memo, as ComfyUI does for exceptions.
    pub(super) fn record(&mut self, id: &str, result: NodeResult) {
        self.validated.insert(id.to_string(), result);
    }

    /// The memo in insertion order.
    pub(super) fn memo(&self) -> impl Iterator<Item = (&String, &NodeResult)> {
        self.validated.iter()
    }

    /// The class_type of a node.
    pub fn class_name(&self, id: &str) -> String {
        py_str(&self.graph[id]["class_type"])
    }

    /// The normalised graph.
    pub fn into_graph(self) -> Map<String, Value> {
        self.graph
    }

    fn class_of(&self, id: &str) -> NodeClass {
        self.graph[id]["class_type"]
            .as_str()
            .and_then(NodeClass::from_name)
            .unwrap_or(NodeClass::EmptyImage)
    }

    /// Validates a node and, recursively, the nodes it links to.
    pub(super) fn validate_node(&mut self, id: &str) -> Result<NodeResult, PyException> {
        if let Some(r) = self.validated.get(id) {
            return Ok(r.clone());
        }
        if !self.in_progress.insert(id.to_string()) {
            // Python recurses until RecursionError on a cycle.
            let msg = "maximum recursion depth exceeded".to_string();
            return Err(PyException::new(
                "RecursionError",
                msg,
                "r = await validate_inputs(prompt_id, prompt, o_id, validated)",
            ));
        }
        let result = self.check_node(id);
        self.in_progress.remove(id);
        let result = result?;
        self.validated.insert(id.to_string(), result.clone());
        Ok(result)
    }

    fn check_node(&mut self, id: &str) -> Result<NodeResult, PyException> {
        let class = self.class_of(id);
        let inputs = match self.graph[id].get("inputs") {
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                let msg = format!("'{}' object is not subscriptable", py_type_name(other));
                return Err(PyException::new("TypeError", msg, "val = inputs[x]"));
            }
            None => {
                return Err(PyException::new(
                    "KeyError",
                    "'inputs'".into(),
                    "inputs = prompt[unique_id]['inputs']",
                ));
            }
        };
        let mut errors = Vec::new();
        let mut valid = true;
        for spec in class.inputs(self.dirs) {
            let name = spec.name;
            let info = spec.config();
            let Some(val) = inputs.get(name) else {
                let extra = json!({"input_name": name});
                errors.push(reason(
                    "required_input_missing",
                    "Required input is missing",
                    name.into(),
                    extra,
                ));
                continue;
            };
            if let Value::Array(link) = val {
                match self.check_link(name, &spec, &info, val, link)? {
                    LinkOutcome::Ok => {}
                    LinkOutcome::Error(e) => errors.push(e),
                    LinkOutcome::UpstreamInvalid => valid = false,
                }
                continue;
            }
            if let Some(e) = self.check_literal(id, class, &spec, &info, val.clone()) {
                errors.push(e);
            }
        }
        if class.validates_itself()
            && let Some(image) = self.graph[id]["inputs"]
                .get("image")
                .filter(|v| !v.is_array())
        {
            let name = py_str(image);
            if !self.dirs.annotated_path(&name, Folder::Input).exists() {
                let details = format!("image - Invalid image file: {name}");
                let extra = json!({"input_name": "image"});
                errors.push(reason(
                    "custom_validation_failed",
                    "Custom validation failed for node",
                    details,
                    extra,
                ));
            }
        }
        Ok(NodeResult {
            valid: valid && errors.is_empty(),
            reasons: errors,
        })
    }

    fn check_link(
        &mut self,
        name: &str,
        spec: &InputSpec,
        info: &Value,
        val: &Value,
        link: &[Value],
    ) -> Result<LinkOutcome, PyException> {
        if link.len() != 2 {
            let extra = json!({"input_name": name, "input_config": info, "received_value": val});
            let msg = "Bad linked input, must be a length-2 list of [node_id, slot_index]";
            return Ok(LinkOutcome::Error(reason(
                "bad_linked_input",
                msg,
                name.into(),
                extra,
            )));
        }
        let src = match &link[0] {
            Value::String(s) if self.graph.contains_key(s) => s.clone(),
            v @ (Value::Array(_) | Value::Object(_)) => {
                let msg = format!("unhashable type: '{}'", py_type_name(v));
                return Err(PyException::new(
                    "TypeError",
                    msg,
                    "o_class_type = prompt[o_id]['class_type']",
                ));
            }
            other => {
                return Err(PyException::new(
                    "KeyError",
                    py_repr(other),
                    "o_class_type = prompt[o_id]['class_type']",
                ));
            }
        };
        let types = self.class_of(&src).return_types();
        let received = tuple_index(types, &link[1])?;
        if !types_match(received, &spec.type_name()) {
            let details = format!(
                "{name}, received_type({received}) mismatch input_type({})",
                spec.type_name()
            );
            let extra = json!({"input_name": name, "input_config": info, "received_type": received, "linked_node": val});
            let msg = "Return type mismatch between linked nodes";
            return Ok(LinkOutcome::Error(reason(
                "return_type_mismatch",
                msg,
                details,
                extra,
            )));
        }
        match self.validate_node(&src) {
            Ok(r) if r.valid => Ok(LinkOutcome::Ok),
            Ok(_) => Ok(LinkOutcome::UpstreamInvalid),
            Err(ex) => {
                let reasons = vec![ex.as_inner_error(name, info, val)];
                self.validated.insert(
                    src,
                    NodeResult {
                        valid: false,
                        reasons,
                    },
                );
                Ok(LinkOutcome::UpstreamInvalid)
            }
        }
    }

    /// Unwraps `__value__`, casts, stores the cast value in the graph, then runs the range and
    /// combo checks (skipped for inputs the class validates itself).
    fn check_literal(
        &mut self,
        id: &str,
        class: NodeClass,
        spec: &InputSpec,
        info: &Value,
        mut val: Value,
    ) -> Option<Value> {
        let name = spec.name;
        if let Some(inner) = val.get("__value__").filter(|_| val.is_object()) {
            val = inner.clone();
            self.set_input(id, name, val.clone());
        }
        let cast = match spec.ty {
            InputType::Int => Some(py_int(&val)),
            InputType::Float => Some(py_float(&val)),
            InputType::String => Some(Ok(py_string(&val))),
            InputType::Combo(_) | InputType::Link(_) => None,
        };
        match cast {
            Some(Err(ex)) => {
                let ty = spec.type_name();
                let details = format!("{name}, {}, {ex}", py_str(&val));
                let extra = json!({"input_name": name, "input_config": info, "received_value": val, "exception_message": ex});
                let msg = format!("Failed to convert an input value to a {ty} value");
                return Some(reason("invalid_input_type", &msg, details, extra));
            }
            Some(Ok(cast)) => {
                val = cast;
                self.set_input(id, name, val.clone());
            }
            None => {}
        }
        if class.validates_itself() {
            return None;
        }
        let extra = json!({"input_name": name, "input_config": info, "received_value": val});
        if let Some(min) = spec.opts.get("min")
            && compare(&val, min) == Some(std::cmp::Ordering::Less)
        {
            let msg = format!("Value {} smaller than min of {}", py_str(&val), py_str(min));
            return Some(reason("value_smaller_than_min", &msg, name.into(), extra));
        }
        if let Some(max) = spec.opts.get("max")
            && compare(&val, max) == Some(std::cmp::Ordering::Greater)
        {
            let msg = format!("Value {} bigger than max of {}", py_str(&val), py_str(max));
            return Some(reason("value_bigger_than_max", &msg, name.into(), extra));
        }
        if let InputType::Combo(choices) = &spec.ty
            && !val.as_str().is_some_and(|s| choices.iter().any(|c| c == s))
        {
            let (list_info, config) = if choices.len() > 20 {
                (format!("(list of length {})", choices.len()), Value::Null)
            } else {
                (py_repr(&json!(choices)), info.clone())
            };
            let details = format!("{name}: '{}' not in {list_info}", py_str(&val));
            let extra = json!({"input_name": name, "input_config": config, "received_value": val});
            return Some(reason(
                "value_not_in_list",
                "Value not in list",
                details,
                extra,
            ));
        }
        None
    }

    fn set_input(&mut self, id: &str, name: &str, val: Value) {
        if let Some(Value::Object(inputs)) =
            self.graph.get_mut(id).and_then(|n| n.get_mut("inputs"))
        {
            inputs.insert(name.to_string(), val);
        }
    }
}

enum LinkOutcome {
    Ok,
    Error(Value),
    UpstreamInvalid,
}

/// `RETURN_TYPES[slot]` with Python's indexing rules (negative indices count from the end).
fn tuple_index<'t>(types: &[&'t str], slot: &Value) -> Result<&'t str, PyException> {
    let code = "received_type = r[val[1]]";
    let i = match slot {
        Value::Number(n) if !n.is_f64() => n.as_i64().unwrap_or(i64::MAX),
        Value::Bool(b) => i64::from(*b),
        other => {
            let msg = format!(
                "tuple indices must be integers or slices, not {}",
                py_type_name(other)
            );
            return Err(PyException::new("TypeError", msg, code));
        }
    };
    let len = types.len() as i64;
    let idx = if i < 0 { i + len } else { i };
    if !(0..len).contains(&idx) {
        return Err(PyException::new(
            "IndexError",
            "tuple index out of range".into(),
            code,
        ));
    }
    Ok(types[idx as usize])
}

/// ComfyUI's `validate_node_input`: equal, or overlapping comma-separated unions, or `*`.
fn types_match(received: &str, wanted: &str) -> bool {
    if received == wanted {
        return true;
    }
    let split = |s: &str| {
        s.split(',')
            .map(str::trim)
            .map(String::from)
            .collect::<HashSet<_>>()
    };
    let (r, w) = (split(received), split(wanted));
    r.contains("*") || w.contains("*") || r.is_subset(&w)
}
