//! The node classes the simulator knows: names, input specs, output types and `/object_info` entries,
//! copied from ComfyUI's own definitions so validation errors carry the real `input_config`.

use serde_json::{Value, json};

use crate::files::{Dirs, list_files};

/// A node class (`class_type`) the simulator can validate and run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeClass {
    /// A solid-colour image batch.
    EmptyImage,
    /// Reads an image from input/ (or an annotated folder).
    LoadImage,
    /// `1 - x`.
    ImageInvert,
    /// Gaussian-ish blur.
    ImageBlur,
    /// Resize.
    ImageScale,
    /// Writes PNGs to output/.
    SaveImage,
    /// Writes PNGs to temp/.
    PreviewImage,
    /// Sends PNGs as binary ws frames only.
    SaveImageWebsocket,
    /// Yields MODEL, CLIP and VAE handles for a checkpoint name.
    CheckpointLoaderSimple,
    /// Text → CONDITIONING.
    CLIPTextEncode,
    /// An empty LATENT of a size.
    EmptyLatentImage,
    /// The sampler: reports a progress step per sampling step.
    KSampler,
    /// LATENT → IMAGE.
    VAEDecode,
    /// IMAGE → LATENT.
    VAEEncode,
}

/// Every class, in `/object_info` order.
pub const ALL: [NodeClass; 14] = [
    NodeClass::KSampler,
    NodeClass::CheckpointLoaderSimple,
    NodeClass::CLIPTextEncode,
    NodeClass::VAEDecode,
    NodeClass::VAEEncode,
    NodeClass::EmptyLatentImage,
    NodeClass::SaveImage,
    NodeClass::PreviewImage,
    NodeClass::LoadImage,
    NodeClass::ImageScale,
    NodeClass::ImageInvert,
    NodeClass::ImageBlur,
    NodeClass::EmptyImage,
    NodeClass::SaveImageWebsocket,
];

/// ComfyUI's MAX_RESOLUTION.
const MAX_RESOLUTION: i64 = 16384;

/// Checkpoint names offered even when models/checkpoints/ is empty.
const BUILTIN_CHECKPOINTS: [&str; 4] = [
    "sd_xl_base_1.0.safetensors",
    "v1-5-pruned-emaonly.safetensors",
    "sd_xl_refiner_1.0.safetensors",
    "dreamshaper_8.safetensors",
];

const SAMPLERS: [&str; 36] = [
    "euler",
    "euler_cfg_pp",
    "euler_ancestral",
    "euler_ancestral_cfg_pp",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde",
    "dpmpp_sde_gpu",
    "dpmpp_2m",
    "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun",
    "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu",
    "ddpm",
    "lcm",
    "ipndm",
    "ipndm_v",
    "deis",
    "res_multistep",
    "res_multistep_cfg_pp",
    "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp",
    "gradient_estimation",
    "er_sde",
    "ddim",
    "uni_pc",
];

const SCHEDULERS: [&str; 9] = [
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
    "linear_quadratic",
    "kl_optimal",
];

/// How an input's value is typed.
#[derive(Clone, Debug, PartialEq)]
pub enum InputType {
    /// `INT`, cast with Python `int()`.
    Int,
    /// `FLOAT`, cast with `float()`.
    Float,
    /// `STRING`, cast with `str()`.
    String,
    /// A list of allowed values.
    Combo(Vec<String>),
    /// A link-only type such as `IMAGE` or `MODEL`.
    Link(&'static str),
}

/// One input of a class: its name, type and options (`default`, `min`, `max`, …).
#[derive(Clone, Debug)]
pub struct InputSpec {
    /// Input name.
    pub name: &'static str,
    /// Type.
    pub ty: InputType,
    /// Options object.
    pub opts: Value,
}

impl InputSpec {
    /// The `[TYPE, {opts}]` pair shown in object_info and in `input_config`.
    pub fn config(&self) -> Value {
        let ty = match &self.ty {
            InputType::Int => json!("INT"),
            InputType::Float => json!("FLOAT"),
            InputType::String => json!("STRING"),
            InputType::Combo(choices) => json!(choices),
            InputType::Link(t) => json!(t),
        };
        json!([ty, self.opts])
    }

    /// The type name used in `return_type_mismatch` and link checks.
    pub fn type_name(&self) -> String {
        match &self.ty {
            InputType::Int => "INT".into(),
            InputType::Float => "FLOAT".into(),
            InputType::String => "STRING".into(),
            InputType::Combo(_) => "COMBO".into(),
            InputType::Link(t) => (*t).into(),
        }
    }
}

fn spec(name: &'static str, ty: InputType, opts: Value) -> InputSpec {
    InputSpec { name, ty, opts }
}

fn link(name: &'static str, ty: &'static str) -> InputSpec {
    spec(name, InputType::Link(ty), json!({}))
}

fn combo(name: &'static str, choices: &[&str], opts: Value) -> InputSpec {
    spec(
        name,
        InputType::Combo(choices.iter().map(|s| s.to_string()).collect()),
        opts,
    )
}

fn resolution(name: &'static str, min: i64, step: i64) -> InputSpec {
    spec(
        name,
        InputType::Int,
        json!({"default": 512, "min": min, "max": MAX_RESOLUTION, "step": step}),
    )
}

impl NodeClass {
    /// Looks a class up by its `class_type`.
    pub fn from_name(name: &str) -> Option<NodeClass> {
        ALL.into_iter().find(|c| c.name() == name)
    }

