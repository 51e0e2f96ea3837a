//! The image of a scanned PDF page, taken from the images the page embeds rather than rendered:
//! a scanner or a "print to PDF" of a photo stores each page as one image (or a few strips)
//! that covers it, so the scan itself is what Tesseract reads — at its own resolution, with no
//! renderer to install. Read: JPEG (DCTDecode), Flate with or without PNG predictors, CCITT
//! fax (group 4, one-dimensional group 3) and uncompressed samples, in gray, RGB, CMYK, ICC-based and indexed colour,
//! 1 to 16 bits, inside the page or in a form it draws, turned by the page's `/Rotate`. Not read:
//! JPEG 2000, JBIG2 and LZW images (a clear error), and text drawn as vector outlines.

use std::io::Read;

use image::{GrayImage, ImageFormat, imageops};
use lopdf::{Dictionary, Document, Object, ObjectId};

use super::decode::{ImageLimits, decode_single};
use crate::ExtractError;

/// Images smaller than this share of the page's largest are logos and stamps, not the scan.
const MIN_SHARE_OF_LARGEST: u64 = 4;
/// Forms inside forms are followed this deep.
const MAX_FORM_DEPTH: u32 = 3;
/// Images read from one page at most.
const MAX_IMAGES: usize = 16;

/// Hands the scanned images of page `page_number` (1-based), upright, in the order the page
/// names them, to `image` one at a time.
pub(super) fn page_images(
    pdf: &[u8],
    page_number: u32,
    limits: &ImageLimits,
    mut image: impl FnMut(GrayImage) -> Result<(), ExtractError>,
) -> Result<(), ExtractError> {
    let document = Document::load_mem(pdf).map_err(|e| {
        if pdf.windows(8).any(|w| w == b"/Encrypt") {
            ExtractError::Encrypted
        } else {
            ExtractError::Corrupt(format!("the PDF cannot be read: {e}"))
        }
    })?;
    if document.is_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    let page_id = *document
        .get_pages()
        .get(&page_number)
        .ok_or_else(|| ExtractError::Corrupt(format!("the PDF has no page {page_number}")))?;
    let mut streams = Vec::new();
    let (resources, inherited) = document
        .get_page_resources(page_id)
        .map_err(|e| ExtractError::Corrupt(format!("page {page_number}: {e}")))?;
    let mut dictionaries: Vec<&Dictionary> = resources.into_iter().collect();
    dictionaries.extend(
        inherited
            .iter()
            .filter_map(|id| document.get_dictionary(*id).ok()),
    );
    for resources in dictionaries {
        collect_images(&document, resources, 0, &mut streams);
    }
    streams.dedup_by_key(|(id, _)| *id);
    let largest = streams.iter().map(|(_, s)| s.area).max().unwrap_or(0);
    let rotation = inherited_integer(&document, page_id, b"Rotate")
        .unwrap_or(0)
        .rem_euclid(360);
    for (_, candidate) in streams
        .iter()
        .filter(|(_, s)| s.area * MIN_SHARE_OF_LARGEST >= largest)
    {
        let gray = decode_image(&document, candidate.stream, limits)?;
        image(match rotation {
            90 => imageops::rotate90(&gray),
            180 => imageops::rotate180(&gray),
            270 => imageops::rotate270(&gray),
            _ => gray,
        })?;
    }
    Ok(())
}

struct Candidate<'a> {
    stream: &'a lopdf::Stream,
    area: u64,
}

/// The image XObjects of `resources`, and of the forms they hold, in the order they are named.
fn collect_images<'a>(
    document: &'a Document,
    resources: &'a Dictionary,
    depth: u32,
    out: &mut Vec<(ObjectId, Candidate<'a>)>,
) {
    let Ok(xobjects) = resources
        .get(b"XObject")
        .and_then(|o| resolve(document, o).as_dict())
    else {
        return;
    };
    for (_, value) in xobjects.iter() {
        if out.len() >= MAX_IMAGES {
            return;
        }
        let Ok(id) = value.as_reference() else {
            continue;
        };
        let Ok(stream) = document.get_object(id).and_then(Object::as_stream) else {
            continue;
        };
        match stream.dict.get(b"Subtype").and_then(Object::as_name) {
            Ok(b"Image") => {
                let side = |key: &[u8]| {
                    stream
                        .dict
                        .get(key)
                        .and_then(Object::as_i64)
                        .ok()
                        .filter(|&v| v > 0)
                };
                if let (Some(width), Some(height)) = (side(b"Width"), side(b"Height")) {
                    let area = (width as u64).saturating_mul(height as u64);
                    out.push((id, Candidate { stream, area }));
                }
            }
            Ok(b"Form") if depth < MAX_FORM_DEPTH => {
                if let Ok(inner) = stream
                    .dict
                    .get(b"Resources")
                    .and_then(|o| resolve(document, o).as_dict())
                {
                    collect_images(document, inner, depth + 1, out);
                }
            }
            _ => {}
        }
    }
}

