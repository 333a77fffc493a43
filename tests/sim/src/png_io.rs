//! PNG encoding (RGB 8-bit with PIL-style text chunks) and decoding of single frames.

use std::io::Cursor;

/// A decoded frame normalised to 8-bit RGB, with its alpha channel if it had one.
pub struct Decoded {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
    /// `width * height` bytes when the file had alpha.
    pub alpha: Option<Vec<u8>>,
}

/// Why a PNG could not be produced or read.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    /// The encoder refused the data.
    #[error("png encoding failed: {0}")]
    Encode(#[from] png::EncodingError),
    /// The bytes are not a PNG this decoder understands.
    #[error("png decoding failed: {0}")]
    Decode(#[from] png::DecodingError),
}

/// Encodes 8-bit RGB pixels; each `(keyword, text)` becomes a tEXt chunk, or iTXt when the text
/// is not Latin-1 (what PIL's `PngInfo.add_text` does).
pub fn encode_rgb(
    width: usize,
    height: usize,
    rgb: &[u8],
    text: &[(String, String)],
) -> Result<Vec<u8>, PngError> {
    encode(width, height, png::ColorType::Rgb, rgb, text)
}

/// Encodes 8-bit RGBA pixels without metadata.
pub fn encode_rgba(width: usize, height: usize, rgba: &[u8]) -> Result<Vec<u8>, PngError> {
    encode(width, height, png::ColorType::Rgba, rgba, &[])
}

fn encode(
    width: usize,
    height: usize,
    color: png::ColorType,
    data: &[u8],
    text: &[(String, String)],
) -> Result<Vec<u8>, PngError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        for (key, value) in text {
            if value.chars().all(|c| (c as u32) < 256) {
                enc.add_text_chunk(key.clone(), value.clone())?;
            } else {
                enc.add_itxt_chunk(key.clone(), value.clone())?;
            }
        }
        let mut writer = enc.write_header()?;
        writer.write_image_data(data)?;
        writer.finish()?;
    }
    Ok(out)
}

/// Decodes the first frame of a PNG, expanding palettes, grey and 16-bit samples to 8-bit RGB.
pub fn decode(bytes: &[u8]) -> Result<Decoded, PngError> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf)?;
    buf.truncate(info.buffer_size());
    let (width, height) = (info.width as usize, info.height as usize);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb | png::ColorType::Indexed => 3,
        png::ColorType::Rgba => 4,
    };
    let mut rgb = Vec::with_capacity(width * height * 3);
    let mut alpha = (channels % 2 == 0).then(|| Vec::with_capacity(width * height));
    for px in buf.chunks_exact(channels) {
        match channels {
            1 | 2 => rgb.extend_from_slice(&[px[0]; 3]),
            _ => rgb.extend_from_slice(&px[..3]),
        }
        if let Some(a) = alpha.as_mut() {
            a.push(px[channels - 1]);
        }
    }
    Ok(Decoded {
        width,
        height,
        rgb,
        alpha,
    })
}

/// The `(keyword, text)` pairs of a PNG's tEXt/iTXt chunks.
pub fn text_chunks(bytes: &[u8]) -> Result<Vec<(String, String)>, PngError> {
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let reader = decoder.read_info()?;
    let info = reader.info();
    let mut out: Vec<(String, String)> = info
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone()))
        .collect();
    for t in &info.utf8_text {
        if let Ok(text) = t.get_text() {
            out.push((t.keyword.clone(), text));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let rgb = vec![255, 0, 0, 0, 255, 0];
        let bytes = encode_rgb(2, 1, &rgb, &[("prompt".into(), "{}".into())]).expect("encode");
        let back = decode(&bytes).expect("decode");
        assert_eq!((back.width, back.height), (2, 1));
        assert_eq!(back.rgb, rgb);
        assert!(back.alpha.is_none());
        assert_eq!(
            text_chunks(&bytes).expect("text"),
            vec![("prompt".into(), "{}".into())]
        );
    }
}
