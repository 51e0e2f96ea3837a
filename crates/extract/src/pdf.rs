//! PDF text: pdf-extract interprets each page's content stream and hands every glyph with its
//! position to [`Collector`]; the page is then laid out here — glyphs into runs, runs into
//! lines, lines into columns — so two-column pages read column by column and table rows stay
//! on one line. Pages without a text layer go to OCR when it is available.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use lopdf::{Document, Object};
use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};

use crate::budget::Budget;
use crate::{ExtractError, Options, Page};

/// A page with fewer letters and digits than this has no usable text layer.
const MIN_TEXT_CHARS: usize = 16;

#[derive(Debug, Clone)]
struct Glyph {
    /// Position along the text direction and across it (larger is higher on the page).
    u: f64,
    v: f64,
    /// Advance along the text direction.
    width: f64,
    size: f64,
    /// The text direction, quantised to quarter turns.
    direction: u8,
    text: String,
}

/// Receives the glyphs of one page from pdf-extract.
struct Collector {
    glyphs: Vec<Glyph>,
    deadline: Instant,
    max_glyphs: usize,
    timed_out: bool,
}

impl OutputDev for Collector {
    fn begin_page(
        &mut self,
        _: u32,
        _: &MediaBox,
        _: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        Ok(())
    }
    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        text: &str,
    ) -> Result<(), OutputError> {
        if self.glyphs.len().is_multiple_of(1024) && Instant::now() > self.deadline {
            self.timed_out = true;
            return Err(OutputError::FormatError(std::fmt::Error));
        }
        if self.glyphs.len() >= self.max_glyphs {
            return Err(OutputError::FormatError(std::fmt::Error));
        }
        let (dx, dy) = (trm.m11, trm.m12);
        let scale = (trm.m11 * trm.m22 - trm.m12 * trm.m21).abs().sqrt();
        let size = font_size * scale;
        if !size.is_finite() || size <= 0.0 || !trm.m31.is_finite() || !trm.m32.is_finite() {
            return Ok(());
        }
        let direction = if dx.abs() >= dy.abs() {
            if dx >= 0.0 { 0 } else { 2 }
        } else if dy > 0.0 {
            1
        } else {
            3
        };
        let (x, y) = (trm.m31, trm.m32);
        let (u, v) = match direction {
            0 => (x, y),
            1 => (y, -x),
            2 => (-x, -y),
            _ => (-y, x),
        };
        self.glyphs.push(Glyph {
            u,
            v,
            width: width * size,
            size,
            direction,
            text: text.to_owned(),
        });
        Ok(())
    }
    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// Glyphs that follow each other on one baseline without a wide gap.
#[derive(Debug, Clone)]
struct Run {
    u0: f64,
    u1: f64,
    v: f64,
    size: f64,
    text: String,
}

fn runs_of(glyphs: &[Glyph]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for g in glyphs {
        let is_space = g.text.trim().is_empty();
        if let Some(run) = runs.last_mut() {
            let same_line = (g.v - run.v).abs() < 0.3 * run.size.max(g.size);
            // Measured from the last visible glyph: trailing spaces do not bridge a gutter.
            let gap = g.u - run.u1;
            let near = gap > -0.5 * g.size && gap < 0.8 * g.size.max(run.size);
            if same_line && near {
                if is_space {
                    if !run.text.ends_with(' ') {
                        run.text.push(' ');
                    }
                } else {
                    if gap > 0.12 * g.size && !run.text.ends_with(' ') {
                        run.text.push(' ');
                    }
                    run.text.push_str(&g.text);
                    run.u1 = run.u1.max(g.u + g.width);
                }
                continue;
            }
        }
        if is_space {
            continue;
        }
        runs.push(Run {
            u0: g.u,
            u1: g.u + g.width,
            v: g.v,
            size: g.size,
            text: g.text.clone(),
        });
    }
    for run in &mut runs {
        let trimmed = run.text.trim_end();
        run.text.truncate(trimmed.len());
    }
    runs.retain(|r| !r.text.is_empty());
    runs
}

/// Runs on one baseline, left to right.
struct Line {
    v: f64,
    size: f64,
    runs: Vec<Run>,
}

