//! Schema-guided extraction: each schema field is looked up by its labels (the client's, then
//! defaults for common names such as `invoice_number`, `date`, `total`, `currency`), its value
//! read after the label on the same line, on the next line, or in the cell below a table
//! header, and typed: dates ISO 8601, money and numbers as decimal strings, phones E.164.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::fields::{amounts, dates, find_emails, phones};
use crate::{Fields, Schema, SchemaField, SchemaFieldType};

const MAX_FIELDS: usize = 100;
const MAX_NAME_CHARS: usize = 100;
const MAX_LABELS: usize = 50;
const MAX_LABEL_CHARS: usize = 100;

impl Schema {
    /// Parses and checks a client's schema; the error is a sentence for the client.
    pub fn parse(json: &[u8]) -> Result<Schema, String> {
        let schema: Schema =
            serde_json::from_slice(json).map_err(|e| format!("the schema is not valid: {e}"))?;
        if schema.fields.is_empty() {
            return Err("the schema must have at least one field".into());
        }
        if schema.fields.len() > MAX_FIELDS {
            return Err(format!("the schema may have at most {MAX_FIELDS} fields"));
        }
        let mut names = HashSet::new();
        for field in &schema.fields {
            let name = field.name.trim();
            if name.is_empty() {
                return Err("every schema field needs a non-empty name".into());
            }
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(format!(
                    "schema field names may be at most {MAX_NAME_CHARS} characters"
                ));
            }
            if !names.insert(name.to_owned()) {
                return Err(format!(
                    "the schema names the field \"{name}\" more than once"
                ));
            }
            if field.labels.len() > MAX_LABELS {
                return Err(format!(
                    "the schema field \"{name}\" may have at most {MAX_LABELS} labels"
                ));
            }
            if field
                .labels
                .iter()
                .any(|l| l.trim().is_empty() || l.chars().count() > MAX_LABEL_CHARS)
            {
                return Err(format!(
                    "the labels of schema field \"{name}\" must be non-empty and at most {MAX_LABEL_CHARS} characters"
                ));
            }
        }
        Ok(schema)
    }
}

/// What a field name means when the client gives no labels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Meaning {
    InvoiceNumber,
    Date,
    DueDate,
    Total,
    Subtotal,
    Tax,
    Currency,
    Other,
}

fn meaning(name: &str) -> Meaning {
    let n = name.to_ascii_lowercase().replace(['-', ' '], "_");
    match n.as_str() {
        "invoice_number" | "invoice_no" | "invoice_id" | "invoice" | "number" | "invoice_num"
        | "bill_number" | "receipt_number" => Meaning::InvoiceNumber,
        "date" | "invoice_date" | "issue_date" | "date_issued" | "bill_date" | "receipt_date" => {
            Meaning::Date
        }
        "due_date" | "date_due" | "payment_due" => Meaning::DueDate,
        "total" | "amount" | "amount_total" | "total_amount" | "grand_total" | "amount_due"
        | "total_due" | "invoice_total" => Meaning::Total,
        "subtotal" | "amount_untaxed" | "net_amount" | "sub_total" => Meaning::Subtotal,
        "tax" | "amount_tax" | "vat" | "tax_amount" => Meaning::Tax,
        "currency" | "currency_code" => Meaning::Currency,
        _ => Meaning::Other,
    }
}

/// Default labels, most specific first (English, German, French, Dutch, Polish, Spanish).
fn default_labels(meaning: Meaning) -> &'static [&'static str] {
    match meaning {
        Meaning::InvoiceNumber => &[
            "invoice number",
            "invoice no",
            "invoice nr",
            "invoice #",
            "invoice id",
            "invoice num",
            "rechnungsnummer",
            "rechnungsnr",
            "rechnung nr",
            "rechnungs-nr",
            "numéro de facture",
            "n° de facture",
            "facture n°",
            "facture no",
            "facture",
            "factuurnummer",
            "factuur nummer",
            "factuurnr",
            "factuur",
            "faktura nr",
            "número de factura",
            "factura",
            "receipt number",
            "receipt no",
            "bill number",
            "bill no",
            "booking id",
            "invoice",
        ],
        Meaning::Date => &[
            "invoice date",
            "date of issue",
            "issue date",
            "date issued",
            "bill date",
            "rechnungsdatum",
            "date de facture",
            "date de la facture",
            "factuurdatum",
            "factuur datum",
            "data wystawienia",
            "fecha de factura",
            "fecha",
            "datum",
            "date",
        ],
        Meaning::DueDate => &[
            "due date",
            "payment due",
            "date due",
            "fälligkeitsdatum",
            "fällig am",
            "zahlbar bis",
            "date d'échéance",
            "échéance",
            "date limite de paiement",
            "vervaldatum",
            "termin płatności",
        ],
        Meaning::Total => &[
            "grand total",
            "total due",
            "amount due",
            "balance due",
            "total amount",
            "invoice total",
            "total ttc",
            "montant ttc",
            "net à payer",
            "total à payer",
            "total incl",
            "total (incl",
            "gesamtbetrag",
            "rechnungsbetrag",
            "endbetrag",
            "bruttobetrag",
            "factuur totaal",
            "te betalen",
            "należność ogółem",
            "do zapłaty",
            "total facture",
            "totaal",
            "total",
            "summe",
            "razem",
            "amount",
        ],
        Meaning::Subtotal => &[
            "subtotal",
            "sub-total",
            "sub total",
            "total ht",
            "montant ht",
            "net amount",
            "total excl",
            "zwischensumme",
            "nettobetrag",
            "subtotaal",
            "exclusief btw",
        ],
        Meaning::Tax => &[
            "total tax",
            "tax amount",
            "vat amount",
            "tax",
            "vat",
            "mwst",
            "ust",
            "tva",
            "btw",
            "gst",
        ],
        Meaning::Currency => &["currency", "währung", "devise", "valuta"],
        Meaning::Other => &[],
    }
}

