//! A Word document whose main part is the fuzzer's bytes: the WordprocessingML reader.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fn docx(document: &[u8]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    let options = zip::write::SimpleFileOptions::default();
    let _ = zip.start_file("[Content_Types].xml", options);
    let _ = zip.write_all(br#"<Types><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#);
    let _ = zip.start_file("word/document.xml", options);
    let _ = zip.write_all(document);
    let _ = zip.finish();
    buf.into_inner()
}

fuzz_target!(|data: &[u8]| {
    let _ = a2v2_extract::extract(&docx(data), &a2v2_extract::Options::default());
});
