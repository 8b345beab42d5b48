//! Decoding an artifact into the texts a person would read in it, with
//! maintained crates: text encodings (BOM, UTF-16, UTF-8, GB18030 by
//! `encoding_rs`), gzip (`flate2`), zstd (`zstd`), zip archives, nested
//! (`zip`), xlsx cell values (`calamine`), Parquet columns (arrow-rs
//! `parquet`). Whatever cannot be read — an
//! unknown binary, an encrypted entry, a format without a decoder here, a
//! part past the size or depth limits — is a part of its own, `Unreadable`,
//! saying why: the scan fails closed.

use std::io::{Cursor, Read};

/// Bounds on what one artifact may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes all decompressed parts together may hold.
    pub max_total_bytes: u64,
    /// How deep containers may nest (a zip in a zip in a gzip is 3).
    pub max_depth: u32,
    /// How many parts one artifact may hold.
    pub max_parts: usize,
    /// How many times its compressed size one stream may expand to (past
    /// [`RATIO_FLOOR`]): text compresses ten- or twentyfold, a bomb a
    /// thousandfold.
    pub max_ratio: u64,
}

/// What any stream may expand to, whatever its ratio: a small gzip of a
/// long run of one value is ordinary.
pub const RATIO_FLOOR: u64 = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total_bytes: 32 * 1024 * 1024,
            max_depth: 5,
            max_parts: 10_000,
            max_ratio: 200,
        }
    }
}

/// What a part is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Text to scan (UTF-8, after decoding).
    Text(String),
    /// Cannot be read; why.
    Unreadable(String),
}

/// One readable (or unreadable) part of an artifact: where it is, and its
/// content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its position inside the artifact, in numbers and format names only
    /// (`entry 2 > gzip`, `entry 1 > sheet 3`; empty for the artifact
    /// itself), never a name read from it: a prod job can name entries and
    /// sheets after rows, and a position is written where members read it
    ///
    pub at: String,
    pub content: Content,
}

/// The position of a part inside the part at `at`.
fn inside(at: &str, step: impl std::fmt::Display) -> String {
    if at.is_empty() {
        step.to_string()
    } else {
        format!("{at} > {step}")
    }
}

struct Budget {
    bytes_left: u64,
    parts_left: usize,
}

/// Decodes an artifact into its parts.
pub fn parts(bytes: &[u8], limits: &Limits) -> Vec<Part> {
    let mut out = Vec::new();
    let mut budget = Budget {
        bytes_left: limits.max_total_bytes,
        parts_left: limits.max_parts,
    };
    walk("", bytes, 0, limits, &mut budget, &mut out);
    out
}

/// An unreadable part, and why in the scanner's own words: a decoder's error
/// can quote the bytes it choked on, so it is not kept.
fn unreadable(out: &mut Vec<Part>, at: &str, why: impl Into<String>) {
    out.push(Part {
        at: at.into(),
        content: Content::Unreadable(why.into()),
    });
}

/// What the first bytes say a blob is.
#[derive(Debug, PartialEq, Eq)]
enum Format {
    Gzip,
    Zstd,
    Zip,
    Pdf,
    Parquet,
    Other,
}

fn sniff(b: &[u8]) -> Format {
    if b.starts_with(&[0x1f, 0x8b]) {
        Format::Gzip
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Format::Zstd
    } else if b.starts_with(b"PK\x03\x04") || b.starts_with(b"PK\x05\x06") {
        Format::Zip
    } else if b.starts_with(b"%PDF-") {
        Format::Pdf
    } else if b.starts_with(b"PAR1") {
        Format::Parquet
    } else {
        Format::Other
    }
}

/// Why a stream was not unpacked.
enum TooBig {
    /// Past what the artifact's parts may hold together.
    Budget,
    /// Past `max_ratio` times its compressed size.
    Ratio,
}