/// Words before or after a date label that make it another date (due, order, delivery).
fn other_date(before: &str, after: &str) -> bool {
    let before = before
        .trim_end()
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_lowercase();
    let after = after.trim_start().to_lowercase();
    [
        "due", "delivery", "order", "ship", "shipping", "payment", "print", "liefer", "verval",
        "of",
    ]
    .contains(&before.as_str())
        || ["limite", "de paiement", "of birth", "due"]
            .iter()
            .any(|w| after.starts_with(w))
}

/// Finds `label` in `line` at word boundaries, case-insensitively: byte ranges.
fn occurrences(line: &str, label: &str) -> Vec<(usize, usize)> {
    let lower = line.to_lowercase();
    // Lowercasing may change byte lengths; only use positions when they did not.
    if lower.len() != line.len() {
        return Vec::new();
    }
    let label = label.to_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find(&label) {
        let start = from + at;
        let end = start + label.len();
        let before_ok = !lower[..start].ends_with(|c: char| c.is_alphanumeric());
        let after_ok = label.ends_with(|c: char| !c.is_alphanumeric())
            || !lower[end..].starts_with(|c: char| c.is_alphanumeric());
        if before_ok && after_ok {
            out.push((start, end));
        }
        from = end;
    }
    out
}

/// The text after a label: separators (`:`, `#`, `n°`, `no.`) skipped.
fn after_label(rest: &str) -> &str {
    let mut rest = rest.trim_start_matches([' ', ':', '.', '\t', '-', '–', '=', '：']);
    for prefix in ["n°", "no.", "nr.", "no ", "nr "] {
        if rest.to_lowercase().starts_with(prefix) && rest.is_char_boundary(prefix.len()) {
            rest = &rest[prefix.len()..];
        }
    }
    rest.trim_start_matches([' ', ':', '.', '\t', '：'])
}

struct Context<'a> {
    lines: Vec<&'a str>,
    fields: &'a Fields,
    order: dates::Order,
    currency: Option<String>,
    region: Option<phonenumber::country::Id>,
}

/// Candidate values for `label`: the rest of its line, the next line, and the cell below.
fn candidates(ctx: &Context<'_>, label: &str, meaning: Meaning) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in ctx.lines.iter().enumerate() {
        let cells: Vec<&str> = line.split('\t').collect();
        if cells.len() > 1
            && let Some(k) = cells.iter().position(|c| {
                c.trim()
                    .trim_end_matches([':', '.'])
                    .trim()
                    .eq_ignore_ascii_case(label)
            })
            && let Some(next) = ctx.lines.get(i + 1)
        {
            let below: Vec<&str> = next.split('\t').collect();
            if below.len() == cells.len()
                && let Some(value) = below.get(k).filter(|v| !v.trim().is_empty())
            {
                out.push(value.trim().to_owned());
            }
        }
        for (start, end) in occurrences(line, label) {
            if matches!(meaning, Meaning::Date) && other_date(&line[..start], &line[end..]) {
                continue;
            }
            let rest = after_label(&line[end..]);
            // A label that is a table header cell of its own is handled above.
            if rest.is_empty()
                || (cells.len() > 1
                    && line[end..].starts_with('\t')
                    && !rest.starts_with(|c: char| {
                        c.is_ascii_digit() || c == '#' || c == '$' || c == '€' || c == '£'
                    }))
            {
                if rest.is_empty()
                    && let Some(next) = ctx
                        .lines
                        .get(i + 1)
                        .map(|n| n.trim())
                        .filter(|n| !n.is_empty())
                {
                    out.push(next.split('\t').next().unwrap_or(next).to_owned());
                }
                if !rest.is_empty() {
                    out.push(rest.to_owned());
                }
                continue;
            }
            out.push(rest.to_owned());
        }
    }
    out
}

