//! Traceable exports (R-2, R-32: leak tracing): every delivered table carries
//! a fingerprint of its own delivery, and a leaked copy is traced back to it.
//!
//! **The technique: a keyed choice among equivalent formattings of values.**
//! A CSV field may be written quoted or not (RFC 4180: the same value), and a
//! decimal number may end in one more zero (`0.412` and `0.4120` are the same
//! number). For each delivery the operator derives a key (from a key that
//! never leaves OpenBao, and the export's uid) and, for every distinct value,
//! lets a keyed hash of the value alone choose the formatting: quoted or not,
//! an even or odd count of trailing zeros. No value changes, no character of a
//! value's meaning, and the table reads the same in every CSV reader.
//!
//! Because the choice depends on the value, not its row or column, a copy
//! whose rows were reordered, whose columns were dropped or renamed, or that
//! holds only some of the rows, still carries the marks of what is left. The
//! zeros live in the values' text: they survive a CSV tool saving the table
//! again (which drops the quoting), a change of delimiter, or the numbers
//! pasted into another document. A tool that re-types the values (a
//! spreadsheet, a dataframe writing floats back) loses the marks it rewrites,
//! and the trace then says it cannot tell, never guesses.
//!
//! **The trace** reads the formattings a file shows, value by value, and
//! compares them with each recorded delivery's choices. A file that did not
//! come from a delivery agrees with its choices like coin flips; the trace
//! names a delivery only when the chance of agreeing so well by luck, over
//! every delivery on record, is below [`FALSE_TRACE`].

mod evidence;
mod record;
mod table;

use std::collections::{HashMap, HashSet};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use evidence::ln_tail;
#[cfg(test)]
use evidence::min_units;
pub use evidence::{Score, Verdict, chance_text, verdict};
pub use record::{Match, Trace, trace, trace_on_record};
use table::{Field, Table, dialect, parse};

/// The scheme's name, recorded with each delivery.
pub const SCHEME: &str = "formatting-v1";

/// A table needs this many distinct marked values to be delivered as
/// traceable: half of it, or a third of it with some edits, still traces.
pub const MIN_MARKS: usize = 64;

/// A file is traced to a delivery only when the chance that a file not from
/// it agrees as well, counted over every delivery compared, is below this.
pub const FALSE_TRACE: f64 = 1e-6;

/// At most this many values of a file are compared with each delivery: far
/// more evidence than a trace needs (a copy that kept them all agrees by
/// chance once in 2^4096), and a large file traced against many deliveries
/// stays fast.
pub const MAX_UNITS: usize = 4096;

/// The largest file a trace reads (the plugin checks it before sending).
pub const MAX_TRACE_BYTES: u64 = 64 * 1024 * 1024;

/// A delivery's key (32 bytes, derived in OpenBao; never stored).
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Why a product cannot carry a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmarkable {
    #[error("only CSV and TSV tables (a key ending in .csv or .tsv, UTF-8) carry a fingerprint")]
    NotATable,
    #[error("it is not UTF-8 text")]
    NotText,
    #[error("line {0}: a quoted field is not closed")]
    Unbalanced(usize),
    #[error("{0} distinct values can carry a mark, {MIN_MARKS} are needed to trace a copy")]
    TooFew(usize),
}

/// A delivered table: the bytes with the marks, and how many distinct values carry one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    pub bytes: Vec<u8>,
    pub marks: usize,
}

/// The two kinds of marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Layer {
    /// Quoted or not.
    Quote,
    /// An even or odd count of trailing zeros after the decimal point.
    Zeros,
}

impl Layer {
    fn tag(self) -> &'static [u8] {
        match self {
            Self::Quote => b"quote",
            Self::Zeros => b"zeros",
        }
    }
}

/// One markable value: its layer and canonical text.
type Unit = (Layer, String);

/// A key, ready to choose formattings (the keyed hash state is made once).
struct Chooser(Option<Hmac<Sha256>>);

impl Chooser {
    fn new(key: &Key) -> Self {
        // HMAC takes a key of any length: this is never None.
        Self(Hmac::<Sha256>::new_from_slice(&key.0).ok())
    }

    /// The formatting the key chooses for a value.
    fn choice(&self, layer: Layer, canonical: &str) -> bool {
        let Some(mac) = &self.0 else {
            return false;
        };
        let mut mac = mac.clone();
        mac.update(layer.tag());
        mac.update(&[0]);
        mac.update(canonical.as_bytes());
        mac.finalize().into_bytes()[0] & 1 == 1
    }
}

/// A decimal number's parts: `-12.50` is ("-12", "5", 1 trailing zero).
/// None unless the whole text is `[+-]digits.digits`.
fn decimal(text: &str) -> Option<(&str, &str, usize)> {
    let (int, frac) = text.split_once('.')?;
    let digits = int.strip_prefix(['+', '-']).unwrap_or(int);
    if digits.is_empty()
        || frac.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let kept = frac.trim_end_matches('0');
    Some((int, kept, frac.len() - kept.len()))
}

