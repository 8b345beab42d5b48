//! `trace FILE`: the delivery a leaked file came from (R-32, leak tracing).
//!
//! Every delivered table carries a fingerprint of its delivery, made with a
//! key that never leaves OpenBao. So the file is compared where that key can
//! be used: it is posted to the operator's audit API (`create
//! traces.audit.publicdata.io`), which compares it with the deliveries on
//! record in the audit log. The answer names the delivery, its recipient and
//! date, or says why it cannot.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use publicdata_operator::audit::api::TRACE_LIMIT;
use publicdata_operator::fingerprint::Trace;

/// The largest file the operator traces.
const MAX_BYTES: u64 = TRACE_LIMIT as u64;

use crate::audit;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file found outside (a CSV or TSV table, or any text quoting its numbers).
    file: PathBuf,
    /// Output: text (default) or json.
    #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
    output: String,
}

/// No delivery could be named: the reason, for the exit status (3).
#[derive(Debug, thiserror::Error)]
#[error("not traced: {0}")]
pub struct NotTraced(pub String);

pub async fn run(client: &kube::Client, args: &Args) -> Result<()> {
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    if size > MAX_BYTES {
        bail!(
            "{} is {size} bytes; the trace reads at most {MAX_BYTES}: cut it to a part of the table",
            args.file.display()
        );
    }
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    if !audit::may(client, "create", "traces").await? {
        bail!(audit::NotAReader(format!(
            "create traces.{}",
            publicdata_operator::audit::api::GROUP
        )));
    }
    let request = http::Request::post(audit::path("traces"))
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        .body(bytes)
        .context("building the request")?;
    let json = client
        .request_text(request)
        .await
        .context("posting the file to the operator's audit API")?;
    let trace: Trace = serde_json::from_str(&json).context("the operator's answer is not JSON")?;
    if args.output == "json" {
        println!("{}", serde_json::to_string_pretty(&trace)?);
    } else {
        print!("{}", text(&args.file.display().to_string(), &trace));
    }
    match trace.cannot_tell {
        Some(why) if trace.traced.is_empty() => Err(NotTraced(why).into()),
        _ => Ok(()),
    }
}

/// The answer as a person reads it.
fn text(file: &str, trace: &Trace) -> String {
    let mut out = String::new();
    if trace.traced.is_empty() {
        out.push_str(&format!(
            "{file}: not traced to any of {} fingerprinted deliveries on record\n",
            trace.deliveries
        ));
        return out;
    }
    if trace.traced.len() > 1 {
        out.push_str(&format!(
            "{file}: mixes copies of {} deliveries\n",
            trace.traced.len()
        ));
    }
    for m in &trace.traced {
        out.push_str(&format!(
            "{file}: traced to the delivery of {} on {}\n  recipient: {} ({})\n  tenant: {}, delivered to {}\n  evidence: {} of {} values show this delivery's formatting; \
             a file not from it would agree so well with a chance of {}\n  audit record #{}: delivered digest {}, approved digest {}\n",
            m.object,
            m.time,
            m.recipient,
            m.recipient_code,
            m.tenant,
            m.path,
            m.agree,
            m.units,
            m.chance,
            m.seq,
            m.delivered_digest,
            m.digest,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use publicdata_operator::fingerprint::Match;

    fn found(object: &str) -> Match {
        Match {
            seq: 41,
            time: "2026-11-28T10:00:00Z".into(),
            tenant: "harbor-analytics".into(),
            object: object.into(),
            path: "deliveries/91350100M000100Y43/harbor-analytics/q1".into(),
            recipient: "City Transport Planning Institute".into(),
            recipient_code: "91350100M000100Y43".into(),
            digest: "a".repeat(64),
            delivered_digest: "b".repeat(64),
            agree: 120,
            units: 120,
            chance: "7.5e-37".into(),
        }
    }

    #[test]
    fn the_answer_names_delivery_recipient_date_and_evidence() {
        let trace = Trace {
            units: 120,
            deliveries: 3,
            traced: vec![found("ExportRequest/harbor-analytics-dev/q1")],
            cannot_tell: None,
        };
        let shown = text("leak.csv", &trace);
        assert!(shown.contains("traced to the delivery of ExportRequest/harbor-analytics-dev/q1 on 2026-11-28T10:00:00Z"));
        assert!(
            shown.contains("recipient: City Transport Planning Institute (91350100M000100Y43)")
        );
        assert!(shown.contains("120 of 120 values"));
        assert!(shown.contains("7.5e-37"));
    }

    #[test]
    fn a_file_not_traced_says_so_plainly() {
        let trace = Trace {
            units: 4,
            deliveries: 3,
            traced: vec![],
            cannot_tell: Some("too few".into()),
        };
        assert_eq!(
            text("other.csv", &trace),
            "other.csv: not traced to any of 3 fingerprinted deliveries on record\n"
        );
    }
}