fn identifier(value: &str) -> Option<String> {
    value
        .split_whitespace()
        .map(|t| t.trim_matches(|c: char| matches!(c, ',' | ';' | ':' | ')' | '(' | '.')))
        .find(|t| t.chars().any(|c| c.is_ascii_digit()) && t.chars().count() <= 64)
        .map(|t| t.trim_start_matches('#').to_owned())
        .filter(|t| !t.is_empty())
}

/// The amount a value shows: the last one with a currency marker, else the last number.
fn money(value: &str, ctx: &Context<'_>) -> Option<(String, Option<String>)> {
    if let Some(a) = amounts::find_amounts(value).pop() {
        return Some((a.value, a.currency));
    }
    let code = value
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| {
            w.len() == 3
                && w.chars().all(|c| c.is_ascii_uppercase())
                && amounts::dominant_currency(w).is_some()
        })
        .map(str::to_owned);
    let numbers: Vec<String> = value
        .split_whitespace()
        .filter_map(|token| {
            let token = token.trim_start_matches(|c: char| !c.is_ascii_digit() && c != '-');
            let token = token.trim_end_matches(|c: char| !c.is_ascii_digit());
            let negative = token.starts_with('-');
            let n = amounts::normalize_number(token.trim_start_matches('-'))?;
            Some(if negative { format!("-{n}") } else { n })
        })
        .collect();
    numbers
        .into_iter()
        .next_back()
        .map(|n| (n, code.or_else(|| ctx.currency.clone())))
}

fn typed(kind: SchemaFieldType, meaning: Meaning, value: &str, ctx: &Context<'_>) -> Option<Value> {
    match kind {
        SchemaFieldType::Date => dates::parse_date(value, ctx.order).map(Value::String),
        SchemaFieldType::Money => money(value, ctx).map(|(v, _)| Value::String(v)),
        SchemaFieldType::Number => {
            let token = value
                .split_whitespace()
                .find(|t| t.starts_with(|c: char| c.is_ascii_digit() || c == '-'))?;
            let token = token.trim_end_matches(|c: char| !c.is_ascii_digit());
            let negative = token.starts_with('-');
            let n = amounts::normalize_number(token.trim_start_matches('-'))?;
            let n = if negative { format!("-{n}") } else { n };
            serde_json::from_str::<serde_json::Number>(&n)
                .ok()
                .map(Value::Number)
        }
        SchemaFieldType::Email => find_emails(value)
            .next()
            .map(|e| Value::String(e.to_owned())),
        SchemaFieldType::Phone => phones::find_phones(&format!("Tel: {value}"), ctx.region)
            .into_iter()
            .next()
            .map(|p| Value::String(p.e164)),
        SchemaFieldType::String => match meaning {
            Meaning::InvoiceNumber => identifier(value).map(Value::String),
            Meaning::Currency => amounts::dominant_currency(value).map(Value::String),
            _ => {
                let v = value.trim();
                (!v.is_empty() && v.chars().count() <= 500).then(|| Value::String(v.to_owned()))
            }
        },
    }
}

/// When no label is found: the document's first date, its largest amount, its currency.
fn fallback(field: &SchemaField, meaning: Meaning, ctx: &Context<'_>) -> Option<Value> {
    match (field.kind, meaning) {
        (SchemaFieldType::Date, Meaning::Date) => ctx
            .fields
            .dates
            .first()
            .map(|d| Value::String(d.value.clone())),
        (SchemaFieldType::Money | SchemaFieldType::Number, Meaning::Total) => ctx
            .fields
            .amounts
            .iter()
            .filter(|a| a.currency.is_some() && a.currency == ctx.currency)
            .max_by(|a, b| {
                let x: f64 = a.value.parse().unwrap_or(0.0);
                let y: f64 = b.value.parse().unwrap_or(0.0);
                x.total_cmp(&y)
            })
            .map(|a| Value::String(a.value.clone())),
        (SchemaFieldType::String, Meaning::Currency) => ctx.currency.clone().map(Value::String),
        (SchemaFieldType::Email, _) => ctx
            .fields
            .emails
            .first()
            .map(|e| Value::String(e.value.clone())),
        (SchemaFieldType::Phone, _) => ctx
            .fields
            .phones
            .first()
            .map(|p| Value::String(p.value.clone())),
        _ => None,
    }
}