fn lines_of(mut runs: Vec<Run>) -> Vec<Line> {
    runs.sort_by(|a, b| b.v.total_cmp(&a.v));
    let mut lines: Vec<Line> = Vec::new();
    for run in runs {
        if let Some(line) = lines.last_mut()
            && (line.v - run.v).abs() < 0.5 * line.size.min(run.size)
        {
            line.size = line.size.max(run.size);
            line.runs.push(run);
            continue;
        }
        lines.push(Line {
            v: run.v,
            size: run.size,
            runs: vec![run],
        });
    }
    for line in &mut lines {
        line.runs.sort_by(|a, b| a.u0.total_cmp(&b.u0));
    }
    lines
}

fn line_text(runs: &[&Run]) -> String {
    let mut text = String::new();
    let mut last: Option<&Run> = None;
    for run in runs {
        if let Some(prev) = last {
            text.push(if run.u0 - prev.u1 > 1.5 * run.size.max(prev.size) {
                '\t'
            } else {
                ' '
            });
        }
        text.push_str(&run.text);
        last = Some(run);
    }
    text
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The position of a gutter between two columns of prose, if the page has one: a vertical
/// band near the middle that few runs cross, with full-width prose runs on both sides.
fn gutter(lines: &[Line]) -> Option<f64> {
    let runs: Vec<&Run> = lines.iter().flat_map(|l| &l.runs).collect();
    if lines.len() < 12 {
        return None;
    }
    let left_edge = runs.iter().map(|r| r.u0).fold(f64::INFINITY, f64::min);
    let right_edge = runs.iter().map(|r| r.u1).fold(f64::NEG_INFINITY, f64::max);
    let width = right_edge - left_edge;
    if width.is_nan() || width <= 0.0 {
        return None;
    }
    let mut best: Option<(usize, f64)> = None;
    let steps = 60;
    for i in (steps * 3 / 10)..=(steps * 7 / 10) {
        let x = left_edge + width * i as f64 / steps as f64;
        let crossing = runs.iter().filter(|r| r.u0 < x && r.u1 > x).count();
        if best.is_none_or(|(c, _)| crossing < c) {
            best = Some((crossing, x));
        }
    }
    let (crossing, x) = best?;
    if crossing * 5 > lines.len() {
        return None;
    }
    let left: Vec<&&Run> = runs.iter().filter(|r| r.u1 <= x).collect();
    let right: Vec<&&Run> = runs.iter().filter(|r| r.u0 >= x).collect();
    let left_lines = lines
        .iter()
        .filter(|l| l.runs.iter().any(|r| r.u1 <= x))
        .count();
    let right_lines = lines
        .iter()
        .filter(|l| l.runs.iter().any(|r| r.u0 >= x))
        .count();
    if left_lines < 6 || right_lines < 6 {
        return None;
    }
    let left_width = median(left.iter().map(|r| r.u1 - r.u0).collect());
    let right_width = median(right.iter().map(|r| r.u1 - r.u0).collect());
    let prose = left_width >= 0.6 * (x - left_edge) && right_width >= 0.6 * (right_edge - x);
    prose.then_some(x)
}

fn push_lines(out: &mut Vec<String>, lines: &[(f64, f64, String)]) {
    let mut previous: Option<(f64, f64)> = None;
    for (v, size, text) in lines {
        if let Some((pv, psize)) = previous
            && pv - v > 2.0 * psize.max(*size)
            && out.last().is_some_and(|l| !l.is_empty())
        {
            out.push(String::new());
        }
        out.push(text.clone());
        previous = Some((*v, *size));
    }
}

/// The text of glyphs in one direction, in reading order.
fn layout_direction(glyphs: &[Glyph]) -> Vec<String> {
    let lines = lines_of(runs_of(glyphs));
    let mut out = Vec::new();
    let Some(x) = gutter(&lines) else {
        let all: Vec<(f64, f64, String)> = lines
            .iter()
            .map(|l| (l.v, l.size, line_text(&l.runs.iter().collect::<Vec<_>>())))
            .collect();
        push_lines(&mut out, &all);
        return out;
    };
    let mut left: Vec<(f64, f64, String)> = Vec::new();
    let mut right: Vec<(f64, f64, String)> = Vec::new();
    for line in &lines {
        if line.runs.iter().any(|r| r.u0 < x && r.u1 > x) {
            push_lines(&mut out, &std::mem::take(&mut left));
            push_lines(&mut out, &std::mem::take(&mut right));
            push_lines(
                &mut out,
                &[(
                    line.v,
                    line.size,
                    line_text(&line.runs.iter().collect::<Vec<_>>()),
                )],
            );
            continue;
        }
        let l: Vec<&Run> = line.runs.iter().filter(|r| r.u1 <= x).collect();
        let r: Vec<&Run> = line.runs.iter().filter(|r| r.u0 >= x).collect();
        if !l.is_empty() {
            left.push((line.v, line.size, line_text(&l)));
        }
        if !r.is_empty() {
            right.push((line.v, line.size, line_text(&r)));
        }
    }
    push_lines(&mut out, &left);
    if !left.is_empty() && !right.is_empty() {
        out.push(String::new());
    }
    push_lines(&mut out, &right);
    out
}

/// A page's text: the main text direction first, rotated text (margin notes) after it.
fn layout(glyphs: &[Glyph]) -> String {
    let mut counts = [0usize; 4];
    for g in glyphs {
        counts[g.direction as usize] += 1;
    }
    let mut directions: Vec<u8> = (0..4).filter(|d| counts[*d as usize] > 0).collect();
    directions.sort_by_key(|d| std::cmp::Reverse(counts[*d as usize]));
    let mut out: Vec<String> = Vec::new();
    for d in directions {
        let these: Vec<Glyph> = glyphs
            .iter()
            .filter(|g| g.direction == d)
            .cloned()
            .collect();
        if !out.is_empty() {
            out.push(String::new());
        }
        out.extend(layout_direction(&these));
    }
    crate::pipeline::tidy(&out.join("\n"))
}

fn load(bytes: &[u8]) -> Result<Document, ExtractError> {
    let mut doc = match Document::load_mem(bytes) {
        Ok(doc) => doc,
        Err(lopdf::Error::Decryption(_)) => return Err(ExtractError::Encrypted),
        Err(e) => {
            return Err(ExtractError::Corrupt(format!(
                "the PDF cannot be read ({e})"
            )));
        }
    };
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(ExtractError::Encrypted);
    }
    Ok(doc)
}

