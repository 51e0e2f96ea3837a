//! The only unsafe code of the crate: Tesseract's C API (`tesseract/capi.h`), loaded at run time
//! so that a machine without the library still runs everything else and reports OCR as
//! unavailable. Each function used is looked up once; an [`Engine`] owns one `TessBaseAPI`
//! handle, which Tesseract allows to be used by one thread at a time.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::sync::Arc;

use libloading::Library;

/// Names tried in order when no library path is configured.
const LIBRARY_NAMES: &[&str] = &[
    "libtesseract.so.5",
    "libtesseract.so",
    "libtesseract.5.dylib",
];

type Handle = *mut c_void;
type Monitor = *mut c_void;

/// The C functions the engine calls, resolved from the loaded library.
pub(super) struct Api {
    version: unsafe extern "C" fn() -> *const c_char,
    create: unsafe extern "C" fn() -> Handle,
    delete: unsafe extern "C" fn(Handle),
    init3: unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> c_int,
    set_variable: unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> c_int,
    set_page_seg_mode: unsafe extern "C" fn(Handle, c_int),
    set_image: unsafe extern "C" fn(Handle, *const u8, c_int, c_int, c_int, c_int),
    set_source_resolution: unsafe extern "C" fn(Handle, c_int),
    recognize: unsafe extern "C" fn(Handle, Monitor) -> c_int,
    get_utf8_text: unsafe extern "C" fn(Handle) -> *mut c_char,
    delete_text: unsafe extern "C" fn(*const c_char),
    clear: unsafe extern "C" fn(Handle),
    end: unsafe extern "C" fn(Handle),
    monitor_create: unsafe extern "C" fn() -> Monitor,
    monitor_delete: unsafe extern "C" fn(Monitor),
    monitor_set_deadline_msecs: unsafe extern "C" fn(Monitor, c_int),
    // Kept last so the function pointers above never outlive the mapped library.
    _library: Library,
}