/// The text a value is known by across formattings: a decimal without its
/// trailing zeros (`12.50` and `12.5` are `12.5`; `12.0` is `12.`).
fn canonical(text: &str) -> String {
    match decimal(text) {
        Some((int, kept, _)) => format!("{int}.{kept}"),
        None => text.to_string(),
    }
}

fn is_number(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    decimal(text).is_some() || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// What the marks of a table go on: for each field, its units.
struct Plan {
    table: Table,
    delimiter: char,
    quoting: bool,
    /// Columns whose values below the first row are all numbers.
    numeric: Vec<bool>,
}

impl Plan {
    fn new(key_name: &str, bytes: &[u8]) -> Result<Self, Unmarkable> {
        let (delimiter, quoting) = dialect(key_name).ok_or(Unmarkable::NotATable)?;
        let text = std::str::from_utf8(bytes).map_err(|_| Unmarkable::NotText)?;
        let table = parse(text, delimiter, quoting)?;
        let width = table.rows.iter().map(Vec::len).max().unwrap_or(0);
        let numeric = (0..width)
            .map(|j| {
                let mut values = table
                    .rows
                    .iter()
                    .skip(1)
                    .filter_map(|r| r.get(j))
                    .filter(|f| !f.text.is_empty())
                    .peekable();
                values.peek().is_some() && values.all(|f| is_number(&f.text))
            })
            .collect();
        Ok(Self {
            table,
            delimiter,
            quoting,
            numeric,
        })
    }

    fn needs_quotes(&self, text: &str) -> bool {
        text.contains([self.delimiter, '"', '\n', '\r'])
    }

    /// The units of field `j` of row `i`.
    fn units(&self, i: usize, j: usize, field: &Field) -> Vec<Unit> {
        let mut out = Vec::new();
        let canon = canonical(&field.text);
        if i > 0 && self.numeric.get(j).copied().unwrap_or(false) && decimal(&field.text).is_some()
        {
            out.push((Layer::Zeros, canon.clone()));
        }
        if self.quoting && !field.text.is_empty() && !self.needs_quotes(&field.text) {
            out.push((Layer::Quote, canon));
        }
        out
    }

    fn capacity(&self) -> usize {
        let mut units = HashSet::new();
        for (i, row) in self.table.rows.iter().enumerate() {
            for (j, field) in row.iter().enumerate() {
                units.extend(self.units(i, j, field));
            }
        }
        units.len()
    }
}

/// How many distinct values of the product can carry a mark, or why none can.
/// A product is traceable when this is at least [`MIN_MARKS`].
pub fn capacity(key_name: &str, bytes: &[u8]) -> Result<usize, Unmarkable> {
    Plan::new(key_name, bytes).map(|p| p.capacity())
}

/// How many marks the product would carry, or why it cannot be delivered
/// as traceable (fewer than [`MIN_MARKS`] included).
pub fn traceable(key_name: &str, bytes: &[u8]) -> Result<usize, Unmarkable> {
    match capacity(key_name, bytes)? {
        n if n < MIN_MARKS => Err(Unmarkable::TooFew(n)),
        n => Ok(n),
    }
}

/// The product as delivered under `key`: every value the same, each in the
/// formatting the key chooses for it. Refused below [`MIN_MARKS`].
pub fn mark(key_name: &str, bytes: &[u8], key: &Key) -> Result<Marked, Unmarkable> {
    let plan = Plan::new(key_name, bytes)?;
    let marks = plan.capacity();
    if marks < MIN_MARKS {
        return Err(Unmarkable::TooFew(marks));
    }
    let chooser = Chooser::new(key);
    let newline = if plan.table.crlf { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 4);
    for (i, row) in plan.table.rows.iter().enumerate() {
        if i > 0 {
            out.push_str(newline);
        }
        for (j, field) in row.iter().enumerate() {
            if j > 0 {
                out.push(plan.delimiter);
            }
            let mut text = field.text.clone();
            let mut quote = plan.quoting && (field.quoted || plan.needs_quotes(&text));
            for (layer, canon) in plan.units(i, j, field) {
                let bit = chooser.choice(layer, &canon);
                match layer {
                    Layer::Zeros => {
                        let zeros = decimal(&text).map(|(_, _, z)| z).unwrap_or(0);
                        if (zeros % 2 == 1) != bit {
                            text.push('0');
                        }
                    }
                    Layer::Quote => quote = bit,
                }
            }
            if quote {
                out.push('"');
                out.push_str(&text.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(&text);
            }
        }
    }
    if plan.table.final_newline {
        out.push_str(newline);
    }
    Ok(Marked {
        bytes: out.into_bytes(),
        marks,
    })
}

/// The formattings a file shows: for each unit, how often each choice was seen.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    seen: HashMap<Unit, (u32, u32)>,
    /// What the trace compares, made once the whole file is read.
    votes: Vec<(Unit, bool)>,
}

impl Observed {
    fn see(&mut self, unit: Unit, bit: bool) {
        let counts = self.seen.entry(unit).or_default();
        if bit {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
    }

    /// Units with a clear majority, and its choice. A layer whose every
    /// unit shows the same choice was normalized by some tool (a CSV writer
    /// quoting only where it must, a dataframe writing shortest floats): it
    /// says nothing of any key and is left out.
    fn count_votes(&self) -> Vec<(Unit, bool)> {
        let votes: Vec<(&Unit, bool)> = self
            .seen
            .iter()
            .filter(|(_, (no, yes))| no != yes)
            .map(|(unit, (no, yes))| (unit, yes > no))
            .collect();
        let varied = |layer: Layer| {
            let mut choices = votes
                .iter()
                .filter(|((l, _), _)| *l == layer)
                .map(|(_, b)| *b);
            choices
                .next()
                .is_some_and(|first| choices.any(|b| b != first))
        };
        let (quote, zeros) = (varied(Layer::Quote), varied(Layer::Zeros));
        let mut kept: Vec<(&Unit, bool)> = votes
            .into_iter()
            .filter(|((l, _), _)| match l {
                Layer::Quote => quote,
                Layer::Zeros => zeros,
            })
            .collect();
        if kept.len() > MAX_UNITS {
            // Which ones, by a hash of the value: a choice no key has a part in.
            kept.sort_by_cached_key(|((layer, canon), _)| {
                Sha256::new()
                    .chain_update(layer.tag())
                    .chain_update([0])
                    .chain_update(canon.as_bytes())
                    .finalize()
            });
            kept.truncate(MAX_UNITS);
        }
        kept.into_iter().map(|(u, b)| (u.clone(), b)).collect()
    }

    /// The values the trace compares, with the formatting each shows.
    fn votes(&self) -> impl Iterator<Item = (&Unit, bool)> {
        self.votes.iter().map(|(u, b)| (u, *b))
    }

    /// How many units the file shows a formatting for.
    pub fn units(&self) -> usize {
        self.votes.len()
    }
}

/// Reads a suspect file, whatever became of it: decimal numbers anywhere in
/// its text (with their trailing zeros), and, where it still parses as CSV
/// with its most frequent delimiter, which fields are quoted.
pub fn observe(bytes: &[u8]) -> Observed {
    let text = String::from_utf8_lossy(bytes);
    let mut observed = Observed::default();
    // Numbers: maximal runs of digits, dots and a leading sign, not glued to
    // letters (`v1.20` is a name, not a number). Byte offsets: every byte
    // of a number is ASCII, so each is a character boundary.
    let b = text.as_bytes();
    let mut k = 0;
    while k < b.len() {
        let starts = b[k].is_ascii_digit() || matches!(b[k], b'+' | b'-');
        if !starts
            || text[..k]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '.')
        {
            k += 1;
            continue;
        }
        let mut end = k + 1;
        while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'.') {
            end += 1;
        }
        let glued = text[end..]
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric);
        if !glued && let Some((_, _, zeros)) = decimal(&text[k..end]) {
            observed.see((Layer::Zeros, canonical(&text[k..end])), zeros % 2 == 1);
        }
        k = end;
    }
    // Quoting, in a text that still parses as CSV (comma or, as some
    // spreadsheets save it, semicolon; TSV has no quoting).
    let delimiter = [',', ';', '\t', '|']
        .into_iter()
        .max_by_key(|d| text.matches(*d).count())
        .unwrap_or(',');
    if matches!(delimiter, ',' | ';')
        && let Ok(table) = parse(&text, delimiter, true)
    {
        for field in table.rows.iter().flatten() {
            if !field.text.is_empty() && !field.text.contains([delimiter, '"', '\n', '\r']) {
                observed.see((Layer::Quote, canonical(&field.text)), field.quoted);
            }
        }
    }
    observed.votes = observed.count_votes();
    observed
}

/// Compares what a file shows with the choices of `key`.
pub fn score(observed: &Observed, key: &Key) -> Score {
    let chooser = Chooser::new(key);
    let (mut units, mut agree) = (0, 0);
    for ((layer, canon), bit) in observed.votes() {
        units += 1;
        if chooser.choice(*layer, canon) == bit {
            agree += 1;
        }
    }
    Score {
        units,
        agree,
        ln_chance: ln_tail(units, agree),
    }
}

#[cfg(test)]
mod tests;
