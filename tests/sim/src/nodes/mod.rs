//! Node classes and what they do when a job runs them: the values passed along links, the
//! arguments a node receives and the dispatch to each class's implementation.

mod catalog;
mod diffusion;
mod image_nodes;
mod output;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

pub use catalog::{InputSpec, InputType, NodeClass, object_info_all};

use crate::files::Dirs;
use crate::image::{Image, Mask};
use crate::pyfmt::{py_str, py_type_name};

/// A latent batch. The simulator keeps pixels instead of latents: the size, plus the image it
/// would decode to once sampled or encoded.
#[derive(Clone, Debug)]
pub struct Latent {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Batch size.
    pub batch: usize,
    /// What VAEDecode returns; `None` for an empty, unsampled latent.
    pub pixels: Option<Arc<Image>>,
}

/// Text conditioning, remembered as text so the sampler's output can depend on it.
#[derive(Clone, Debug)]
pub struct Conditioning {
    /// Prompt text.
    pub text: String,
    /// Checkpoint the CLIP came from.
    pub checkpoint: String,
}

/// A value travelling along a link.
#[derive(Clone, Debug)]
pub enum Datum {
    /// IMAGE.
    Image(Arc<Image>),
    /// MASK.
    Mask(Arc<Mask>),
    /// LATENT.
    Latent(Arc<Latent>),
    /// MODEL (named by its checkpoint).
    Model(Arc<str>),
    /// CLIP (named by its checkpoint).
    Clip(Arc<str>),
    /// VAE (named by its checkpoint).
    Vae(Arc<str>),
    /// CONDITIONING.
    Conditioning(Arc<Conditioning>),
}

impl Datum {
    /// How ComfyUI's `format_value` would print this value in `current_inputs`.
    pub fn describe(&self) -> String {
        match self {
            Datum::Image(i) => i.describe(),
            Datum::Mask(m) => format!(
                "tensor(shape=[{}, {}, {}], dtype=torch.float32)",
                m.batch, m.height, m.width
            ),
            Datum::Latent(l) => format!(
                "{{'samples': tensor(shape=[{}, 4, {}, {}])}}",
                l.batch,
                l.height / 8,
                l.width / 8
            ),
            Datum::Model(n) => format!("<comfy.model_patcher.ModelPatcher object ({n})>"),
            Datum::Clip(n) => format!("<comfy.sd.CLIP object ({n})>"),
            Datum::Vae(n) => format!("<comfy.sd.VAE object ({n})>"),
            Datum::Conditioning(c) => {
                format!("[[tensor(...), {{'pooled_output': ...}}]] ({:?})", c.text)
            }
        }
    }
}

/// One input as a node receives it: a literal (already cast by validation) or a linked value.
#[derive(Clone, Debug)]
pub enum Arg {
    /// A literal widget value.
    Lit(Value),
    /// A value produced by another node.
    Data(Datum),
}

/// A Python exception raised while a node runs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{exception_type}: {message}")]
pub struct NodeError {
    /// Qualified exception type, e.g. `PIL.UnidentifiedImageError`.
    pub exception_type: String,
    /// `str(exception)`.
    pub message: String,
}

impl NodeError {
    /// An exception of a type with a message.
    pub fn new(exception_type: &str, message: impl Into<String>) -> NodeError {
        NodeError {
            exception_type: exception_type.into(),
            message: message.into(),
        }
    }
}

/// The arguments of one node run, by input name.
#[derive(Clone, Debug, Default)]
pub struct Args(pub HashMap<String, Arg>);

impl Args {
    fn get(&self, name: &str) -> Result<&Arg, NodeError> {
        self.0.get(name).ok_or_else(|| {
            NodeError::new(
                "TypeError",
                format!("missing 1 required positional argument: '{name}'"),
            )
        })
    }

    fn lit(&self, name: &str) -> Result<&Value, NodeError> {
        match self.get(name)? {
            Arg::Lit(v) => Ok(v),
            Arg::Data(d) => Err(NodeError::new(
                "TypeError",
                format!("{name}: unexpected {}", d.describe()),
            )),
        }
    }