/// Bytes the page's content streams decompress to, counted up to `limit` without holding
/// them, so a compression bomb is refused before the interpreter inflates it.
fn content_size(doc: &Document, page_id: lopdf::ObjectId, limit: u64) -> u64 {
    let mut total = 0u64;
    for id in doc.get_page_contents(page_id) {
        let Ok(stream) = doc.get_object(id).and_then(Object::as_stream) else {
            continue;
        };
        let flate = stream
            .filters()
            .is_ok_and(|f| f.first().is_some_and(|f| *f == b"FlateDecode"));
        let size = if flate {
            let mut decoder = flate2::read::ZlibDecoder::new(stream.content.as_slice())
                .take(limit.saturating_sub(total).saturating_add(1));
            std::io::copy(&mut decoder, &mut std::io::sink()).unwrap_or(0)
        } else {
            stream.content.len() as u64
        };
        total = total.saturating_add(size);
        if total > limit {
            break;
        }
    }
    total
}

/// The text of one page through pdf-extract, or lopdf's simpler reader when that fails.
fn page_text(doc: &Document, number: u32, budget: &Budget) -> Result<String, ExtractError> {
    let mut collector = Collector {
        glyphs: Vec::new(),
        deadline: budget.deadline(),
        max_glyphs: budget.limits.max_text_chars,
        timed_out: false,
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        pdf_extract::output_doc_page(doc, &mut collector, number)
    }));
    if collector.timed_out {
        budget.check_time()?;
    }
    if let Ok(Ok(())) = result {
        return Ok(layout(&collector.glyphs));
    }
    // pdf-extract stopped part-way (an unsupported font or stream, or a panic): keep what it
    // laid out unless lopdf's simpler reader finds more of the page.
    let partial = layout(&collector.glyphs);
    let fallback = catch_unwind(AssertUnwindSafe(|| doc.extract_text(&[number])))
        .ok()
        .and_then(Result::ok)
        .map(|t| crate::pipeline::tidy(&t))
        .unwrap_or_default();
    let letters = |t: &str| t.chars().filter(|c| c.is_alphanumeric()).count();
    Ok(if letters(&fallback) > letters(&partial) {
        fallback
    } else {
        partial
    })
}