/// Reads from `reader`, a stream of `compressed` bytes, at most the
/// remaining budget and at most `max_ratio` times `compressed` (past the
/// floor); checked while decompressing, so a bomb is stopped at the bound,
/// never unpacked whole.
fn read_bounded(
    reader: impl Read,
    compressed: u64,
    limits: &Limits,
    budget: &mut Budget,
) -> Result<Result<Vec<u8>, TooBig>, std::io::Error> {
    let (cap, past) = bound(compressed, budget.bytes_left, limits);
    let mut buf = Vec::new();
    reader.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Ok(Err(past));
    }
    budget.bytes_left -= buf.len() as u64;
    Ok(Ok(buf))
}

/// The most a stream of `compressed` bytes may unpack to, with `left` bytes
/// of the budget left, and what it is past when it unpacks to more.
fn bound(compressed: u64, left: u64, limits: &Limits) -> (u64, TooBig) {
    let by_ratio = compressed.saturating_mul(limits.max_ratio).max(RATIO_FLOOR);
    if left <= by_ratio {
        (left, TooBig::Budget)
    } else {
        (by_ratio, TooBig::Ratio)
    }
}

fn walk(
    path: &str,
    bytes: &[u8],
    depth: u32,
    limits: &Limits,
    budget: &mut Budget,
    out: &mut Vec<Part>,
) {
    if budget.parts_left == 0 {
        return unreadable(
            out,
            path,
            format!("more than {} parts in one artifact", limits.max_parts),
        );
    }
    budget.parts_left -= 1;
    let format = sniff(bytes);
    if format != Format::Other && depth >= limits.max_depth {
        return unreadable(
            out,
            path,
            format!("nested deeper than {} levels", limits.max_depth),
        );
    }
    match format {
        Format::Gzip => {
            let inner = inside(path, "gzip");
            let stream = flate2::read::MultiGzDecoder::new(bytes);
            match read_bounded(stream, bytes.len() as u64, limits, budget) {
                Ok(Ok(data)) => walk(&inner, &data, depth + 1, limits, budget, out),
                Ok(Err(why)) => too_big(out, path, limits, why),
                Err(_) => unreadable(out, path, "a damaged gzip stream"),
            }
        }
        Format::Zstd => {
            let inner = inside(path, "zstd");
            let decoded = zstd::stream::read::Decoder::new(bytes)
                .and_then(|d| read_bounded(d, bytes.len() as u64, limits, budget));
            match decoded {
                Ok(Ok(data)) => walk(&inner, &data, depth + 1, limits, budget, out),
                Ok(Err(why)) => too_big(out, path, limits, why),
                Err(_) => unreadable(out, path, "a damaged zstd stream"),
            }
        }
        Format::Zip => zip(path, bytes, depth, limits, budget, out),
        Format::Pdf => unreadable(
            out,
            path,
            "a PDF: this scanner does not extract PDF text, so it cannot vouch for it",
        ),
        Format::Parquet => parquet(path, bytes, out, budget),
        Format::Other => match text(bytes) {
            Some(t) => out.push(Part {
                at: path.into(),
                content: Content::Text(t),
            }),
            None => unreadable(out, path, "binary data in no known format or text encoding"),
        },
    }
}

fn too_big(out: &mut Vec<Part>, path: &str, limits: &Limits, why: TooBig) {
    let why = match why {
        TooBig::Budget => format!(
            "decompresses past the limit of {} bytes for one artifact (a compression bomb?)",
            limits.max_total_bytes
        ),
        TooBig::Ratio => format!(
            "expands more than {} times its compressed size (a compression bomb?)",
            limits.max_ratio
        ),
    };
    unreadable(out, path, why)
}