    /// An INT input.
    pub fn int(&self, name: &str) -> Result<i128, NodeError> {
        let v = self.lit(name)?;
        v.as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from))
            .or_else(|| v.as_f64().map(|f| f as i128))
            .ok_or_else(|| type_error(name, "int", v))
    }

    /// A FLOAT input.
    pub fn float(&self, name: &str) -> Result<f64, NodeError> {
        let v = self.lit(name)?;
        v.as_f64().ok_or_else(|| type_error(name, "float", v))
    }

    /// A STRING or combo input.
    pub fn string(&self, name: &str) -> Result<String, NodeError> {
        Ok(py_str(self.lit(name)?))
    }

    fn data(&self, name: &str) -> Result<&Datum, NodeError> {
        match self.get(name)? {
            Arg::Data(d) => Ok(d),
            Arg::Lit(v) => Err(NodeError::new(
                "AttributeError",
                format!("'{}' object has no attribute 'shape'", py_type_name(v)),
            )),
        }
    }

    /// An IMAGE input.
    pub fn image(&self, name: &str) -> Result<Arc<Image>, NodeError> {
        match self.data(name)? {
            Datum::Image(i) => Ok(i.clone()),
            other => Err(mismatch(name, "IMAGE", other)),
        }
    }

    /// A LATENT input.
    pub fn latent(&self, name: &str) -> Result<Arc<Latent>, NodeError> {
        match self.data(name)? {
            Datum::Latent(l) => Ok(l.clone()),
            other => Err(mismatch(name, "LATENT", other)),
        }
    }

    /// A CONDITIONING input.
    pub fn conditioning(&self, name: &str) -> Result<Arc<Conditioning>, NodeError> {
        match self.data(name)? {
            Datum::Conditioning(c) => Ok(c.clone()),
            other => Err(mismatch(name, "CONDITIONING", other)),
        }
    }

    /// A MODEL, CLIP or VAE input, as its checkpoint name.
    pub fn handle(&self, name: &str) -> Result<Arc<str>, NodeError> {
        match self.data(name)? {
            Datum::Model(n) | Datum::Clip(n) | Datum::Vae(n) => Ok(n.clone()),
            other => Err(mismatch(name, "MODEL/CLIP/VAE", other)),
        }
    }

    /// `current_inputs` of an execution_error: each input formatted in a one-element list.
    pub fn formatted(&self) -> Value {
        let map = self
            .0
            .iter()
            .map(|(k, a)| {
                let v = match a {
                    Arg::Lit(v) => v.clone(),
                    Arg::Data(d) => Value::String(d.describe()),
                };
                (k.clone(), Value::Array(vec![v]))
            })
            .collect();
        Value::Object(map)
    }
}

fn type_error(name: &str, want: &str, v: &Value) -> NodeError {
    NodeError::new(
        "TypeError",
        format!("{name}: expected {want}, got {}", py_type_name(v)),
    )
}

fn mismatch(name: &str, want: &str, got: &Datum) -> NodeError {
    NodeError::new(
        "AttributeError",
        format!("{name}: expected {want}, got {}", got.describe()),
    )
}

/// What the running job provides to output nodes.
pub struct RunContext<'a> {
    /// Data folders.
    pub dirs: &'a Dirs,
    /// The job's graph (PNG `prompt` metadata).
    pub prompt: &'a Value,
    /// `extra_data.extra_pnginfo`.
    pub extra_pnginfo: Option<&'a Value>,
    /// Five random letters for PreviewImage's `_temp_xxxxx` prefix.
    pub temp_tag: String,
}

/// The result of running a node.
#[derive(Clone, Debug, Default)]
pub struct NodeRun {
    /// One value per RETURN_TYPES entry.
    pub outputs: Vec<Datum>,
    /// The UI dict (`{"images": [...]}`) for history and `executed`, if any.
    pub ui: Option<Value>,
    /// PNGs to send as binary ws frames (SaveImageWebsocket).
    pub previews: Vec<Vec<u8>>,
}

/// Runs a node; blocking (file I/O and pixel work), so callers use a blocking thread.
pub fn run(class: NodeClass, args: &Args, ctx: &RunContext<'_>) -> Result<NodeRun, NodeError> {
    match class {
        NodeClass::EmptyImage => image_nodes::empty_image(args),
        NodeClass::LoadImage => image_nodes::load_image(args, ctx.dirs),
        NodeClass::ImageInvert => image_nodes::invert(args),
        NodeClass::ImageBlur => image_nodes::blur(args),
        NodeClass::ImageScale => image_nodes::scale(args),
        NodeClass::SaveImage => output::save_image(args, ctx),
        NodeClass::PreviewImage => output::preview_image(args, ctx),
        NodeClass::SaveImageWebsocket => output::save_websocket(args),
        NodeClass::CheckpointLoaderSimple => diffusion::checkpoint(args),
        NodeClass::CLIPTextEncode => diffusion::clip_encode(args),
        NodeClass::EmptyLatentImage => diffusion::empty_latent(args),
        NodeClass::KSampler => diffusion::ksampler(args),
        NodeClass::VAEDecode => diffusion::vae_decode(args),
        NodeClass::VAEEncode => diffusion::vae_encode(args),
    }
}

/// How many progress steps a node reports (0: none). ImageBlur reports a few although the real
/// node has no progress bar, so clients see progress on image-only graphs too.
pub fn progress_steps(class: NodeClass, args: &Args, run: Option<&NodeRun>) -> u64 {
    match class {
        NodeClass::KSampler => args.int("steps").map_or(1, |s| s.clamp(1, 10_000) as u64),
        NodeClass::ImageBlur => 4,
        NodeClass::SaveImageWebsocket => run.map_or(1, |r| r.previews.len() as u64),
        _ => 0,
    }
}

/// `IS_CHANGED` for classes that have it; `None` means "same as last time unless inputs changed".
pub fn is_changed(class: NodeClass, args_image: Option<&str>, dirs: &Dirs) -> Option<String> {
    match class {
        NodeClass::LoadImage => {
            let path = dirs.annotated_path(args_image.unwrap_or(""), crate::files::Folder::Input);
            Some(match std::fs::read(&path) {
                Ok(bytes) => {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    bytes.hash(&mut h);
                    format!("{:016x}", h.finish())
                }
                // ComfyUI stores NaN here, which never equals itself: the node always reruns.
                Err(_) => format!("nan-{}", uuid::Uuid::new_v4()),
            })
        }
        NodeClass::SaveImageWebsocket => Some(format!("time-{}", uuid::Uuid::new_v4())),
        _ => None,
    }
}