fn resolve<'a>(document: &'a Document, object: &'a Object) -> &'a Object {
    document.dereference(object).map_or(object, |(_, o)| o)
}

/// An integer a page inherits from its page tree (e.g. `/Rotate`).
fn inherited_integer(document: &Document, page_id: ObjectId, key: &[u8]) -> Option<i64> {
    let mut node = document.get_dictionary(page_id).ok()?;
    for _ in 0..32 {
        if let Ok(value) = node.get(key) {
            return resolve(document, value).as_i64().ok();
        }
        node = node
            .get(b"Parent")
            .ok()?
            .as_reference()
            .ok()
            .and_then(|id| document.get_dictionary(id).ok())?;
    }
    None
}

fn unsupported(what: &str) -> ExtractError {
    ExtractError::OcrFailed(format!(
        "the page's image is stored as {what}, which is not supported"
    ))
}

fn corrupt(e: impl std::fmt::Display) -> ExtractError {
    ExtractError::Corrupt(format!("the page's image cannot be decoded: {e}"))
}

fn decode_image(
    document: &Document,
    stream: &lopdf::Stream,
    limits: &ImageLimits,
) -> Result<GrayImage, ExtractError> {
    let dict = &stream.dict;
    let number = |key: &[u8]| {
        dict.get(key)
            .ok()
            .map(|o| resolve(document, o))
            .and_then(|o| o.as_i64().ok())
    };
    let width = u32::try_from(number(b"Width").unwrap_or(0)).map_err(corrupt)?;
    let height = u32::try_from(number(b"Height").unwrap_or(0)).map_err(corrupt)?;
    limits.check(width, height)?;
    let filters: Vec<Vec<u8>> = match dict.get(b"Filter").map(|o| resolve(document, o)) {
        Ok(Object::Name(name)) => vec![name.clone()],
        Ok(Object::Array(names)) => names
            .iter()
            .filter_map(|n| n.as_name().ok().map(<[u8]>::to_vec))
            .collect(),
        _ => Vec::new(),
    };
    let params = |index: usize| -> Option<&Dictionary> {
        let params = resolve(document, dict.get(b"DecodeParms").ok()?);
        match params {
            Object::Array(all) => resolve(document, all.get(index)?).as_dict().ok(),
            other => other.as_dict().ok(),
        }
    };
    let image_mask = dict
        .get(b"ImageMask")
        .and_then(Object::as_bool)
        .unwrap_or(false);
    let bits = if image_mask {
        1
    } else {
        number(b"BitsPerComponent").unwrap_or(8)
    };
    let inverted = dict
        .get(b"Decode")
        .ok()
        .and_then(|o| resolve(document, o).as_array().ok())
        .and_then(|d| Some(d.first()?.as_float().ok()? > d.get(1)?.as_float().ok()?))
        .unwrap_or(false);

    let mut data: std::borrow::Cow<[u8]> = std::borrow::Cow::Borrowed(&stream.content);
    for (index, filter) in filters.iter().enumerate() {
        let last = index + 1 == filters.len();
        match filter.as_slice() {
            b"DCTDecode" | b"DCT" if last => {
                let mut gray = decode_single(&data, ImageFormat::Jpeg, limits)?;
                if inverted {
                    imageops::invert(&mut gray);
                }
                return Ok(gray);
            }
            b"CCITTFaxDecode" | b"CCF" if last => {
                let mut gray = ccitt(&data, params(index), width, height)?;
                if inverted {
                    imageops::invert(&mut gray);
                }
                return Ok(gray);
            }
            b"FlateDecode" | b"Fl" => {
                let components = if image_mask {
                    1
                } else {
                    components(document, dict)?.0
                };
                let bits_usize = usize::try_from(bits).map_err(corrupt)?;
                let row = (width as usize * components * bits_usize).div_ceil(8);
                // A predictor adds a byte to each row; nothing beyond that is needed, so a
                // stream that inflates further is cut off there instead of filling memory.
                let bound = (row + 1) * height as usize;
                let mut inflated = Vec::new();
                flate2::read::ZlibDecoder::new(data.as_ref())
                    .take(bound as u64)
                    .read_to_end(&mut inflated)
                    .or_else(|e| {
                        if inflated.is_empty() {
                            Err(corrupt(e))
                        } else {
                            Ok(0)
                        }
                    })?;
                let predictor = params(index)
                    .and_then(|p| p.get(b"Predictor").and_then(Object::as_i64).ok())
                    .unwrap_or(1);
                if predictor >= 10 {
                    let bytes_per_pixel = (components * bits_usize).div_ceil(8);
                    inflated = unpredict_png(&inflated, row, bytes_per_pixel);
                } else if predictor != 1 {
                    return Err(unsupported("TIFF-predicted Flate data"));
                }
                data = std::borrow::Cow::Owned(inflated);
            }
            b"DCTDecode" | b"DCT" | b"CCITTFaxDecode" | b"CCF" => {
                return Err(unsupported("a filter chain that ends in another filter"));
            }
            b"JPXDecode" => return Err(unsupported("JPEG 2000")),
            b"JBIG2Decode" => return Err(unsupported("JBIG2")),
            other => return Err(unsupported(&String::from_utf8_lossy(other))),
        }
    }
    let mut gray = if image_mask {
        samples_to_gray(&data, width, height, 1, 1, None)?
    } else {
        let (count, palette) = components(document, dict)?;
        let bits = u8::try_from(bits)
            .ok()
            .filter(|b| [1, 2, 4, 8, 16].contains(b))
            .ok_or_else(|| corrupt("bits per component"))?;
        samples_to_gray(&data, width, height, count, bits, palette.as_ref())?
    };
    if inverted {
        imageops::invert(&mut gray);
    }
    Ok(gray)
}

