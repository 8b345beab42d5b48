//! How much a file's formattings say: the chance that a file not from a
//! delivery agrees with its choices as well, and the verdict over every
//! delivery on record.

use super::FALSE_TRACE;

/// How well a file agrees with one delivery's choices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Units of the file with a clear formatting.
    pub units: usize,
    /// Of those, how many show the formatting this delivery's key chose.
    pub agree: usize,
    /// The natural log of the chance that a file not from this delivery
    /// agrees at least as well (the binomial tail at one half).
    pub ln_chance: f64,
}

/// ln P(X >= k) for X ~ Binomial(n, 1/2).
pub(super) fn ln_tail(n: usize, k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    if k > n {
        return f64::NEG_INFINITY;
    }
    if 2 * k <= n {
        // At least one half: the tail is not small, and only smallness matters.
        return (0.5f64).ln();
    }
    // ln of the term at k: ln C(n, k) - n ln 2.
    let ln_term = (0..n - k)
        .map(|i| ((k + 1 + i) as f64).ln() - ((i + 1) as f64).ln())
        .sum::<f64>()
        - n as f64 * std::f64::consts::LN_2;
    // The terms after it shrink: term(j+1) = term(j) * (n - j) / (j + 1).
    let (mut sum, mut ratio) = (1.0f64, 1.0f64);
    for j in k..n {
        ratio *= (n - j) as f64 / (j + 1) as f64;
        sum += ratio;
        if ratio < 1e-18 * sum {
            break;
        }
    }
    ln_term + sum.ln()
}

/// What the trace concludes.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The file came from these deliveries (indices into the scores, best
    /// first; more than one when a file mixes copies of several).
    Traced(Vec<usize>),
    /// No delivery is named; why.
    CannotTell(String),
}

/// Decides from the scores against every delivery on record.
pub fn verdict(scores: &[Score]) -> Verdict {
    let deliveries = scores.len().max(1) as f64;
    let bound = FALSE_TRACE.ln() - deliveries.ln();
    let units = scores.iter().map(|s| s.units).max().unwrap_or(0);
    if scores.is_empty() {
        return Verdict::CannotTell("no fingerprinted delivery is on record".into());
    }
    if ln_tail(units, units) > bound {
        return Verdict::CannotTell(format!(
            "the file shows the formatting of {units} value(s): too few to tell one delivery \
             from chance (a copy needs about {} values that kept their formatting)",
            min_units(scores.len())
        ));
    }
    let mut traced: Vec<usize> = (0..scores.len())
        .filter(|&i| scores[i].ln_chance <= bound)
        .collect();
    traced.sort_by(|&a, &b| scores[a].ln_chance.total_cmp(&scores[b].ln_chance));
    if traced.is_empty() {
        let best = scores.iter().map(|s| s.agree).max().unwrap_or(0);
        return Verdict::CannotTell(format!(
            "no delivery's marks stand out: the best agrees on {best} of {units} values, \
             as a file not from it would"
        ));
    }
    Verdict::Traced(traced)
}

/// How many intact units a trace among `deliveries` needs.
pub(super) fn min_units(deliveries: usize) -> usize {
    let bound = FALSE_TRACE.ln() - (deliveries.max(1) as f64).ln();
    (1..)
        .find(|&n| ln_tail(n, n) <= bound)
        .unwrap_or(usize::MAX)
}

/// The chance as a person reads it: `1.0e-42`, `3.2e-7`.
pub fn chance_text(ln_chance: f64) -> String {
    let log10 = ln_chance / std::f64::consts::LN_10;
    if log10 < -300.0 {
        return "below 1e-300".into();
    }
    format!("{:.1e}", 10f64.powf(log10))
}
