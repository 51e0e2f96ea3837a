//! Whatever file a person uploads as a contacts CSV: decoding, parsing, header mapping and
//! turning rows into request bodies never panic, and every row read is one the import reports
//! on (imported or skipped with a reason).
#![no_main]

use a2v2::contacts::import::{ImportFile, row_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = ImportFile::read(data) else {
        return;
    };
    for cells in &file.rows {
        if let Err(reason) = row_body(&file.columns, cells) {
            assert!(!reason.is_empty());
        }
    }
    let _ = file.preview();
});