/// The colour space's component count, and for an indexed space the palette as gray levels.
fn components(
    document: &Document,
    dict: &Dictionary,
) -> Result<(usize, Option<Vec<u8>>), ExtractError> {
    let Ok(space) = dict.get(b"ColorSpace").map(|o| resolve(document, o)) else {
        return Ok((1, None));
    };
    base_components(document, space, 0)
}

fn base_components(
    document: &Document,
    space: &Object,
    depth: u32,
) -> Result<(usize, Option<Vec<u8>>), ExtractError> {
    if depth > 4 {
        return Err(corrupt("colour spaces nested too deep"));
    }
    let named = |name: &[u8]| match name {
        b"DeviceGray" | b"CalGray" | b"G" | b"Separation" => Ok((1, None)),
        b"DeviceRGB" | b"CalRGB" | b"RGB" | b"Lab" => Ok((3, None)),
        b"DeviceCMYK" | b"CMYK" => Ok((4, None)),
        other => Err(unsupported(&format!(
            "colour space {}",
            String::from_utf8_lossy(other)
        ))),
    };
    match space {
        Object::Name(name) => named(name),
        Object::Array(parts) => {
            let kind = parts
                .first()
                .and_then(|o| o.as_name().ok())
                .unwrap_or_default();
            match kind {
                b"ICCBased" => {
                    let stream = parts
                        .get(1)
                        .map(|o| resolve(document, o))
                        .and_then(|o| o.as_stream().ok())
                        .ok_or_else(|| corrupt("ICC colour space without a profile"))?;
                    match stream.dict.get(b"N").and_then(Object::as_i64) {
                        Ok(1) => Ok((1, None)),
                        Ok(3) => Ok((3, None)),
                        Ok(4) => Ok((4, None)),
                        _ => Err(corrupt("ICC colour space with an unusual component count")),
                    }
                }
                b"Indexed" | b"I" => {
                    let base = parts
                        .get(1)
                        .map(|o| resolve(document, o))
                        .ok_or_else(|| corrupt("indexed colour space"))?;
                    let (base_count, _) = base_components(document, base, depth + 1)?;
                    let table: Vec<u8> = match parts.get(3).map(|o| resolve(document, o)) {
                        Some(Object::String(bytes, _)) => bytes.clone(),
                        Some(Object::Stream(stream)) => stream
                            .decompressed_content()
                            .unwrap_or_else(|_| stream.content.clone()),
                        _ => return Err(corrupt("indexed colour space without a palette")),
                    };
                    let palette = table
                        .chunks_exact(base_count)
                        .take(256)
                        .map(gray_of)
                        .collect();
                    Ok((1, Some(palette)))
                }
                b"Separation" | b"DeviceN" => Ok((1, None)),
                other => named(other),
            }
        }
        _ => Ok((1, None)),
    }
}

/// Gray level of one 8-bit sample set (gray, RGB or CMYK).
fn gray_of(sample: &[u8]) -> u8 {
    let luma = |r: u32, g: u32, b: u32| ((r * 299 + g * 587 + b * 114) / 1000) as u8;
    match *sample {
        [g] => g,
        [r, g, b] => luma(u32::from(r), u32::from(g), u32::from(b)),
        [c, m, y, k] => {
            let k = 255 - u32::from(k);
            luma(
                (255 - u32::from(c)) * k / 255,
                (255 - u32::from(m)) * k / 255,
                (255 - u32::from(y)) * k / 255,
            )
        }
        _ => sample.first().copied().unwrap_or(255),
    }
}