fn zip(
    path: &str,
    bytes: &[u8],
    depth: u32,
    limits: &Limits,
    budget: &mut Budget,
    out: &mut Vec<Part>,
) {
    let mut archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(a) => a,
        Err(_) => return unreadable(out, path, "a damaged zip archive"),
    };
    if archive.index_for_name("xl/workbook.xml").is_some() {
        // The spreadsheet reader unpacks the workbook's parts itself, with
        // no bound: each part is first unpacked here, counted and dropped.
        if let Some((entry, why)) = unbounded_entry(&mut archive, limits, budget) {
            return too_big(out, &inside(path, entry), limits, why);
        }
        return xlsx(path, bytes, out, budget);
    }
    for i in 0..archive.len() {
        let entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(zip::result::ZipError::UnsupportedArchive(_)) => {
                unreadable(
                    out,
                    &inside(path, format!("entry {}", i + 1)),
                    "a zip entry in a format this scanner does not read",
                );
                continue;
            }
            Err(_) => {
                unreadable(
                    out,
                    &inside(path, format!("entry {}", i + 1)),
                    "an unreadable zip entry",
                );
                continue;
            }
        };
        let name = inside(path, format!("entry {}", i + 1));
        if entry.is_dir() {
            continue;
        }
        if entry.encrypted() {
            unreadable(out, &name, "an encrypted zip entry");
            continue;
        }
        let compressed = entry.compressed_size();
        match read_bounded(entry, compressed, limits, budget) {
            Ok(Ok(data)) => walk(&name, &data, depth + 1, limits, budget, out),
            Ok(Err(why)) => {
                too_big(out, &name, limits, why);
                return;
            }
            Err(_) => unreadable(out, &name, "an unreadable zip entry"),
        }
    }
}

/// A Parquet file's columns (arrow-rs `parquet`): the column names, then one
/// row per line, values separated by commas.
fn parquet(path: &str, bytes: &[u8], out: &mut Vec<Part>, budget: &mut Budget) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = match SerializedFileReader::new(bytes::Bytes::copy_from_slice(bytes)) {
        Ok(r) => r,
        Err(_) => return unreadable(out, path, "a damaged Parquet file"),
    };
    // The pages are unpacked to the sizes the file declares: a file that
    // declares more than the budget is not read at all (and one that lies
    // meets the worker's heap cap).
    let declared: i64 = reader
        .metadata()
        .row_groups()
        .iter()
        .flat_map(|g| g.columns())
        .map(|c| c.uncompressed_size().max(0))
        .sum();
    if declared.unsigned_abs() > budget.bytes_left {
        return unreadable(
            out,
            path,
            format!(
                "its columns unpack to {declared} bytes, past the limit of {} for one artifact",
                budget.bytes_left
            ),
        );
    }
    let rows = match reader.get_row_iter(None) {
        Ok(rows) => rows,
        Err(_) => return unreadable(out, path, "unreadable Parquet rows"),
    };
    let mut text = String::new();
    let mut header = false;
    for row in rows {
        let row = match row {
            Ok(r) => r,
            Err(_) => return unreadable(out, path, "an unreadable Parquet row"),
        };
        if !header {
            let names: Vec<&str> = row.get_column_iter().map(|(n, _)| n.as_str()).collect();
            text.push_str(&names.join(","));
            text.push('\n');
            header = true;
        }
        let values: Vec<String> = row.get_column_iter().map(|(_, v)| v.to_string()).collect();
        text.push_str(&values.join(","));
        text.push('\n');
        if text.len() as u64 > budget.bytes_left {
            return unreadable(out, path, "the Parquet values exceed the size limit");
        }
    }
    budget.bytes_left -= text.len() as u64;
    out.push(Part {
        at: path.into(),
        content: Content::Text(text),
    });
}

/// The first entry of `archive` (`entry N`, 1-based, or `N entries` when
/// there are too many) that unpacks past the budget or the ratio, found by unpacking each
/// into a counter (nothing kept).
fn unbounded_entry(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    limits: &Limits,
    budget: &Budget,
) -> Option<(String, TooBig)> {
    if archive.len() > limits.max_parts {
        return Some((format!("{} entries", archive.len()), TooBig::Budget));
    }
    // Together, not each: the reader unpacks every part.
    let mut left = budget.bytes_left;
    for i in 0..archive.len() {
        let Ok(entry) = archive.by_index(i) else {
            continue;
        };
        let (cap, past) = bound(entry.compressed_size(), left, limits);
        let unpacked = std::io::copy(&mut entry.take(cap + 1), &mut std::io::sink()).unwrap_or(0);
        if unpacked > cap {
            return Some((format!("entry {}", i + 1), past));
        }
        left -= unpacked;
    }
    None
}

