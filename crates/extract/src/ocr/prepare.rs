//! What a page image goes through before Tesseract sees it: small text is enlarged (Tesseract
//! reads best when letters are about 20–40 pixels tall), a skewed scan is turned straight, and
//! the page is binarised with Otsu's threshold.

use image::{GrayImage, Luma, imageops};

/// Median letter height (pixels) below which a page is enlarged.
const SMALL_TEXT: u32 = 14;
/// Median letter height aimed at when enlarging.
const TARGET_TEXT: f32 = 24.0;
const MAX_UPSCALE: f32 = 4.0;
/// Skew angles searched, in degrees either side of level.
const MAX_SKEW: f32 = 10.0;
/// Angles smaller than this are left alone: turning costs more than it gains.
const MIN_SKEW: f32 = 0.3;

/// Enlarges, deskews and binarises `page`; `max_pixels` bounds the enlarged size.
pub(super) fn prepare(page: GrayImage, max_pixels: u64) -> GrayImage {
    let threshold = otsu(&page);
    let scale = letter_height(&page, threshold)
        .filter(|&h| h < SMALL_TEXT)
        .map_or(1.0, |h| (TARGET_TEXT / h as f32).min(MAX_UPSCALE));
    let pixels = f64::from(page.width()) * f64::from(page.height());
    let scale = scale
        .min((max_pixels as f64 / pixels).sqrt() as f32)
        .max(1.0);
    let page = if scale > 1.05 {
        let width = (page.width() as f32 * scale).round() as u32;
        let height = (page.height() as f32 * scale).round() as u32;
        imageops::resize(&page, width, height, imageops::FilterType::CatmullRom)
    } else {
        page
    };
    let correction = skew(&page, threshold);
    let page = if correction.abs() >= MIN_SKEW {
        rotate(&page, correction)
    } else {
        page
    };
    let threshold = otsu(&page);
    GrayImage::from_fn(page.width(), page.height(), |x, y| {
        Luma([if page.get_pixel(x, y)[0] <= threshold {
            0
        } else {
            255
        }])
    })
}

