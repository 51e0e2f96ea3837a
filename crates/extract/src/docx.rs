//! DOCX text: the body's paragraphs and tables (cells separated by tabs, one row per line),
//! list items with their numbers or bullets, headers before the body and footers after it.
//! Every part is read through a size limit, so a ZIP bomb fails instead of filling memory.

use std::collections::HashMap;
use std::io::Read;

use quick_xml::events::{BytesStart, Event};

use crate::ExtractError;
use crate::budget::Budget;

type Archive<'a> = zip::ZipArchive<std::io::Cursor<&'a [u8]>>;

fn corrupt(what: impl std::fmt::Display) -> ExtractError {
    ExtractError::Corrupt(format!("the Word document cannot be read ({what})"))
}

/// Reads one part, charging its real (not declared) size to the budget.
fn read_part(
    archive: &mut Archive<'_>,
    name: &str,
    budget: &mut Budget,
) -> Result<Option<String>, ExtractError> {
    let file = match archive.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(corrupt(e)),
    };
    let limit = budget.expanded_left();
    if file.size() > limit {
        return Err(ExtractError::LimitExceeded(format!(
            "the document expands to more than {} bytes",
            budget.limits.max_expanded_bytes
        )));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(corrupt)?;
    budget.expand(bytes.len() as u64)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

/// One level of a list definition: its number format and text such as `%1.`.
#[derive(Clone, Default)]
struct Level {
    format: String,
    text: String,
    start: u32,
}

/// List definitions (`numbering.xml`): numId → levels.
#[derive(Default)]
struct Numbering {
    lists: HashMap<String, Vec<Level>>,
    counters: HashMap<String, Vec<u32>>,
}

impl Numbering {
    fn parse(xml: &str) -> Self {
        let mut abstracts: HashMap<String, Vec<Level>> = HashMap::new();
        let mut nums: Vec<(String, String)> = Vec::new();
        let mut reader = quick_xml::Reader::from_str(xml);
        let (mut current_abstract, mut current_num) = (None::<String>, None::<String>);
        let mut level: Option<usize> = None;
        loop {
            match reader.read_event() {
                Ok(Event::Start(e) | Event::Empty(e)) => match e.local_name().as_ref() {
                    b"abstractNum" => current_abstract = attr(&e, b"w:abstractNumId"),
                    b"num" => current_num = attr(&e, b"w:numId"),
                    b"abstractNumId" => {
                        if let (Some(num), Some(id)) = (&current_num, attr(&e, b"w:val")) {
                            nums.push((num.clone(), id));
                        }
                    }
                    b"lvl" => {
                        level = attr(&e, b"w:ilvl")
                            .and_then(|l| l.parse().ok())
                            .filter(|l| *l < 9);
                    }
                    name @ (b"numFmt" | b"lvlText" | b"start") => {
                        if let (Some(a), Some(l)) = (&current_abstract, level) {
                            let levels = abstracts.entry(a.clone()).or_default();
                            if levels.len() <= l {
                                levels.resize(l + 1, Level::default());
                            }
                            let value = attr(&e, b"w:val").unwrap_or_default();
                            match name {
                                b"numFmt" => levels[l].format = value,
                                b"lvlText" => levels[l].text = value,
                                _ => levels[l].start = value.parse().unwrap_or(1),
                            }
                        }
                    }
                    _ => {}
                },
                Ok(Event::Eof) | Err(_) => break,
                _ => {}
            }
        }
        let lists = nums
            .into_iter()
            .filter_map(|(num, abs)| abstracts.get(&abs).map(|levels| (num, levels.clone())))
            .collect();
        Self {
            lists,
            counters: HashMap::new(),
        }
    }

    /// The marker of the next item of list `num` at `level`, e.g. `2.` or `•`.
    fn marker(&mut self, num: &str, level: usize) -> String {
        let Some(levels) = self.lists.get(num) else {
            return "•".into();
        };
        let counters = self
            .counters
            .entry(num.to_owned())
            .or_insert_with(|| vec![0; 9]);
        let level = level.min(8);
        counters[level] += 1;
        for deeper in counters.iter_mut().skip(level + 1) {
            *deeper = 0;
        }
        let Some(this) = levels.get(level) else {
            return "•".into();
        };
        if this.format == "bullet" || this.format == "none" || this.text.is_empty() {
            return "•".into();
        }
        let mut text = this.text.clone();
        for (i, def) in levels.iter().enumerate().take(level + 1) {
            let n = counters[i].max(1) + def.start.saturating_sub(1);
            text = text.replace(&format!("%{}", i + 1), &format_number(n, &def.format));
        }
        text
    }
}

fn format_number(n: u32, format: &str) -> String {
    match format {
        "lowerLetter" => letter(n).to_lowercase(),
        "upperLetter" => letter(n),
        "lowerRoman" => roman(n).to_lowercase(),
        "upperRoman" => roman(n),
        _ => n.to_string(),
    }
}

fn letter(n: u32) -> String {
    let n = n.max(1) - 1;
    let c = char::from(b'A' + (n % 26) as u8);
    std::iter::repeat_n(c, (n / 26 + 1) as usize).collect()
}

fn roman(mut n: u32) -> String {
    const TABLE: &[(u32, &str)] = &[
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    let mut out = String::new();
    for (value, digits) in TABLE {
        while n >= *value {
            out.push_str(digits);
            n -= value;
        }
    }
    out
}

/// The text of one WordprocessingML part (body, header or footer).
fn part_text(
    xml: &str,
    numbering: &mut Numbering,
    budget: &Budget,
) -> Result<String, ExtractError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = String::new();
    let mut paragraph = String::new();
    let mut list: Option<(String, usize)> = None;
    let mut in_text = false;
    // Open tables: the cells of the row being read in each.
    let mut tables: Vec<Vec<String>> = Vec::new();
    let mut skip_depth = 0usize;
    let mut merged = false;
    let mut events = 0usize;
    loop {
        events += 1;
        if events.is_multiple_of(65_536) {
            budget.check_time()?;
        }
        let event = reader.read_event().map_err(corrupt)?;
        if skip_depth > 0 {
            match event {
                Event::Start(_) => skip_depth += 1,
                Event::End(_) => skip_depth -= 1,
                Event::Eof => break,
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                b"t" => in_text = true,
                // Deleted text, field instructions and the fallback copy of drawings are not
                // part of the visible text.
                b"delText" | b"instrText" | b"Fallback" => skip_depth = 1,
                b"tbl" => tables.push(Vec::new()),
                b"tr" => {
                    if let Some(row) = tables.last_mut() {
                        row.clear();
                    }
                }
                b"tc" => {
                    merged = false;
                    if let Some(row) = tables.last_mut() {
                        row.push(String::new());
                    }
                }
                b"p" => {
                    paragraph.clear();
                    list = None;
                }
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                // A tab character, not a tab stop definition (`w:tabs/w:tab` with a position).
                b"tab" if attr(&e, b"w:pos").is_none() => paragraph.push('\t'),
                // A cell merged with the one above shows that cell's content, not its own.
                b"vMerge" if attr(&e, b"w:val").is_none_or(|v| v == "continue") => merged = true,
                b"br" | b"cr" => paragraph.push('\n'),
                b"ilvl" => {
                    let level = attr(&e, b"w:val").and_then(|v| v.parse().ok()).unwrap_or(0);
                    list = Some((list.map(|l| l.0).unwrap_or_default(), level));
                }
                b"numId" => {
                    let id = attr(&e, b"w:val").unwrap_or_default();
                    if id != "0" {
                        list = Some((id, list.map_or(0, |l| l.1)));
                    }
                }
                b"p" if tables.is_empty() => out.push('\n'),
                _ => {}
            },
            Event::Text(t) if in_text => paragraph.push_str(&t.xml10_content().map_err(corrupt)?),
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    paragraph.push(c);
                } else if let Some(s) = r
                    .decode()
                    .ok()
                    .and_then(|n| quick_xml::escape::resolve_predefined_entity(&n))
                {
                    paragraph.push_str(s);
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" => {
                    let mut text = std::mem::take(&mut paragraph);
                    if let Some((num, level)) = list.take().filter(|(n, _)| !n.is_empty())
                        && !text.trim().is_empty()
                    {
                        let marker = numbering.marker(&num, level);
                        text = format!("{}{marker} {text}", "  ".repeat(level));
                    }
                    match tables.last_mut() {
                        Some(_) if merged => {}
                        Some(row) => {
                            if row.is_empty() {
                                row.push(String::new());
                            }
                            if let Some(cell) = row.last_mut() {
                                if !cell.is_empty() && !text.trim().is_empty() {
                                    cell.push(' ');
                                }
                                cell.push_str(text.trim());
                            }
                        }
                        None => {
                            out.push_str(&text);
                            out.push('\n');
                        }
                    }
                }
                b"tr" => {
                    let cells = tables.last_mut().map(std::mem::take).unwrap_or_default();
                    let line = cells
                        .iter()
                        .map(|c| c.replace(['\n', '\t'], " "))
                        .collect::<Vec<_>>()
                        .join("\t");
                    match tables.len() {
                        0 | 1 => {
                            out.push_str(line.trim_end());
                            out.push('\n');
                        }
                        // A table inside a cell: its rows join the outer cell.
                        n => {
                            if let Some(cell) = tables[n - 2].last_mut() {
                                if !cell.is_empty() {
                                    cell.push(' ');
                                }
                                cell.push_str(line.trim());
                            }
                        }
                    }
                }
                b"tbl" => {
                    tables.pop();
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Parts of one kind (`header`, `footer`) in name order.
fn parts_named(archive: &Archive<'_>, kind: &str) -> Vec<String> {
    let mut names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| {
            n.strip_prefix("word/")
                .and_then(|rest| rest.strip_prefix(kind))
                .is_some_and(|rest| rest.ends_with(".xml") && !rest.contains('/'))
        })
        .map(|n| n.into_owned())
        .collect();
    names.sort_by_key(|n| (n.len(), n.clone()));
    names
}

/// The text of a Word document.
pub(crate) fn read_docx(bytes: &[u8], budget: &mut Budget) -> Result<String, ExtractError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(corrupt)?;
    if archive.len() > 10_000 {
        return Err(ExtractError::LimitExceeded(
            "the document has more than 10000 parts".into(),
        ));
    }
    let mut numbering = match read_part(&mut archive, "word/numbering.xml", budget)? {
        Some(xml) => Numbering::parse(&xml),
        None => Numbering::default(),
    };
    let document = read_part(&mut archive, "word/document.xml", budget)?
        .ok_or_else(|| corrupt("it has no word/document.xml"))?;
    let mut sections: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for name in parts_named(&archive, "header") {
        if let Some(xml) = read_part(&mut archive, &name, budget)? {
            let text = part_text(&xml, &mut numbering, budget)?;
            if !text.trim().is_empty() && seen.insert(text.clone()) {
                sections.push(text);
            }
        }
    }
    sections.push(part_text(&document, &mut numbering, budget)?);
    for name in parts_named(&archive, "footer") {
        if let Some(xml) = read_part(&mut archive, &name, budget)? {
            let text = part_text(&xml, &mut numbering, budget)?;
            if !text.trim().is_empty() && seen.insert(text.clone()) {
                sections.push(text);
            }
        }
    }
    Ok(crate::pipeline::tidy(&sections.join("\n")))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use crate::{ExtractError, Options, extract};

    fn docx(document: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("[Content_Types].xml", options).unwrap();
        zip.write_all(br#"<Types><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#).unwrap();
        zip.start_file("word/document.xml", options).unwrap();
        zip.write_all(document.as_bytes()).unwrap();
        for (name, body) in extra {
            zip.start_file(*name, options).unwrap();
            zip.write_all(body.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        buf.into_inner()
    }

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

    #[test]
    fn paragraphs_tables_lists_headers_and_footers() {
        let body = format!(
            r#"<w:document {W}><w:body>
            <w:p><w:r><w:t>Invoice &amp; terms</w:t></w:r><w:r><w:tab/><w:t>A</w:t></w:r></w:p>
            <w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>first</w:t></w:r></w:p>
            <w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>second</w:t></w:r></w:p>
            <w:tbl><w:tr><w:tc><w:p><w:r><w:t>Invoice Number</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>INV-0042</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
            <w:p><w:r><w:delText>removed</w:delText><w:t>kept</w:t></w:r></w:p>
            </w:body></w:document>"#
        );
        let numbering = format!(
            r#"<w:numbering {W}><w:abstractNum w:abstractNumId="7"><w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="%1."/></w:lvl></w:abstractNum><w:num w:numId="1"><w:abstractNumId w:val="7"/></w:num></w:numbering>"#
        );
        let header = format!(r#"<w:hdr {W}><w:p><w:r><w:t>ACME Ltd</w:t></w:r></w:p></w:hdr>"#);
        let footer = format!(r#"<w:ftr {W}><w:p><w:r><w:t>Page footer</w:t></w:r></w:p></w:ftr>"#);
        let bytes = docx(
            &body,
            &[
                ("word/numbering.xml", &numbering),
                ("word/header1.xml", &header),
                ("word/footer1.xml", &footer),
            ],
        );
        let e = extract(&bytes, &Options::default()).unwrap();
        assert_eq!(
            e.text,
            "ACME Ltd\n\nInvoice & terms\tA\n1. first\n2. second\nInvoice Number\tINV-0042\nkept\n\nPage footer"
        );
    }

    #[test]
    fn zip_bombs_hit_the_expansion_limit() {
        let body = format!(
            r#"<w:document {W}><w:body><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:body></w:document>"#,
            "a".repeat(4 << 20)
        );
        let bytes = docx(&body, &[]);
        assert!(bytes.len() < 100_000, "the test document compresses well");
        let mut options = Options::default();
        options.limits.max_expanded_bytes = 1 << 20;
        assert!(matches!(
            extract(&bytes, &options),
            Err(ExtractError::LimitExceeded(_))
        ));
    }

    #[test]
    fn a_word_document_without_its_main_part_is_corrupt() {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buf);
        zip.start_file(
            "[Content_Types].xml",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(b"wordprocessingml.document.main+xml")
            .unwrap();
        zip.finish().unwrap();
        assert!(matches!(
            extract(&buf.into_inner(), &Options::default()),
            Err(ExtractError::Corrupt(_))
        ));
    }
}
