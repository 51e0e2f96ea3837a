//! HTML to visible text: no scripts, styles or hidden elements; block elements and rows on
//! their own lines, table cells separated by tabs. The parser is html5ever (via scraper).

use ego_tree::iter::Edge;
use scraper::{Html, Node};

const INVISIBLE: &[&str] = &[
    "script", "style", "noscript", "template", "head", "title", "iframe", "object", "select",
    "datalist", "svg", "math", "canvas",
];

const BLOCK: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "html",
    "legend",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "ul",
];

fn hidden(element: &scraper::node::Element) -> bool {
    if element.attr("hidden").is_some() {
        return true;
    }
    if element.name() == "input" {
        return true;
    }
    element.attr("style").is_some_and(|style| {
        let style: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        style.contains("display:none") || style.contains("visibility:hidden")
    })
}

struct Writer {
    lines: Vec<String>,
    current: String,
    pending_space: bool,
}

impl Writer {
    fn text(&mut self, text: &str, preformatted: bool) {
        if preformatted {
            let mut parts = text.split('\n');
            if let Some(first) = parts.next() {
                self.current.push_str(first);
            }
            for part in parts {
                self.flush();
                self.current.push_str(part);
            }
            return;
        }
        if text.starts_with(char::is_whitespace) {
            self.pending_space = true;
        }
        for word in text.split_whitespace() {
            if self.pending_space && !self.current.is_empty() && !self.current.ends_with('\t') {
                self.current.push(' ');
            }
            self.current.push_str(word);
            self.pending_space = true;
        }
        if !text.ends_with(char::is_whitespace) {
            self.pending_space = false;
        }
    }

    fn cell(&mut self) {
        if !self.current.trim().is_empty() {
            self.current.push('\t');
        }
        self.pending_space = false;
    }

    fn flush(&mut self) {
        let line = std::mem::take(&mut self.current);
        // Leading spaces come only from preformatted text, where they are kept.
        let line = line.trim_end_matches([' ', '\t']);
        if !line.trim().is_empty() {
            self.lines.push(line.to_owned());
        }
        self.pending_space = false;
    }
}

/// Elements the parser closes on its own or that have no content: they do not nest.
const NOT_NESTING: &[&str] = &[
    "p", "li", "td", "th", "tr", "dt", "dd", "option", "br", "hr", "img", "input", "meta", "link",
    "area", "base", "col", "embed", "param", "source", "track", "wbr",
];

/// How deep the elements of `source` nest, estimated from its tags. The HTML parser spends
/// time quadratic in the nesting depth, so deeper documents are refused before parsing.
pub(crate) fn nesting_depth(source: &str) -> usize {
    let bytes = source.as_bytes();
    let (mut depth, mut max) = (0usize, 0usize);
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|b| *b == b'<') {
        i += off + 1;
        let closing = bytes.get(i) == Some(&b'/');
        let start = if closing { i + 1 } else { i };
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .map_or(bytes.len(), |e| start + e);
        if end == start {
            continue;
        }
        let name = source[start..end].to_ascii_lowercase();
        if NOT_NESTING.contains(&name.as_str()) {
            continue;
        }
        let self_closing = bytes[end..]
            .iter()
            .position(|b| *b == b'>')
            .is_some_and(|gt| gt > 0 && bytes[end + gt - 1] == b'/');
        if closing {
            depth = depth.saturating_sub(1);
        } else if !self_closing {
            depth += 1;
            max = max.max(depth);
        }
    }
    max
}

/// The visible text of an HTML document.
pub(crate) fn html_to_text(source: &str) -> String {
    let document = Html::parse_document(source);
    let mut writer = Writer {
        lines: Vec::new(),
        current: String::new(),
        pending_space: false,
    };
    let mut skipping: Option<ego_tree::NodeId> = None;
    let mut pre_depth = 0usize;
    for edge in document.tree.root().traverse() {
        match edge {
            Edge::Open(node) => {
                if skipping.is_some() {
                    continue;
                }
                match node.value() {
                    Node::Element(element) => {
                        let name = element.name();
                        if INVISIBLE.contains(&name) || hidden(element) {
                            skipping = Some(node.id());
                            continue;
                        }
                        if name == "br" {
                            writer.flush();
                        } else if name == "td" || name == "th" {
                            writer.cell();
                        } else if BLOCK.contains(&name) {
                            writer.flush();
                        }
                        if name == "pre" || name == "textarea" {
                            pre_depth += 1;
                        }
                    }
                    Node::Text(text) => writer.text(text, pre_depth > 0),
                    _ => {}
                }
            }
            Edge::Close(node) => {
                if let Some(id) = skipping {
                    if id == node.id() {
                        skipping = None;
                    }
                    continue;
                }
                if let Node::Element(element) = node.value() {
                    let name = element.name();
                    if BLOCK.contains(&name) {
                        writer.flush();
                    }
                    if name == "pre" || name == "textarea" {
                        pre_depth = pre_depth.saturating_sub(1);
                    }
                }
            }
        }
    }
    writer.flush();
    writer.lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_text_only() {
        let html = r#"<html><head><title>T</title><style>p{}</style><script>var a=1;</script></head>
            <body><h1>Invoice &amp; receipt</h1><p>Total:   <b>&euro;12</b>.</p>
            <div hidden>secret</div><p style="display: none">gone</p>
            <ul><li>one</li><li>two<br>three</li></ul>
            <table><tr><th>Invoice Number</th><td>INV-0042</td></tr></table>
            <pre>a
  b</pre></body></html>"#;
        assert_eq!(
            html_to_text(html),
            "Invoice & receipt\nTotal: €12.\none\ntwo\nthree\nInvoice Number\tINV-0042\na\n  b"
        );
    }

    #[test]
    fn nesting_depth_is_estimated_from_tags() {
        assert_eq!(nesting_depth("<div><p>a<p>b<br><span>c</span></div>"), 2);
        let deep = "<div>".repeat(100_000) + "deep" + &"</div>".repeat(100_000);
        assert_eq!(nesting_depth(&deep), 100_000);
        let html = "<div>".repeat(2_000) + "deep" + &"</div>".repeat(2_000);
        assert!(html_to_text(&html).contains("deep"));
    }
}