/// Otsu's threshold: the gray level that best separates ink from paper.
pub(super) fn otsu(page: &GrayImage) -> u8 {
    let mut histogram = [0u64; 256];
    for pixel in page.pixels() {
        histogram[usize::from(pixel[0])] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let sum_all: f64 = histogram
        .iter()
        .enumerate()
        .map(|(v, &n)| v as f64 * n as f64)
        .sum();
    let (mut below, mut sum_below) = (0u64, 0f64);
    let (mut best, mut best_variance) = (127u8, -1f64);
    for (level, &count) in histogram.iter().enumerate() {
        below += count;
        sum_below += level as f64 * count as f64;
        let above = total - below;
        if below == 0 || above == 0 {
            continue;
        }
        let mean_below = sum_below / below as f64;
        let mean_above = (sum_all - sum_below) / above as f64;
        let variance = below as f64 * above as f64 * (mean_below - mean_above).powi(2);
        if variance > best_variance {
            best_variance = variance;
            best = level as u8;
        }
    }
    best
}

/// The median height of the connected ink shapes that look like letters, if there are enough.
fn letter_height(page: &GrayImage, threshold: u8) -> Option<u32> {
    let (width, height) = (page.width() as usize, page.height() as usize);
    let raw = page.as_raw();
    let mut seen = vec![false; raw.len()];
    let mut heights = Vec::new();
    let mut stack = Vec::new();
    for start in 0..raw.len() {
        if seen[start] || raw[start] > threshold {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut top, mut bottom, mut left, mut right, mut area) = (height, 0, width, 0, 0usize);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            top = top.min(y);
            bottom = bottom.max(y);
            left = left.min(x);
            right = right.max(x);
            area += 1;
            let mut visit = |j: usize| {
                if !seen[j] && raw[j] <= threshold {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < width {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - width);
            }
            if y + 1 < height {
                visit(i + width);
            }
        }
        let (h, w) = (bottom - top + 1, right - left + 1);
        // Specks, rules, frames and photos are not letters.
        if area >= 4 && h >= 3 && h <= height / 4 && w <= width / 4 && w <= h * 4 {
            heights.push(h as u32);
        }
    }
    if heights.len() < 10 {
        return None;
    }
    let middle = heights.len() / 2;
    Some(*heights.select_nth_unstable(middle).1)
}

/// The turn (degrees, for [`rotate`]) that levels the lines of text: the angle whose projection
/// profile of the ink has the sharpest peaks.
fn skew(page: &GrayImage, threshold: u8) -> f32 {
    // A sample of the ink is enough to find the angle and bounds the cost on large pages.
    let ink: Vec<(f32, f32)> = page
        .enumerate_pixels()
        .filter(|(_, _, p)| p[0] <= threshold)
        .map(|(x, y, _)| (x as f32, y as f32))
        .collect();
    if ink.len() < 100 {
        return 0.0;
    }
    let step = (ink.len() / 200_000).max(1);
    let ink: Vec<(f32, f32)> = ink.into_iter().step_by(step).collect();
    let rows = page.height() as usize + page.width() as usize;
    let score = |degrees: f32| {
        let (sin, cos) = degrees.to_radians().sin_cos();
        let offset = page.width() as f32;
        let mut profile = vec![0u32; rows * 2];
        for &(x, y) in &ink {
            let row = (y * cos + x * sin + offset).round();
            if row >= 0.0 && (row as usize) < profile.len() {
                profile[row as usize] += 1;
            }
        }
        profile
            .windows(2)
            .map(|w| (f64::from(w[0]) - f64::from(w[1])).powi(2))
            .sum::<f64>()
    };
    let search = |from: f32, to: f32, step: f32, mut best: (f32, f64)| {
        let mut angle = from;
        while angle <= to + 1e-3 {
            let s = score(angle);
            if s > best.1 {
                best = (angle, s);
            }
            angle += step;
        }
        best
    };
    let coarse = search(-MAX_SKEW, MAX_SKEW, 0.5, (0.0, score(0.0)));
    let fine = search(coarse.0 - 0.5, coarse.0 + 0.5, 0.1, coarse);
    -fine.0
}

/// Turns `page` by `degrees` (counter-clockwise when positive) about its centre, keeping its
/// size and filling the uncovered corners with white.
fn rotate(page: &GrayImage, degrees: f32) -> GrayImage {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (page.width() as f32 / 2.0, page.height() as f32 / 2.0);
    let (w, h) = (page.width() as i64, page.height() as i64);
    let sample = |x: i64, y: i64| -> f32 {
        if x < 0 || y < 0 || x >= w || y >= h {
            255.0
        } else {
            f32::from(page.get_pixel(x as u32, y as u32)[0])
        }
    };
    GrayImage::from_fn(page.width(), page.height(), |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        // The source point that lands on (x, y), bilinearly interpolated.
        let sx = cx + dx * cos - dy * sin;
        let sy = cy + dx * sin + dy * cos;
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let top = sample(x0, y0) * (1.0 - fx) + sample(x0 + 1, y0) * fx;
        let bottom = sample(x0, y0 + 1) * (1.0 - fx) + sample(x0 + 1, y0 + 1) * fx;
        Luma([(top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(width: u32, height: u32) -> GrayImage {
        // Rows of 12-pixel-tall "letters" 20 pixels apart: a page of text to the algorithms.
        GrayImage::from_fn(width, height, |x, y| {
            let in_line = (y % 40) >= 10 && (y % 40) < 22;
            let in_letter = (x % 14) < 9;
            Luma([if in_line && in_letter && y > 20 && y < height - 20 {
                20
            } else {
                235
            }])
        })
    }

    #[test]
    fn otsu_separates_ink_from_paper() {
        let t = otsu(&lines(200, 200));
        assert!((20..235).contains(&t), "threshold {t}");
    }

    #[test]
    fn small_letters_are_enlarged() {
        let page = lines(400, 400);
        assert_eq!(letter_height(&page, otsu(&page)), Some(12));
        // 12-pixel letters are brought to 24 pixels: twice as large.
        assert_eq!(prepare(page, 10_000_000).dimensions(), (800, 800));
    }

    #[test]
    fn enlarging_respects_the_pixel_bound() {
        assert_eq!(prepare(lines(400, 400), 400 * 400).dimensions(), (400, 400));
    }

    #[test]
    fn skew_is_measured_and_undone() {
        let page = lines(600, 600);
        let threshold = otsu(&page);
        assert!(skew(&page, threshold).abs() < 0.2);
        for degrees in [-4.0f32, 2.5, 6.0] {
            let tilted = rotate(&page, degrees);
            let found = skew(&tilted, threshold);
            assert!(
                (found + degrees).abs() <= 0.3,
                "{degrees}° measured as a correction of {found}°"
            );
            let straight = rotate(&tilted, found);
            assert!(skew(&straight, threshold).abs() <= 0.3);
        }
    }
}