pub(crate) fn read_pdf(
    bytes: &[u8],
    options: &Options,
    budget: &mut Budget,
) -> Result<Vec<Page>, ExtractError> {
    let doc = load(bytes)?;
    let page_ids = doc.get_pages();
    if page_ids.len() > budget.limits.max_pages as usize {
        return Err(ExtractError::LimitExceeded(format!(
            "the PDF has more than {} pages",
            budget.limits.max_pages
        )));
    }
    let mut pages = Vec::with_capacity(page_ids.len());
    for (&number, &id) in &page_ids {
        budget.check_time()?;
        let size = content_size(&doc, id, budget.expanded_left());
        budget.expand(size)?;
        let mut text = page_text(&doc, number, budget)?;
        let mut ocr = false;
        if text.chars().filter(|c| c.is_alphanumeric()).count() < MIN_TEXT_CHARS
            && let Some(reader) = &options.ocr
        {
            text = crate::pipeline::tidy(&reader.read_pdf_page(bytes, number)?);
            ocr = true;
        }
        budget.text(&text)?;
        pages.push(Page { number, text, ocr });
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use crate::testpdf::{Line, pdf_with_pages};
    use crate::{ExtractError, Options, extract};

    fn line(x: f64, y: f64, text: &str) -> Line<'_> {
        Line { x, y, text }
    }

    #[test]
    fn pages_keep_their_numbers_and_rows_stay_on_one_line() {
        let pdf = pdf_with_pages(&[
            vec![
                line(50.0, 800.0, "Invoice Number: INV-0042"),
                line(50.0, 780.0, "Total"),
                line(400.0, 780.0, "$1,200.00"),
            ],
            vec![line(50.0, 800.0, "Second page, mail jane@example.com")],
        ]);
        let e = extract(&pdf, &Options::default()).unwrap();
        assert_eq!(e.pages.len(), 2);
        assert_eq!(
            e.pages[0].text,
            "Invoice Number: INV-0042\nTotal\t$1,200.00"
        );
        assert_eq!(e.fields.emails[0].page, 2);
        assert!(e.text.contains(crate::PAGE_SEPARATOR));
    }

    #[test]
    fn two_columns_read_column_by_column() {
        let mut lines = vec![line(
            50.0,
            810.0,
            "A Title That Spans Both Columns Of The Page Entirely",
        )];
        let left: Vec<String> = (0..20)
            .map(|i| format!("left column line number {i:02} goes here"))
            .collect();
        let right: Vec<String> = (0..20)
            .map(|i| format!("right column line number {i:02} goes on"))
            .collect();
        for i in 0..20 {
            let y = 780.0 - 14.0 * i as f64;
            lines.push(line(50.0, y, &left[i]));
            lines.push(line(320.0, y, &right[i]));
        }
        let e = extract(&pdf_with_pages(&[lines]), &Options::default()).unwrap();
        let text = e.text;
        let last_left = text.find("left column line number 19").unwrap();
        let first_right = text.find("right column line number 00").unwrap();
        assert!(text.starts_with("A Title"));
        assert!(last_left < first_right, "{text}");
    }

    #[test]
    fn broken_pdfs_fail_cleanly() {
        let pdf = pdf_with_pages(&[vec![line(50.0, 800.0, "hello")]]);
        let truncated = &pdf[..pdf.len() / 2];
        assert!(matches!(
            extract(truncated, &Options::default()),
            Err(ExtractError::Corrupt(_)) | Ok(_)
        ));
        assert!(matches!(
            extract(b"%PDF-1.7\ngarbage", &Options::default()),
            Err(ExtractError::Corrupt(_))
        ));
    }

    #[test]
    fn page_limit() {
        let pdf = pdf_with_pages(&[vec![line(50.0, 800.0, "a")], vec![line(50.0, 800.0, "b")]]);
        let mut options = Options::default();
        options.limits.max_pages = 1;
        assert_eq!(
            extract(&pdf, &options).unwrap_err().code(),
            "limit_exceeded"
        );
    }
}