    /// The `class_type` string.
    pub fn name(self) -> &'static str {
        match self {
            NodeClass::EmptyImage => "EmptyImage",
            NodeClass::LoadImage => "LoadImage",
            NodeClass::ImageInvert => "ImageInvert",
            NodeClass::ImageBlur => "ImageBlur",
            NodeClass::ImageScale => "ImageScale",
            NodeClass::SaveImage => "SaveImage",
            NodeClass::PreviewImage => "PreviewImage",
            NodeClass::SaveImageWebsocket => "SaveImageWebsocket",
            NodeClass::CheckpointLoaderSimple => "CheckpointLoaderSimple",
            NodeClass::CLIPTextEncode => "CLIPTextEncode",
            NodeClass::EmptyLatentImage => "EmptyLatentImage",
            NodeClass::KSampler => "KSampler",
            NodeClass::VAEDecode => "VAEDecode",
            NodeClass::VAEEncode => "VAEEncode",
        }
    }

    fn display_name(self) -> &'static str {
        match self {
            NodeClass::EmptyImage => "EmptyImage",
            NodeClass::LoadImage => "Load Image",
            NodeClass::ImageInvert => "Invert Image",
            NodeClass::ImageBlur => "Image Blur",
            NodeClass::ImageScale => "Upscale Image",
            NodeClass::SaveImage => "Save Image",
            NodeClass::PreviewImage => "Preview Image",
            NodeClass::SaveImageWebsocket => "SaveImageWebsocket",
            NodeClass::CheckpointLoaderSimple => "Load Checkpoint",
            NodeClass::CLIPTextEncode => "CLIP Text Encode (Prompt)",
            NodeClass::EmptyLatentImage => "Empty Latent Image",
            NodeClass::KSampler => "KSampler",
            NodeClass::VAEDecode => "VAE Decode",
            NodeClass::VAEEncode => "VAE Encode",
        }
    }

    fn category(self) -> &'static str {
        match self {
            NodeClass::EmptyImage | NodeClass::LoadImage | NodeClass::ImageInvert => "image",
            NodeClass::SaveImage | NodeClass::PreviewImage => "image",
            NodeClass::ImageBlur => "image/postprocessing",
            NodeClass::ImageScale => "image/upscaling",
            NodeClass::SaveImageWebsocket => "api node/image",
            NodeClass::CheckpointLoaderSimple => "loaders",
            NodeClass::CLIPTextEncode => "conditioning",
            NodeClass::EmptyLatentImage | NodeClass::VAEDecode | NodeClass::VAEEncode => "latent",
            NodeClass::KSampler => "sampling",
        }
    }

    /// The `RETURN_TYPES` tuple.
    pub fn return_types(self) -> &'static [&'static str] {
        match self {
            NodeClass::EmptyImage
            | NodeClass::ImageInvert
            | NodeClass::ImageBlur
            | NodeClass::ImageScale => &["IMAGE"],
            NodeClass::VAEDecode => &["IMAGE"],
            NodeClass::LoadImage => &["IMAGE", "MASK"],
            NodeClass::SaveImage | NodeClass::PreviewImage | NodeClass::SaveImageWebsocket => &[],
            NodeClass::CheckpointLoaderSimple => &["MODEL", "CLIP", "VAE"],
            NodeClass::CLIPTextEncode => &["CONDITIONING"],
            NodeClass::EmptyLatentImage | NodeClass::KSampler | NodeClass::VAEEncode => &["LATENT"],
        }
    }

    /// Whether the class is an OUTPUT_NODE (what makes a graph executable).
    pub fn is_output(self) -> bool {
        matches!(
            self,
            NodeClass::SaveImage | NodeClass::PreviewImage | NodeClass::SaveImageWebsocket
        )
    }

    /// Whether the class has its own VALIDATE_INPUTS (which replaces the combo check).
    pub fn validates_itself(self) -> bool {
        self == NodeClass::LoadImage
    }

    /// The required inputs, in `input_order`.
    pub fn inputs(self, dirs: &Dirs) -> Vec<InputSpec> {
        match self {
            NodeClass::EmptyImage => vec![
                resolution("width", 1, 1),
                resolution("height", 1, 1),
                spec(
                    "batch_size",
                    InputType::Int,
                    json!({"default": 1, "min": 1, "max": 4096}),
                ),
                spec(
                    "color",
                    InputType::Int,
                    json!({"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "color"}),
                ),
            ],
            NodeClass::LoadImage => {
                let files = dirs.input_images();
                vec![spec(
                    "image",
                    InputType::Combo(files),
                    json!({"image_upload": true}),
                )]
            }
            NodeClass::ImageInvert => vec![link("image", "IMAGE")],
            NodeClass::ImageBlur => vec![
                link("image", "IMAGE"),
                spec(
                    "blur_radius",
                    InputType::Int,
                    json!({"default": 1, "min": 1, "max": 31, "step": 1}),
                ),
                spec(
                    "sigma",
                    InputType::Float,
                    json!({"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1}),
                ),
            ],
            NodeClass::ImageScale => vec![
                link("image", "IMAGE"),
                combo(
                    "upscale_method",
                    &["nearest-exact", "bilinear", "area", "bicubic", "lanczos"],
                    json!({}),
                ),
                resolution("width", 0, 1),
                resolution("height", 0, 1),
                combo("crop", &["disabled", "center"], json!({})),
            ],
            NodeClass::SaveImage => vec![
                link("images", "IMAGE"),
                spec(
                    "filename_prefix",
                    InputType::String,
                    json!({"default": "ComfyUI"}),
                ),
            ],
            NodeClass::PreviewImage | NodeClass::SaveImageWebsocket => {
                vec![link("images", "IMAGE")]
            }
            NodeClass::CheckpointLoaderSimple => {
                let mut names: Vec<String> =
                    BUILTIN_CHECKPOINTS.iter().map(|s| s.to_string()).collect();
                names.extend(list_files(&dirs.checkpoints));
                names.sort();
                names.dedup();
                vec![spec("ckpt_name", InputType::Combo(names), json!({}))]
            }
            NodeClass::CLIPTextEncode => vec![
                spec(
                    "text",
                    InputType::String,
                    json!({"multiline": true, "dynamicPrompts": true}),
                ),
                link("clip", "CLIP"),
            ],
            NodeClass::EmptyLatentImage => vec![
                resolution("width", 16, 8),
                resolution("height", 16, 8),
                spec(
                    "batch_size",
                    InputType::Int,
                    json!({"default": 1, "min": 1, "max": 4096}),
                ),
            ],
            NodeClass::KSampler => vec![
                link("model", "MODEL"),
                spec(
                    "seed",
                    InputType::Int,
                    json!({"default": 0, "min": 0, "max": u64::MAX, "control_after_generate": true}),
                ),
                spec(
                    "steps",
                    InputType::Int,
                    json!({"default": 20, "min": 1, "max": 10000}),
                ),
                spec(
                    "cfg",
                    InputType::Float,
                    json!({"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
                ),
                combo("sampler_name", &SAMPLERS, json!({})),
                combo("scheduler", &SCHEDULERS, json!({})),
                link("positive", "CONDITIONING"),
                link("negative", "CONDITIONING"),
                link("latent_image", "LATENT"),
                spec(
                    "denoise",
                    InputType::Float,
                    json!({"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
                ),
            ],
            NodeClass::VAEDecode => vec![link("samples", "LATENT"), link("vae", "VAE")],
            NodeClass::VAEEncode => vec![link("pixels", "IMAGE"), link("vae", "VAE")],
        }
    }

    /// Hidden inputs (shown in object_info only).
    fn hidden(self) -> Value {
        match self {
            NodeClass::SaveImage | NodeClass::PreviewImage => {
                json!({"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"})
            }
            _ => json!(null),
        }
    }

    /// This class's `/object_info` entry.
    pub fn object_info(self, dirs: &Dirs) -> Value {
        let inputs = self.inputs(dirs);
        let required: serde_json::Map<String, Value> = inputs
            .iter()
            .map(|s| (s.name.to_string(), s.config()))
            .collect();
        let order: Vec<&str> = inputs.iter().map(|s| s.name).collect();
        let mut input = json!({"required": required});
        let mut input_order = json!({"required": order});
        let hidden = self.hidden();
        if let Value::Object(h) = &hidden {
            input["hidden"] = hidden.clone();
            input_order["hidden"] = json!(h.keys().collect::<Vec<_>>());
        }
        let outputs = self.return_types();
        let python_module = match self {
            NodeClass::SaveImageWebsocket => "custom_nodes.websocket_image_save",
            _ => "nodes",
        };
        json!({
            "input": input,
            "input_order": input_order,
            "output": outputs,
            "output_is_list": vec![false; outputs.len()],
            "output_name": outputs,
            "name": self.name(),
            "display_name": self.display_name(),
            "description": "",
            "python_module": python_module,
            "category": self.category(),
            "output_node": self.is_output(),
        })
    }
}

/// The full `/object_info` body.
pub fn object_info_all(dirs: &Dirs) -> Value {
    let map: serde_json::Map<String, Value> = ALL
        .iter()
        .map(|c| (c.name().to_string(), c.object_info(dirs)))
        .collect();
    Value::Object(map)
}