/// Each sheet's cell values, one row per line, cells separated by commas.
fn xlsx(path: &str, bytes: &[u8], out: &mut Vec<Part>, budget: &mut Budget) {
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> = match calamine::open_workbook_from_rs(Cursor::new(bytes)) {
        Ok(b) => b,
        Err(_) => return unreadable(out, path, "a damaged xlsx workbook"),
    };
    for (i, sheet) in book.sheet_names().into_iter().enumerate() {
        let name = inside(path, format!("sheet {}", i + 1));
        match book.worksheet_range(&sheet) {
            Ok(range) => {
                let mut text = String::new();
                for row in range.rows() {
                    let cells: Vec<String> = row.iter().map(|c| c.to_string()).collect();
                    text.push_str(&cells.join(","));
                    text.push('\n');
                }
                if text.len() as u64 > budget.bytes_left {
                    return unreadable(out, &name, "the sheet's cells exceed the size limit");
                }
                budget.bytes_left -= text.len() as u64;
                out.push(Part {
                    at: name,
                    content: Content::Text(text),
                });
            }
            Err(_) => unreadable(out, &name, "an unreadable sheet"),
        }
    }
}

/// The text in `bytes`, if they are text: a BOM says the encoding; else
/// UTF-16 without a BOM (every other byte zero, as spreadsheet tools write
/// it), UTF-8, then GB18030. Bytes that decode only with errors, or text with
/// NULs or other control characters, are not text.
pub fn text(bytes: &[u8]) -> Option<String> {
    use encoding_rs::{GB18030, UTF_8};
    let decode = |enc: &'static encoding_rs::Encoding, b: &[u8]| {
        let (s, had_errors) = enc.decode_without_bom_handling(b);
        (!had_errors).then(|| s.into_owned())
    };
    let decoded = if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        decode(enc, &bytes[bom..])
    } else if let Some(enc) = utf16_without_bom(bytes) {
        decode(enc, bytes)
    } else if bytes.is_ascii() {
        // The common case, no copy of the meaning: ASCII is UTF-8.
        Some(String::from_utf8_lossy(bytes).into_owned())
    } else {
        decode(UTF_8, bytes)
            .or_else(|| decode(GB18030, bytes))
            .or_else(|| plausible_utf16(bytes))
    }?;
    let control = decoded
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'));
    (!control).then_some(decoded)
}

/// UTF-16 without a BOM and without ASCII (Chinese text, full-width
/// digits): accepted only when nearly every character is one text uses, so
/// that random binary (which decodes as UTF-16 too) stays unreadable.
fn plausible_utf16(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let plausible = |c: char| {
        matches!(c, ' '..='~' | '\n' | '\r' | '\t')
            || ('\u{3000}'..='\u{303f}').contains(&c)
            || ('\u{4e00}'..='\u{9fff}').contains(&c)
            || ('\u{ff00}'..='\u{ffef}').contains(&c)
    };
    for enc in [encoding_rs::UTF_16LE, encoding_rs::UTF_16BE] {
        let (s, had_errors) = enc.decode_without_bom_handling(bytes);
        let total = s.chars().count();
        if !had_errors
            && total > 0
            && s.chars().filter(|c| plausible(*c)).count() * 100 >= total * 95
        {
            return Some(s.into_owned());
        }
    }
    None
}

/// UTF-16 text without a BOM: mostly ASCII characters, so one byte of each
/// pair is zero.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    if bytes.len() < 4 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let sample = &bytes[..bytes.len().min(4096)];
    let pairs = sample.len() / 2;
    let zero_at = |k: usize| sample.chunks_exact(2).filter(|p| p[k] == 0).count();
    let (even, odd) = (zero_at(0), zero_at(1));
    if odd * 10 >= pairs * 6 && even * 10 < pairs {
        Some(encoding_rs::UTF_16LE)
    } else if even * 10 >= pairs * 6 && odd * 10 < pairs {
        Some(encoding_rs::UTF_16BE)
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests;
