//! Image files to grayscale pages: PNG, JPEG and WebP through `image` (with the EXIF orientation
//! applied), TIFF through `tiff` so that every page of a multi-page file is read. Every decoder
//! runs under limits checked before the pixels are allocated, so a small file that claims a huge
//! image is refused instead of exhausting memory.

use std::io::Cursor;

use image::{GrayImage, ImageDecoder, ImageFormat};

use crate::ExtractError;

/// Bounds on decoding one image file.
#[derive(Debug, Clone)]
pub struct ImageLimits {
    /// Widest and tallest page accepted, in pixels.
    pub max_side: u32,
    /// Most pixels one page may have (a 600-dpi A4 page has about 35 million).
    pub max_pixels: u64,
    /// Most pages read from one multi-page TIFF.
    pub max_pages: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_side: 20_000,
            max_pixels: 50_000_000,
            max_pages: 500,
        }
    }
}

impl ImageLimits {
    pub(super) fn check(&self, width: u32, height: u32) -> Result<(), ExtractError> {
        if width == 0 || height == 0 {
            return Err(ExtractError::Corrupt("the image has no pixels".into()));
        }
        if width > self.max_side
            || height > self.max_side
            || u64::from(width) * u64::from(height) > self.max_pixels
        {
            return Err(ExtractError::LimitExceeded(format!(
                "the image is {width}×{height} pixels; at most {} pixels and {} on a side are read",
                self.max_pixels, self.max_side
            )));
        }
        Ok(())
    }

    /// Bytes any decoder may allocate at once: the largest page at 16-bit RGBA, the widest
    /// sample type a decoder produces before conversion.
    fn max_alloc(&self) -> u64 {
        self.max_pixels.saturating_mul(8)
    }
}

/// The image formats read by OCR, recognised by their magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ImageKind {
    Png,
    Jpeg,
    Tiff,
    Webp,
}

pub(super) fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageKind::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some(ImageKind::Tiff)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(ImageKind::Webp)
    } else {
        None
    }
}

/// Hands each page of an image file, upright, as 8-bit grayscale, to `page` as soon as it is
/// decoded, so that only one page of a long TIFF is held at a time.
pub(super) fn decode(
    bytes: &[u8],
    limits: &ImageLimits,
    page: impl FnMut(GrayImage) -> Result<(), ExtractError>,
) -> Result<(), ExtractError> {
    let mut page = page;
    match sniff(bytes).ok_or(ExtractError::Unsupported)? {
        ImageKind::Png => page(decode_single(bytes, ImageFormat::Png, limits)?),
        ImageKind::Jpeg => page(decode_single(bytes, ImageFormat::Jpeg, limits)?),
        ImageKind::Webp => page(decode_single(bytes, ImageFormat::WebP, limits)?),
        ImageKind::Tiff => decode_tiff(bytes, limits, page),
    }
}

fn corrupt(e: impl std::fmt::Display) -> ExtractError {
    ExtractError::Corrupt(format!("the image cannot be decoded: {e}"))
}

fn image_error(e: image::ImageError) -> ExtractError {
    match e {
        image::ImageError::Limits(e) => {
            ExtractError::LimitExceeded(format!("the image is too large to decode: {e}"))
        }
        image::ImageError::Unsupported(e) => ExtractError::Corrupt(format!(
            "the image uses a feature that is not supported: {e}"
        )),
        e => corrupt(e),
    }
}

/// One PNG, JPEG or WebP image (the first frame of an animation).
pub(super) fn decode_single(
    bytes: &[u8],
    format: ImageFormat,
    limits: &ImageLimits,
) -> Result<GrayImage, ExtractError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut decode_limits = image::Limits::default();
    decode_limits.max_image_width = Some(limits.max_side);
    decode_limits.max_image_height = Some(limits.max_side);
    decode_limits.max_alloc = Some(limits.max_alloc());
    reader.limits(decode_limits);
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let (width, height) = decoder.dimensions();
    limits.check(width, height)?;
    // A photo's EXIF orientation says how to turn the stored pixels upright; an unreadable EXIF
    // block is no reason to refuse the picture.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = image::DynamicImage::from_decoder(decoder).map_err(image_error)?;
    image.apply_orientation(orientation);
    Ok(image.into_luma8())
}

