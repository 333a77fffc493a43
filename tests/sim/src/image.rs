//! Image tensors as ComfyUI holds them (batches of float RGB in 0..1) and the few operations
//! the simulated nodes need; conversion to bytes truncates like numpy's `astype(uint8)`.

/// Largest width or height the simulator materialises; bigger requests are scaled down.
pub const MAX_SIDE: usize = 2048;
/// Largest pixel count (over the batch) the simulator materialises; bigger batches are cut.
const MAX_PIXELS: usize = 1 << 24;

/// A batch of RGB images, row-major, channels last, values in 0..1.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Number of images.
    pub batch: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `batch * height * width * 3` samples.
    pub data: Vec<f32>,
}

/// A batch of single-channel masks (LoadImage's second output).
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    /// Number of masks.
    pub batch: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `batch * height * width` samples.
    pub data: Vec<f32>,
}

/// Clamps requested dimensions to what the simulator is willing to allocate.
pub fn clamp_dims(width: i128, height: i128, batch: i128) -> (usize, usize, usize) {
    let side = |v: i128| v.clamp(1, MAX_SIDE as i128) as usize;
    let (w, h) = (side(width), side(height));
    let max_batch = (MAX_PIXELS / (w * h)).max(1);
    (w, h, (batch.max(1) as usize).min(max_batch))
}

impl Image {
    /// A batch filled with one colour.
    pub fn solid(width: usize, height: usize, batch: usize, rgb: [f32; 3]) -> Image {
        let data = rgb
            .iter()
            .copied()
            .cycle()
            .take(batch * width * height * 3)
            .collect();
        Image {
            batch,
            width,
            height,
            data,
        }
    }

    /// Builds a batch from 8-bit RGB frames of equal size (`x / 255` in f32, like ComfyUI's loader).
    pub fn from_rgb8(width: usize, height: usize, frames: &[Vec<u8>]) -> Image {
        let data = frames
            .iter()
            .flatten()
            .map(|&b| f32::from(b) / 255.0)
            .collect();
        Image {
            batch: frames.len(),
            width,
            height,
            data,
        }
    }

    /// Builds a batch by evaluating `f(batch_index, x, y)` for every pixel.
    pub fn generate(
        width: usize,
        height: usize,
        batch: usize,
        f: impl Fn(usize, usize, usize) -> [f32; 3],
    ) -> Image {
        let mut data = Vec::with_capacity(batch * width * height * 3);
        for b in 0..batch {
            for y in 0..height {
                for x in 0..width {
                    data.extend_from_slice(&f(b, x, y));
                }
            }
        }
        Image {
            batch,
            width,
            height,
            data,
        }
    }

    fn frame_len(&self) -> usize {
        self.width * self.height * 3
    }

    /// One frame as 8-bit RGB: `clip(255 * x, 0, 255)` truncated, exactly like SaveImage.
    pub fn frame_rgb8(&self, index: usize) -> Vec<u8> {
        let len = self.frame_len();
        self.data[index * len..(index + 1) * len]
            .iter()
            .map(|&v| (255.0f32 * v).clamp(0.0, 255.0) as u8)
            .collect()
    }

    /// The sample at (batch, x, y, channel).
    pub fn at(&self, b: usize, x: usize, y: usize, c: usize) -> f32 {
        self.data[((b * self.height + y) * self.width + x) * 3 + c]
    }

    /// `1.0 - x` per sample (ImageInvert).
    pub fn invert(&self) -> Image {
        let data = self.data.iter().map(|&v| 1.0f32 - v).collect();
        Image { data, ..*self }
    }

