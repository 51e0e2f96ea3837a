//! Text recognition with Tesseract, loaded as a library at run time.
//!
//! [`Tesseract::load`] opens `libtesseract` and the language data once; a machine without them
//! gets an [`OcrLoadError`] to report, and everything else keeps working. Tesseract's handles
//! may not be shared between threads, so [`Tesseract`] keeps a small pool of engines, created
//! on demand up to `engines`, and each page borrows one. Every page gets a time budget that
//! Tesseract's own monitor enforces.

mod decode;
mod ffi;
mod pdf;
mod prepare;

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use decode::ImageLimits;

use crate::{ExtractError, Ocr};

/// How to load Tesseract; [`TesseractConfig::new`] gives the defaults for a language list.
#[derive(Debug, Clone)]
pub struct TesseractConfig {
    /// Tesseract language codes joined by `+`, e.g. `eng` or `eng+deu`.
    pub languages: String,
    /// The library file; `None` looks for `libtesseract.so.5` on the library path.
    pub library: Option<PathBuf>,
    /// The `tessdata` directory; `None` uses Tesseract's default (or `TESSDATA_PREFIX`).
    pub datapath: Option<PathBuf>,
    /// Most engines (each holds its own copy of the language models) alive at once; pages beyond
    /// that wait for a free engine.
    pub engines: usize,
    /// Time Tesseract may spend on one page.
    pub page_timeout: Duration,
    pub limits: ImageLimits,
}

impl TesseractConfig {
    pub fn new(languages: &str) -> Self {
        Self {
            languages: languages.to_owned(),
            library: None,
            datapath: None,
            engines: std::thread::available_parallelism().map_or(2, |n| n.get()),
            page_timeout: Duration::from_secs(60),
            limits: ImageLimits::default(),
        }
    }
}

/// Why Tesseract could not be loaded; the server reports it and runs without OCR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcrLoadError {
    #[error("the Tesseract library could not be loaded ({0}); install it with scripts/install-ocr")]
    Library(String),
    #[error(
        "the OCR language list {0:?} is not valid: use Tesseract codes joined by '+', e.g. eng+deu"
    )]
    InvalidLanguages(String),
    #[error("Tesseract could not load its language data ({0}); install e.g. tesseract-ocr-eng")]
    Languages(String),
}

/// Tesseract behind the [`Ocr`] trait: images and scanned PDF pages in, text out.
pub struct Tesseract {
    api: Arc<ffi::Api>,
    config: TesseractConfig,
    pool: Mutex<Pool>,
    freed: Condvar,
    version: String,
}

struct Pool {
    idle: Vec<ffi::Engine>,
    /// Engines alive, idle or lent out.
    alive: usize,
}

impl std::fmt::Debug for Tesseract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tesseract")
            .field("version", &self.version)
            .field("languages", &self.config.languages)
            .finish_non_exhaustive()
    }
}

impl Tesseract {
    /// Loads Tesseract with the default settings for `languages` (e.g. `eng+deu`).
    pub fn load(languages: &str) -> Result<Self, OcrLoadError> {
        Self::load_with(TesseractConfig::new(languages))
    }