/// Every page of a TIFF file.
fn decode_tiff(
    bytes: &[u8],
    limits: &ImageLimits,
    mut page: impl FnMut(GrayImage) -> Result<(), ExtractError>,
) -> Result<(), ExtractError> {
    use tiff::decoder::{Decoder, DecodingResult};
    use tiff::tags::Tag;

    let mut tiff_limits = tiff::decoder::Limits::default();
    tiff_limits.decoding_buffer_size = usize::try_from(limits.max_alloc()).unwrap_or(usize::MAX);
    tiff_limits.intermediate_buffer_size =
        usize::try_from(limits.max_alloc()).unwrap_or(usize::MAX);
    let mut decoder = Decoder::new(Cursor::new(bytes))
        .map_err(tiff_error)?
        .with_limits(tiff_limits);
    let mut pages = 0u32;
    loop {
        if pages >= limits.max_pages {
            return Err(ExtractError::LimitExceeded(format!(
                "the TIFF file has more than {} pages",
                limits.max_pages
            )));
        }
        let (width, height) = decoder.dimensions().map_err(tiff_error)?;
        limits.check(width, height)?;
        let color = decoder.colortype().map_err(tiff_error)?;
        let orientation = decoder
            .find_tag_unsigned::<u16>(Tag::Orientation)
            .ok()
            .flatten();
        let data = decoder.read_image().map_err(tiff_error)?;
        let gray = match data {
            DecodingResult::U8(samples) => to_gray(&samples, color, width, height, |v| v)?,
            DecodingResult::U16(samples) => {
                to_gray(&samples, color, width, height, |v| (v >> 8) as u8)?
            }
            _ => return Err(unsupported_tiff(color)),
        };
        let mut upright = image::DynamicImage::ImageLuma8(gray);
        if let Some(orientation) = orientation
            .and_then(|o| u8::try_from(o).ok())
            .and_then(image::metadata::Orientation::from_exif)
        {
            upright.apply_orientation(orientation);
        }
        page(upright.into_luma8())?;
        pages += 1;
        if !decoder.more_images() {
            return Ok(());
        }
        decoder.next_image().map_err(tiff_error)?;
    }
}

fn tiff_error(e: tiff::TiffError) -> ExtractError {
    match e {
        tiff::TiffError::LimitsExceeded => {
            ExtractError::LimitExceeded("the TIFF image is too large to decode".into())
        }
        e => corrupt(e),
    }
}

fn unsupported_tiff(color: tiff::ColorType) -> ExtractError {
    ExtractError::Corrupt(format!("TIFF pixels of type {color:?} are not supported"))
}

/// Converts decoded TIFF samples to 8-bit gray (0 black). Gray samples of under 8 bits come
/// packed, each row starting on a byte boundary.
fn to_gray<T: Copy>(
    samples: &[T],
    color: tiff::ColorType,
    width: u32,
    height: u32,
    to_u8: impl Fn(T) -> u8,
) -> Result<GrayImage, ExtractError> {
    use tiff::ColorType;
    let (w, h) = (width as usize, height as usize);
    let pixels = w * h;
    let short = || corrupt("the TIFF image holds fewer pixels than its size");
    let luma = |r: u8, g: u8, b: u8| {
        ((u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000) as u8
    };
    let out: Vec<u8> = match color {
        ColorType::Gray(bits @ (1 | 2 | 4)) => {
            let bits = usize::from(bits);
            let row_bytes = (w * bits).div_ceil(8);
            if samples.len() < row_bytes * h {
                return Err(short());
            }
            let max = (1u16 << bits) - 1;
            let mut out = Vec::with_capacity(pixels);
            for y in 0..h {
                for x in 0..w {
                    let bit = x * bits;
                    let byte = u16::from(to_u8(samples[y * row_bytes + bit / 8]));
                    let value = (byte >> (8 - bits - bit % 8)) & max;
                    out.push((value * 255 / max) as u8);
                }
            }
            out
        }
        ColorType::Gray(_) => samples
            .get(..pixels)
            .ok_or_else(short)?
            .iter()
            .map(|&v| to_u8(v))
            .collect(),
        ColorType::GrayA(_) => {
            let s = samples.get(..pixels * 2).ok_or_else(short)?;
            s.chunks_exact(2).map(|p| to_u8(p[0])).collect()
        }
        ColorType::RGB(_) | ColorType::RGBA(_) => {
            let n = if matches!(color, ColorType::RGB(_)) {
                3
            } else {
                4
            };
            let s = samples.get(..pixels * n).ok_or_else(short)?;
            s.chunks_exact(n)
                .map(|p| luma(to_u8(p[0]), to_u8(p[1]), to_u8(p[2])))
                .collect()
        }
        ColorType::CMYK(_) => {
            let s = samples.get(..pixels * 4).ok_or_else(short)?;
            s.chunks_exact(4)
                .map(|p| {
                    let k = 255 - u32::from(to_u8(p[3]));
                    let channel = |c: T| ((255 - u32::from(to_u8(c))) * k / 255) as u8;
                    luma(channel(p[0]), channel(p[1]), channel(p[2]))
                })
                .collect()
        }
        other => return Err(unsupported_tiff(other)),
    };
    GrayImage::from_raw(width, height, out).ok_or_else(short)
}