fn samples_to_gray(
    data: &[u8],
    width: u32,
    height: u32,
    components: usize,
    bits: u8,
    palette: Option<&Vec<u8>>,
) -> Result<GrayImage, ExtractError> {
    let (w, h) = (width as usize, height as usize);
    let bits = usize::from(bits);
    let row = (w * components * bits).div_ceil(8);
    if data.len() < row * h {
        return Err(corrupt("the image holds fewer samples than its size"));
    }
    let max = (1u32 << bits.min(16)) - 1;
    let sample = |row_bytes: &[u8], index: usize| -> u32 {
        match bits {
            8 => u32::from(row_bytes[index]),
            16 => u32::from(row_bytes[index * 2]) << 8 | u32::from(row_bytes[index * 2 + 1]),
            _ => {
                let bit = index * bits;
                (u32::from(row_bytes[bit / 8]) >> (8 - bits - bit % 8)) & max
            }
        }
    };
    let mut out = Vec::with_capacity(w * h);
    let mut channels = [0u8; 4];
    for y in 0..h {
        let row_bytes = &data[y * row..(y + 1) * row];
        for x in 0..w {
            if let Some(palette) = palette {
                let index = sample(row_bytes, x) as usize;
                out.push(palette.get(index).copied().unwrap_or(255));
                continue;
            }
            for (c, channel) in channels.iter_mut().enumerate().take(components.min(4)) {
                *channel = (sample(row_bytes, x * components + c) * 255 / max) as u8;
            }
            out.push(gray_of(&channels[..components.min(4)]));
        }
    }
    GrayImage::from_raw(width, height, out).ok_or_else(|| corrupt("image size"))
}

/// Undoes the PNG row filters that a Flate stream's `/Predictor 10–15` announces.
fn unpredict_png(data: &[u8], row: usize, bpp: usize) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(data.len());
    let mut previous = vec![0u8; row];
    for chunk in data.chunks(row + 1) {
        let (filter, line) = (chunk[0], &chunk[1..]);
        let mut current = vec![0u8; row];
        for i in 0..line.len() {
            let left = if i >= bpp { current[i - bpp] } else { 0 };
            let up = previous[i];
            let upper_left = if i >= bpp { previous[i - bpp] } else { 0 };
            let predicted = match filter {
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => paeth(left, up, upper_left),
                _ => 0,
            };
            current[i] = line[i].wrapping_add(predicted);
        }
        out.extend_from_slice(&current);
        previous = current;
    }
    out
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// A CCITT group 3 (one-dimensional) or group 4 fax image.
fn ccitt(
    data: &[u8],
    params: Option<&Dictionary>,
    width: u32,
    height: u32,
) -> Result<GrayImage, ExtractError> {
    let number = |key: &[u8], default: i64| {
        params
            .and_then(|p| p.get(key).and_then(Object::as_i64).ok())
            .unwrap_or(default)
    };
    let k = number(b"K", 0);
    let columns = u16::try_from(number(b"Columns", 1728)).map_err(corrupt)?;
    let rows = u16::try_from(height).map_err(|_| unsupported("a fax image over 65535 rows"))?;
    if u32::from(columns) != width {
        return Err(corrupt("the fax columns differ from the image width"));
    }
    let black_is_1 = params
        .and_then(|p| p.get(b"BlackIs1").and_then(Object::as_bool).ok())
        .unwrap_or(false);
    let mut out = Vec::with_capacity(width as usize * height as usize);
    let mut lines = 0u32;
    let mut on_line = |transitions: &[u16]| {
        if lines < height {
            out.extend(
                fax::decoder::pels(transitions, columns).map(|color| match color {
                    fax::Color::Black => 0u8,
                    fax::Color::White => 255u8,
                }),
            );
            lines += 1;
        }
    };
    let decoded = if k < 0 {
        fax::decoder::decode_g4(data.iter().copied(), columns, Some(rows), &mut on_line)
    } else {
        fax::decoder::decode_g3(data.iter().copied(), &mut on_line)
    };
    if decoded.is_none() && out.is_empty() {
        return Err(corrupt("the fax data is damaged"));
    }
    out.resize(width as usize * height as usize, 255);
    let mut gray = GrayImage::from_raw(width, height, out).ok_or_else(|| corrupt("image size"))?;
    // The decoder reports ink as black; with `/BlackIs1` ink is sample 1, which a gray colour
    // space shows as white unless `/Decode` turns it back (done by the caller).
    if black_is_1 {
        imageops::invert(&mut gray);
    }
    Ok(gray)
}