    /// Loads the library and one engine, so that a missing library or language shows now.
    pub fn load_with(config: TesseractConfig) -> Result<Self, OcrLoadError> {
        let valid = !config.languages.is_empty()
            && config.languages.split('+').all(|code| {
                !code.is_empty()
                    && code.len() <= 32
                    && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !valid {
            return Err(OcrLoadError::InvalidLanguages(config.languages));
        }
        let api = ffi::Api::load(config.library.as_deref()).map_err(OcrLoadError::Library)?;
        let engine = ffi::Engine::new(api.clone(), config.datapath.as_deref(), &config.languages)
            .map_err(OcrLoadError::Languages)?;
        let version = api.version();
        Ok(Self {
            api,
            pool: Mutex::new(Pool {
                idle: vec![engine],
                alive: 1,
            }),
            freed: Condvar::new(),
            config,
            version,
        })
    }

    /// The loaded library's version, e.g. `5.3.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn languages(&self) -> &str {
        &self.config.languages
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        // An engine is only ever touched outside the lock, so a panic elsewhere cannot leave
        // the pool's bookkeeping half-done: recovering the guard is sound.
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle engine, a new one while fewer than `engines` exist, or the next one freed.
    fn borrow(&self) -> Result<Lent<'_>, ExtractError> {
        let mut pool = self.lock();
        loop {
            if let Some(engine) = pool.idle.pop() {
                return Ok(Lent {
                    owner: self,
                    engine: Some(engine),
                });
            }
            if pool.alive < self.config.engines.max(1) {
                pool.alive += 1;
                drop(pool);
                let created = ffi::Engine::new(
                    self.api.clone(),
                    self.config.datapath.as_deref(),
                    &self.config.languages,
                );
                return match created {
                    Ok(engine) => Ok(Lent {
                        owner: self,
                        engine: Some(engine),
                    }),
                    Err(e) => {
                        self.lock().alive -= 1;
                        self.freed.notify_one();
                        Err(ExtractError::OcrFailed(e))
                    }
                };
            }
            pool = self
                .freed
                .wait(pool)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Prepares and reads one page image.
    fn read_page(&self, page: image::GrayImage) -> Result<String, ExtractError> {
        let image = prepare::prepare(page, self.config.limits.max_pixels);
        let mut lent = self.borrow()?;
        let started = Instant::now();
        let budget = self.config.page_timeout;
        let deadline_ms = u32::try_from(budget.as_millis()).unwrap_or(u32::MAX);
        let engine = lent.engine.as_mut().ok_or(ExtractError::OcrUnavailable)?;
        match engine.recognize(
            image.as_raw(),
            image.width(),
            image.height(),
            300,
            deadline_ms,
        ) {
            Ok(text) => Ok(tidy(&text)),
            Err(ffi::RecognizeError::Stopped) if started.elapsed() >= budget => {
                Err(ExtractError::LimitExceeded(format!(
                    "reading a page took longer than {} s",
                    budget.as_secs()
                )))
            }
            Err(ffi::RecognizeError::Stopped) => Err(ExtractError::OcrFailed(
                "Tesseract could not read the page".into(),
            )),
            Err(ffi::RecognizeError::Failed(why)) => Err(ExtractError::OcrFailed(why.into())),
        }
    }
}

/// Hands the engine back to the pool when the page is done, also on an early return.
struct Lent<'a> {
    owner: &'a Tesseract,
    engine: Option<ffi::Engine>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            self.owner.lock().idle.push(engine);
            self.owner.freed.notify_one();
        }
    }
}

/// Tesseract's text with its form feed and trailing blanks removed and runs of blank lines
/// reduced to one, so pages read by OCR look like pages with a text layer.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for line in text
        .lines()
        .map(|l| l.trim_end_matches(|c: char| c.is_whitespace() || c == '\u{c}'))
    {
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if blank {
            out.push('\n');
            blank = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out
}

/// Runs third-party decoders so that a panic on hostile bytes (none is known: the fuzz target
/// and proptests look for them) becomes a failed document instead of a lost worker.
fn contained<T>(
    what: &str,
    work: impl FnOnce() -> Result<T, ExtractError>,
) -> Result<T, ExtractError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
        Err(ExtractError::Corrupt(format!(
            "the {what} cannot be decoded"
        )))
    })
}

impl Ocr for Tesseract {
    fn read_image(&self, bytes: &[u8]) -> Result<Vec<String>, ExtractError> {
        let mut pages = Vec::new();
        contained("image", || {
            decode::decode(bytes, &self.config.limits, |page| {
                pages.push(self.read_page(page)?);
                Ok(())
            })
        })?;
        Ok(pages)
    }

    fn read_pdf_page(&self, pdf: &[u8], page_number: u32) -> Result<String, ExtractError> {
        let mut text = String::new();
        contained("PDF page's image", || {
            pdf::page_images(pdf, page_number, &self.config.limits, |image| {
                let part = self.read_page(image)?;
                if !part.is_empty() {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&part);
                }
                Ok(())
            })
        })?;
        Ok(text)
    }
}

/// Decodes an image file into its pages without reading them: the untrusted-bytes half of
/// [`Tesseract::read_image`], for fuzzing and tests. Returns each page's size.
pub fn decode_image_pages(
    bytes: &[u8],
    limits: &ImageLimits,
) -> Result<Vec<(u32, u32)>, ExtractError> {
    let mut sizes = Vec::new();
    decode::decode(bytes, limits, |page| {
        sizes.push(page.dimensions());
        Ok(())
    })?;
    Ok(sizes)
}

/// Takes the scanned images of a PDF page without reading them, as [`decode_image_pages`].
pub fn decode_pdf_page_images(
    pdf: &[u8],
    page_number: u32,
    limits: &ImageLimits,
) -> Result<Vec<(u32, u32)>, ExtractError> {
    let mut sizes = Vec::new();
    pdf::page_images(pdf, page_number, limits, |image| {
        sizes.push(image.dimensions());
        Ok(())
    })?;
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_keeps_paragraphs_and_drops_form_feeds() {
        assert_eq!(
            tidy("Invoice  \n\n\n\nTotal: 5\n\u{c}"),
            "Invoice\n\nTotal: 5"
        );
        assert_eq!(tidy("\n\n"), "");
    }

    #[test]
    fn tesseract_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Tesseract>();
    }
}
