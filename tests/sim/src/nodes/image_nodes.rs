//! Image-producing and image-transforming nodes: EmptyImage, LoadImage, ImageInvert, ImageBlur, ImageScale.

use std::sync::Arc;

use super::{Args, Datum, NodeError, NodeRun};
use crate::files::{Dirs, Folder};
use crate::image::{Image, MAX_SIDE, Mask, clamp_dims};
use crate::png_io;
use crate::pyfmt::py_str_repr;

fn image_out(img: Image) -> NodeRun {
    NodeRun {
        outputs: vec![Datum::Image(Arc::new(img))],
        ..NodeRun::default()
    }
}

/// EmptyImage: a batch of one colour given as 0xRRGGBB.
pub fn empty_image(args: &Args) -> Result<NodeRun, NodeError> {
    let (w, h, batch) = clamp_dims(
        args.int("width")?,
        args.int("height")?,
        args.int("batch_size")?,
    );
    let color = args.int("color")?;
    let channel = |shift: u32| (((color >> shift) & 0xFF) as f64 / 255.0) as f32;
    Ok(image_out(Image::solid(
        w,
        h,
        batch,
        [channel(16), channel(8), channel(0)],
    )))
}

/// LoadImage: decodes a PNG from input/ (or an annotated folder) into IMAGE and MASK.
pub fn load_image(args: &Args, dirs: &Dirs) -> Result<NodeRun, NodeError> {
    let name = args.string("image")?;
    let path = dirs.annotated_path(&name, Folder::Input);
    let shown = py_str_repr(&path.display().to_string());
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => NodeError::new(
            "FileNotFoundError",
            format!("[Errno 2] No such file or directory: {shown}"),
        ),
        _ => NodeError::new("OSError", e.to_string()),
    })?;
    let decoded = png_io::decode(&bytes).map_err(|_| {
        NodeError::new(
            "PIL.UnidentifiedImageError",
            format!("cannot identify image file {shown}"),
        )
    })?;
    let image = Image::from_rgb8(decoded.width, decoded.height, &[decoded.rgb]);
    let mask = match decoded.alpha {
        Some(alpha) => Mask::from_alpha(decoded.width, decoded.height, &alpha),
        None => Mask::empty(),
    };
    Ok(NodeRun {
        outputs: vec![Datum::Image(Arc::new(image)), Datum::Mask(Arc::new(mask))],
        ..NodeRun::default()
    })
}

/// ImageInvert: `1 - x`.
pub fn invert(args: &Args) -> Result<NodeRun, NodeError> {
    Ok(image_out(args.image("image")?.invert()))
}

/// ImageBlur: a cheap Gaussian approximation of radius `blur_radius` and `sigma`.
pub fn blur(args: &Args) -> Result<NodeRun, NodeError> {
    let image = args.image("image")?;
    let radius = args.int("blur_radius")?.clamp(0, 31) as usize;
    let sigma = args.float("sigma")?;
    if radius == 0 {
        return Ok(NodeRun {
            outputs: vec![Datum::Image(image)],
            ..NodeRun::default()
        });
    }
    Ok(image_out(image.blur(radius, sigma)))
}

/// ImageScale: resizes to width×height; a zero side keeps the aspect ratio.
pub fn scale(args: &Args) -> Result<NodeRun, NodeError> {
    let image = args.image("image")?;
    let method = args.string("upscale_method")?;
    let (mut w, mut h) = (args.int("width")?, args.int("height")?);
    if w == 0 && h == 0 {
        return Ok(NodeRun {
            outputs: vec![Datum::Image(image)],
            ..NodeRun::default()
        });
    }
    let (iw, ih) = (image.width as i128, image.height as i128);
    if w == 0 {
        w = (iw * h / ih).max(1);
    } else if h == 0 {
        h = (ih * w / iw).max(1);
    }
    let side = |v: i128| v.clamp(1, MAX_SIDE as i128) as usize;
    Ok(image_out(image.scale(
        side(w),
        side(h),
        method == "nearest-exact",
    )))
}
