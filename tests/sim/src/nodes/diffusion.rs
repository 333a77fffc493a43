//! The text-to-image nodes of a standard SD workflow, faked deterministically: the "sampled"
//! image depends only on the seed, the prompts and the sampler settings.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use super::{Args, Conditioning, Datum, Latent, NodeError, NodeRun};
use crate::image::{Image, clamp_dims};

fn one(d: Datum) -> NodeRun {
    NodeRun {
        outputs: vec![d],
        ..NodeRun::default()
    }
}

/// CheckpointLoaderSimple: MODEL, CLIP and VAE handles named after the checkpoint.
pub fn checkpoint(args: &Args) -> Result<NodeRun, NodeError> {
    let name: Arc<str> = args.string("ckpt_name")?.into();
    Ok(NodeRun {
        outputs: vec![
            Datum::Model(name.clone()),
            Datum::Clip(name.clone()),
            Datum::Vae(name),
        ],
        ..NodeRun::default()
    })
}

/// CLIPTextEncode: remembers the text.
pub fn clip_encode(args: &Args) -> Result<NodeRun, NodeError> {
    let text = args.string("text")?;
    let checkpoint = args.handle("clip")?.to_string();
    Ok(one(Datum::Conditioning(Arc::new(Conditioning {
        text,
        checkpoint,
    }))))
}

/// EmptyLatentImage: a latent of a size, nothing in it yet.
pub fn empty_latent(args: &Args) -> Result<NodeRun, NodeError> {
    let (width, height, batch) = clamp_dims(
        args.int("width")?,
        args.int("height")?,
        args.int("batch_size")?,
    );
    Ok(one(Datum::Latent(Arc::new(Latent {
        width,
        height,
        batch,
        pixels: None,
    }))))
}

/// KSampler: a deterministic picture from the seed, prompts and settings; with `denoise < 1`
/// an encoded input image shows through.
pub fn ksampler(args: &Args) -> Result<NodeRun, NodeError> {
    let model = args.handle("model")?;
    let seed = args.int("seed")?;
    let positive = args.conditioning("positive")?;
    let negative = args.conditioning("negative")?;
    let latent = args.latent("latent_image")?;
    let denoise = args.float("denoise")?.clamp(0.0, 1.0) as f32;
    let mut h = DefaultHasher::new();
    (
        &*model,
        seed,
        &positive.text,
        &negative.text,
        &positive.checkpoint,
        args.int("steps")?,
    )
        .hash(&mut h);
    (
        args.float("cfg")?.to_bits(),
        args.string("sampler_name")?,
        args.string("scheduler")?,
    )
        .hash(&mut h);
    let key = h.finish();
    let color = |bits: u64| {
        [
            (bits & 0xFF) as f32 / 255.0,
            ((bits >> 8) & 0xFF) as f32 / 255.0,
            ((bits >> 16) & 0xFF) as f32 / 255.0,
        ]
    };
    let (from, to) = (color(key), color(key >> 24));
    let (w, h) = (latent.width, latent.height);
    let generated = Image::generate(w, h, latent.batch, |b, x, y| {
        let t = (x + y) as f32 / (w + h).max(1) as f32;
        let noise = (splitmix(key ^ ((b as u64) << 48) ^ ((y as u64) << 24) ^ x as u64) & 0xFF)
            as f32
            / 2550.0;
        let mut px = [0.0; 3];
        for c in 0..3 {
            px[c] = (from[c] * (1.0 - t) + to[c] * t + noise).clamp(0.0, 1.0);
        }
        px
    });
    let pixels = match &latent.pixels {
        Some(src) if denoise < 1.0 && src.data.len() == generated.data.len() => {
            let data = src
                .data
                .iter()
                .zip(&generated.data)
                .map(|(s, g)| s * (1.0 - denoise) + g * denoise)
                .collect();
            Image { data, ..generated }
        }
        _ => generated,
    };
    let out = Latent {
        pixels: Some(Arc::new(pixels)),
        ..(*latent).clone()
    };
    Ok(one(Datum::Latent(Arc::new(out))))
}

/// VAEDecode: the latent's picture, or flat grey for a latent that was never sampled.
pub fn vae_decode(args: &Args) -> Result<NodeRun, NodeError> {
    let latent = args.latent("samples")?;
    args.handle("vae")?;
    let image = match &latent.pixels {
        Some(p) => p.clone(),
        None => Arc::new(Image::solid(
            latent.width,
            latent.height,
            latent.batch,
            [0.5; 3],
        )),
    };
    Ok(one(Datum::Image(image)))
}

/// VAEEncode: a latent that remembers the pixels.
pub fn vae_encode(args: &Args) -> Result<NodeRun, NodeError> {
    let pixels = args.image("pixels")?;
    args.handle("vae")?;
    let latent = Latent {
        width: pixels.width,
        height: pixels.height,
        batch: pixels.batch,
        pixels: Some(pixels),
    };
    Ok(one(Datum::Latent(Arc::new(latent))))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
