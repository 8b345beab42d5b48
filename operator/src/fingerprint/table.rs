//! Delimited tables as written: fields with whether each was quoted, the
//! line ending, and the dialect a product's key names.

use super::Unmarkable;

/// One field of a delimited table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Field {
    pub(super) text: String,
    pub(super) quoted: bool,
}

/// A delimited table as written: rows of fields, its line ending, and
/// whether the text ends with one.
#[derive(Debug)]
pub(super) struct Table {
    pub(super) rows: Vec<Vec<Field>>,
    pub(super) crlf: bool,
    pub(super) final_newline: bool,
}

/// Reads RFC 4180 text with `delimiter`; with `quoting` false (TSV) a quote
/// is an ordinary character.
pub(super) fn parse(text: &str, delimiter: char, quoting: bool) -> Result<Table, Unmarkable> {
    let crlf = text.contains("\r\n");
    let final_newline = text.ends_with('\n');
    let body = text.strip_suffix('\n').unwrap_or(text);
    let body = body.strip_suffix('\r').unwrap_or(body);
    let mut rows = Vec::new();
    if body.is_empty() && !final_newline {
        return Ok(Table {
            rows,
            crlf,
            final_newline,
        });
    }
    let mut row = Vec::new();
    let mut field = String::new();
    let (mut quoted, mut in_quotes, mut line, mut quote_line) = (false, false, 1, 1);
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if quoting && field.is_empty() && !quoted => {
                quoted = true;
                in_quotes = true;
                quote_line = line;
            }
            c if c == delimiter => row.push(Field {
                text: std::mem::take(&mut field),
                quoted: std::mem::take(&mut quoted),
            }),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                line += 1;
                row.push(Field {
                    text: std::mem::take(&mut field),
                    quoted: std::mem::take(&mut quoted),
                });
                rows.push(std::mem::take(&mut row));
            }
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err(Unmarkable::Unbalanced(quote_line));
    }
    row.push(Field {
        text: field,
        quoted,
    });
    rows.push(row);
    Ok(Table {
        rows,
        crlf,
        final_newline,
    })
}

/// The dialect a product's key names.
pub(super) fn dialect(key_name: &str) -> Option<(char, bool)> {
    let lower = key_name.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        Some((',', true))
    } else if lower.ends_with(".tsv") {
        Some(('\t', false))
    } else {
        None
    }
}