    /// A cheap Gaussian approximation: three box passes per axis with the matching variance,
    /// the box never wider than `radius`.
    pub fn blur(&self, radius: usize, sigma: f64) -> Image {
        let ideal = ((1.0 + 4.0 * sigma * sigma).sqrt() - 1.0) / 2.0;
        let r = (ideal.round() as usize).min(radius);
        let mut out = self.clone();
        if r == 0 {
            return out;
        }
        let (w, h) = (self.width, self.height);
        let mut line = Vec::new();
        for b in 0..self.batch {
            let base = b * self.frame_len();
            for c in 0..3 {
                for _ in 0..3 {
                    for y in 0..h {
                        let idx = |x: usize| base + (y * w + x) * 3 + c;
                        box_pass(&mut out.data, w, r, idx, &mut line);
                    }
                    for x in 0..w {
                        let idx = |y: usize| base + (y * w + x) * 3 + c;
                        box_pass(&mut out.data, h, r, idx, &mut line);
                    }
                }
            }
        }
        out
    }

    /// Resizes every frame; `nearest` picks the nearest sample, otherwise bilinear.
    pub fn scale(&self, width: usize, height: usize, nearest: bool) -> Image {
        let (sw, sh) = (self.width as f32, self.height as f32);
        Image::generate(width, height, self.batch, |b, x, y| {
            let fx = ((x as f32 + 0.5) * sw / width as f32 - 0.5).clamp(0.0, sw - 1.0);
            let fy = ((y as f32 + 0.5) * sh / height as f32 - 0.5).clamp(0.0, sh - 1.0);
            let mut px = [0.0; 3];
            for (c, slot) in px.iter_mut().enumerate() {
                *slot = if nearest {
                    self.at(b, fx.round() as usize, fy.round() as usize, c)
                } else {
                    let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
                    let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
                    let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
                    let top = self.at(b, x0, y0, c) * (1.0 - tx) + self.at(b, x1, y0, c) * tx;
                    let bottom = self.at(b, x0, y1, c) * (1.0 - tx) + self.at(b, x1, y1, c) * tx;
                    top * (1.0 - ty) + bottom * ty
                };
            }
            px
        })
    }

    /// Short description used where ComfyUI would print a tensor.
    pub fn describe(&self) -> String {
        format!(
            "tensor(shape=[{}, {}, {}, 3], dtype=torch.float32)",
            self.batch, self.height, self.width
        )
    }
}

/// One running-sum box filter of radius `r` along a line of `n` samples addressed by `idx`,
/// with edge samples repeated.
fn box_pass(
    data: &mut [f32],
    n: usize,
    r: usize,
    idx: impl Fn(usize) -> usize,
    line: &mut Vec<f32>,
) {
    line.clear();
    line.extend((0..n).map(|i| data[idx(i)]));
    let at = |i: isize| line[i.clamp(0, n as isize - 1) as usize] as f64;
    let r = r as isize;
    let width = (2 * r + 1) as f64;
    let mut sum: f64 = (-r..=r).map(at).sum();
    for i in 0..n as isize {
        data[idx(i as usize)] = (sum / width) as f32;
        sum += at(i + r + 1) - at(i - r);
    }
}

impl Mask {
    /// A mask batch from 8-bit alpha frames: `1 - alpha / 255` like LoadImage.
    pub fn from_alpha(width: usize, height: usize, alpha: &[u8]) -> Mask {
        let data = alpha.iter().map(|&a| 1.0 - f32::from(a) / 255.0).collect();
        Mask {
            batch: 1,
            width,
            height,
            data,
        }
    }

    /// LoadImage's mask for an image without alpha: 64×64 zeros.
    pub fn empty() -> Mask {
        Mask {
            batch: 1,
            width: 64,
            height: 64,
            data: vec![0.0; 64 * 64],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invert_truncates_like_numpy() {
        let img = Image::from_rgb8(1, 1, &[vec![0, 100, 255]]);
        let out = img.invert().frame_rgb8(0);
        for (v, o) in [0u8, 100, 255].iter().zip(&out) {
            let expect = 255 - v;
            assert!(*o == expect || *o + 1 == expect, "{v} -> {o}");
        }
    }

    #[test]
    fn blur_keeps_flat_images_flat() {
        let img = Image::solid(16, 8, 1, [0.5, 0.25, 1.0]);
        let out = img.blur(31, 10.0);
        assert_eq!(out.frame_rgb8(0), img.frame_rgb8(0));
        assert_eq!(clamp_dims(100_000, 0, 4096), (2048, 1, 4096));
    }
}