impl Api {
    /// Loads the library from `path`, or from the system's library path by its usual names.
    pub(super) fn load(path: Option<&Path>) -> Result<Arc<Self>, String> {
        let library = match path {
            // SAFETY: loading libtesseract runs its static initialisers, which only set up
            // Tesseract's own global tables; no other code of ours runs meanwhile.
            Some(path) => unsafe { Library::new(path) }.map_err(|e| e.to_string())?,
            None => {
                let mut errors = Vec::new();
                let mut found = None;
                for name in LIBRARY_NAMES {
                    // SAFETY: as above.
                    match unsafe { Library::new(name) } {
                        Ok(library) => {
                            found = Some(library);
                            break;
                        }
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                found.ok_or_else(|| errors.join("; "))?
            }
        };
        macro_rules! symbol {
            ($name:literal) => {
                // SAFETY: the symbol is declared in capi.h (Tesseract 4 and 5) with exactly the
                // signature of the field it is stored in; the Library is stored in the same
                // struct, after these fields, so it is unloaded only after they are dropped.
                *unsafe { library.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{}: {e}", $name))?
            };
        }
        Ok(Arc::new(Self {
            version: symbol!("TessVersion"),
            create: symbol!("TessBaseAPICreate"),
            delete: symbol!("TessBaseAPIDelete"),
            init3: symbol!("TessBaseAPIInit3"),
            set_variable: symbol!("TessBaseAPISetVariable"),
            set_page_seg_mode: symbol!("TessBaseAPISetPageSegMode"),
            set_image: symbol!("TessBaseAPISetImage"),
            set_source_resolution: symbol!("TessBaseAPISetSourceResolution"),
            recognize: symbol!("TessBaseAPIRecognize"),
            get_utf8_text: symbol!("TessBaseAPIGetUTF8Text"),
            delete_text: symbol!("TessDeleteText"),
            clear: symbol!("TessBaseAPIClear"),
            end: symbol!("TessBaseAPIEnd"),
            monitor_create: symbol!("TessMonitorCreate"),
            monitor_delete: symbol!("TessMonitorDelete"),
            monitor_set_deadline_msecs: symbol!("TessMonitorSetDeadlineMSecs"),
            _library: library,
        }))
    }

    /// The library's version string, e.g. `5.3.0`.
    pub(super) fn version(&self) -> String {
        // SAFETY: TessVersion returns a pointer to a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr((self.version)()) };
        version.to_string_lossy().into_owned()
    }
}

/// One initialised Tesseract instance with its language models loaded.
pub(super) struct Engine {
    api: Arc<Api>,
    handle: Handle,
}

// SAFETY: a TessBaseAPI handle has no affinity to the thread that created it; it must only not
// be used by two threads at once, which `&mut self` on every use guarantees.
unsafe impl Send for Engine {}

/// Why a page could not be read.
pub(super) enum RecognizeError {
    /// Recognition stopped: the time budget ran out (the monitor cancelled the page) or
    /// Tesseract gave up on the image.
    Stopped,
    Failed(&'static str),
}

impl Engine {
    /// Creates an instance reading `languages` (e.g. `eng+deu`) with data from `datapath`, or
    /// from Tesseract's default location.
    pub(super) fn new(
        api: Arc<Api>,
        datapath: Option<&Path>,
        languages: &str,
    ) -> Result<Self, String> {
        let languages = CString::new(languages).map_err(|_| "language contains NUL")?;
        let datapath = datapath
            .map(|p| CString::new(p.as_os_str().as_encoded_bytes()))
            .transpose()
            .map_err(|_| "data path contains NUL")?;
        // SAFETY: TessBaseAPICreate has no preconditions; a null result is checked.
        let handle = unsafe { (api.create)() };
        if handle.is_null() {
            return Err("TessBaseAPICreate failed".into());
        }
        let engine = Self { api, handle };
        let datapath_ptr = datapath.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        // SAFETY: handle is live; both strings are NUL-terminated and outlive the call; a null
        // datapath means Tesseract's compiled-in default (or TESSDATA_PREFIX).
        let status = unsafe { (engine.api.init3)(engine.handle, datapath_ptr, languages.as_ptr()) };
        if status != 0 {
            return Err(format!(
                "the language data {:?} could not be loaded",
                languages.to_string_lossy()
            ));
        }
        // Tesseract writes its diagnostics to stderr unless told otherwise; the server's log is
        // structured and those lines carry nothing a client or operator could act on.
        engine.set_variable(c"debug_file", c"/dev/null");
        Ok(engine)
    }

    fn set_variable(&self, name: &CStr, value: &CStr) {
        // SAFETY: handle is live; both are NUL-terminated; Tesseract copies the value. A false
        // result only means an unknown variable name, which is not an error for us.
        unsafe { (self.api.set_variable)(self.handle, name.as_ptr(), value.as_ptr()) };
    }

    /// Reads the text of an 8-bit grayscale image (`width * height` bytes, row-major) at `dpi`,
    /// giving up after `deadline_ms` milliseconds.
    pub(super) fn recognize(
        &mut self,
        pixels: &[u8],
        width: u32,
        height: u32,
        dpi: u32,
        deadline_ms: u32,
    ) -> Result<String, RecognizeError> {
        let (Ok(w), Ok(h)) = (c_int::try_from(width), c_int::try_from(height)) else {
            return Err(RecognizeError::Failed("image too large"));
        };
        if u64::from(width) * u64::from(height) != pixels.len() as u64 || width == 0 || height == 0
        {
            return Err(RecognizeError::Failed(
                "image buffer does not match its size",
            ));
        }
        let dpi = c_int::try_from(dpi).unwrap_or(300);
        let deadline = c_int::try_from(deadline_ms).unwrap_or(c_int::MAX);
        // SAFETY: handle is live. PSM_AUTO (3) is a valid mode. SetImage copies `pixels`
        // (checked above to hold width*height bytes; 1 byte per pixel, rows of `width` bytes)
        // into its own image, so the slice only needs to live for the call.
        unsafe {
            (self.api.set_page_seg_mode)(self.handle, 3);
            (self.api.set_image)(self.handle, pixels.as_ptr(), w, h, 1, w);
            (self.api.set_source_resolution)(self.handle, dpi);
        }
        // SAFETY: TessMonitorCreate has no preconditions; a null result is checked.
        let monitor = unsafe { (self.api.monitor_create)() };
        if monitor.is_null() {
            // SAFETY: handle is live.
            unsafe { (self.api.clear)(self.handle) };
            return Err(RecognizeError::Failed("TessMonitorCreate failed"));
        }
        // SAFETY: monitor and handle are live; the monitor is deleted only after Recognize
        // returned, and Tesseract keeps no reference to it afterwards.
        let status = unsafe {
            (self.api.monitor_set_deadline_msecs)(monitor, deadline);
            let status = (self.api.recognize)(self.handle, monitor);
            (self.api.monitor_delete)(monitor);
            status
        };
        let result = if status != 0 {
            Err(RecognizeError::Stopped)
        } else {
            // SAFETY: handle is live with a recognised image; the returned string is owned by
            // us and freed with TessDeleteText exactly once, after copying it.
            unsafe {
                let text = (self.api.get_utf8_text)(self.handle);
                if text.is_null() {
                    Err(RecognizeError::Failed("no text result"))
                } else {
                    let owned = CStr::from_ptr(text).to_string_lossy().into_owned();
                    (self.api.delete_text)(text);
                    Ok(owned)
                }
            }
        };
        // SAFETY: handle is live; Clear frees the image and results, keeping the models.
        unsafe { (self.api.clear)(self.handle) };
        result
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: handle is live and used by no one else (we own it); End then Delete is the
        // documented teardown, after which the handle is never used again.
        unsafe {
            (self.api.end)(self.handle);
            (self.api.delete)(self.handle);
        }
    }
}