fn field_value(field: &SchemaField, ctx: &Context<'_>) -> Value {
    let meaning = if field.labels.is_empty() {
        meaning(&field.name)
    } else {
        Meaning::Other
    };
    let humanized = field.name.replace(['_', '-'], " ");
    let mut labels: Vec<&str> = field.labels.iter().map(String::as_str).collect();
    labels.extend_from_slice(default_labels(meaning));
    if meaning == Meaning::Other && field.labels.is_empty() {
        labels.push(&humanized);
    }
    // A total is the largest amount under the most specific label that has one.
    let largest = meaning == Meaning::Total;
    for label in labels {
        let values: Vec<Value> = candidates(ctx, label, meaning)
            .iter()
            .filter_map(|c| typed(field.kind, meaning, c, ctx))
            .collect();
        let chosen = if largest {
            values.into_iter().max_by(|a, b| {
                let x: f64 = a.as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0);
                let y: f64 = b.as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0);
                x.total_cmp(&y)
            })
        } else {
            values.into_iter().next()
        };
        if let Some(value) = chosen {
            return value;
        }
    }
    fallback(field, meaning, ctx).unwrap_or(Value::Null)
}

/// The schema's fields found in `text`: one entry per field, `null` where not found.
pub(crate) fn schema_fields(
    schema: &Schema,
    text: &str,
    fields: &Fields,
    default_region: Option<&str>,
) -> Map<String, Value> {
    let ctx = Context {
        lines: text.lines().map(str::trim).collect(),
        fields,
        order: crate::fields::date_order(text),
        currency: amounts::dominant_currency(text),
        region: phones::region(default_region),
    };
    schema
        .fields
        .iter()
        .map(|f| (f.name.trim().to_owned(), field_value(f, &ctx)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Page;

    fn run(schema: &str, text: &str) -> Map<String, Value> {
        let schema = Schema::parse(schema.as_bytes()).unwrap();
        let pages = [Page {
            number: 1,
            text: text.to_owned(),
            ocr: false,
        }];
        let fields = crate::find_fields(&pages, Some("US"));
        schema_fields(&schema, text, &fields, Some("US"))
    }

    #[test]
    fn parse_checks_the_schema() {
        assert!(Schema::parse(br#"{"fields":[{"name":"a","type":"string"}]}"#).is_ok());
        let err = |s: &str| Schema::parse(s.as_bytes()).unwrap_err();
        assert!(err("{").contains("not valid"));
        assert!(err(r#"{"fields":[]}"#).contains("at least one"));
        assert!(err(r#"{"fields":[{"name":" ","type":"string"}]}"#).contains("non-empty name"));
        assert!(
            err(r#"{"fields":[{"name":"a","type":"string"},{"name":"a","type":"date"}]}"#)
                .contains("more than once")
        );
        assert!(err(r#"{"fields":[{"name":"a","type":"colour"}]}"#).contains("not valid"));
        assert!(
            err(r#"{"fields":[{"name":"a","type":"string","labels":[""]}]}"#).contains("labels")
        );
    }

    #[test]
    fn invoice_fields_by_default_labels() {
        let text = "ACME Ltd\nInvoice Number: INV-0042\nInvoice Date: 12 March 2026\nDue Date: 12 April 2026\nSubtotal: $1,000.00\nTotal: $1,200.00\n";
        let got = run(
            r#"{"fields":[{"name":"invoice_number","type":"string"},{"name":"date","type":"date"},{"name":"total","type":"money"},{"name":"currency","type":"string"},{"name":"po","type":"string"}]}"#,
            text,
        );
        assert_eq!(got["invoice_number"], "INV-0042");
        assert_eq!(got["date"], "2026-03-12");
        assert_eq!(got["total"], "1200.00");
        assert_eq!(got["currency"], "USD");
        assert_eq!(got["po"], Value::Null);
    }

    #[test]
    fn client_labels_and_types() {
        let text =
            "Ref.\tOrder\tDate\nX1\t42\t03/04/2026\nSupport line: (212) 555-0100\nQty: 1.500,5\n";
        let got = run(
            r#"{"fields":[{"name":"order","type":"number","labels":["Order"]},{"name":"when","type":"date","labels":["Date"]},{"name":"support","type":"phone","labels":["Support line"]},{"name":"qty","type":"number","labels":["Qty"]}]}"#,
            text,
        );
        assert_eq!(got["order"], 42);
        assert_eq!(got["when"], "2026-04-03");
        assert_eq!(got["support"], "+12125550100");
        assert_eq!(got["qty"], 1500.5);
    }
}
