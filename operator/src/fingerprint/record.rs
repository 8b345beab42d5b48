//! A trace and its answer: a file compared with every delivery on record
//! (the audit log names each fingerprinted delivery, and the backend derives
//! its key again), and the deliveries it names, with their evidence.

use serde::{Deserialize, Serialize};

use crate::audit::Record;
use crate::vault::{self, SecretsBackend};

use super::{Key, Observed, Score, Verdict, chance_text, observe, score, verdict};

/// A delivery named by a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    /// The audit record of the delivery.
    pub seq: u64,
    /// When it was delivered (RFC 3339, UTC).
    pub time: String,
    pub tenant: String,
    /// `ExportRequest/<namespace>/<name>`.
    pub object: String,
    /// Where it was delivered (the OpenBao path).
    pub path: String,
    pub recipient: String,
    pub recipient_code: String,
    /// SHA-256 of the approved artifact.
    pub digest: String,
    /// SHA-256 of the delivered file, fingerprint included.
    pub delivered_digest: String,
    /// Values of the file that show this delivery's formatting.
    pub agree: usize,
    /// Values of the file with a clear formatting.
    pub units: usize,
    /// The chance that a file not from this delivery agrees as well.
    pub chance: String,
}

/// What a trace found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    /// Values of the file with a clear formatting.
    pub units: usize,
    /// Fingerprinted deliveries on record, each compared.
    pub deliveries: usize,
    /// The deliveries the file came from, most certain first.
    pub traced: Vec<Match>,
    /// Why no delivery is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cannot_tell: Option<String>,
}

/// Traces a file against every fingerprinted delivery on record, each given
/// with its key (the match's evidence fields are filled in here).
pub fn trace(observed: &Observed, deliveries: Vec<(Match, Key)>) -> Trace {
    let scores: Vec<Score> = deliveries.iter().map(|(_, k)| score(observed, k)).collect();
    let count = deliveries.len();
    let (traced, cannot_tell) = match verdict(&scores) {
        Verdict::Traced(found) => {
            let mut slots: Vec<Option<Match>> =
                deliveries.into_iter().map(|(m, _)| Some(m)).collect();
            let traced = found
                .into_iter()
                .filter_map(|i| {
                    let mut m = slots.get_mut(i)?.take()?;
                    m.agree = scores[i].agree;
                    m.units = scores[i].units;
                    m.chance = chance_text(scores[i].ln_chance);
                    Some(m)
                })
                .collect();
            (traced, None)
        }
        Verdict::CannotTell(why) => (Vec::new(), Some(why)),
    };
    Trace {
        units: observed.units(),
        deliveries: count,
        traced,
        cannot_tell,
    }
}

/// Traces `file` against every fingerprinted delivery in the audit log
/// `log` (its JSON lines; lines that are not records are skipped, the chain
/// is verified elsewhere).
pub async fn trace_on_record(
    log: &str,
    file: &[u8],
    backend: &dyn SecretsBackend,
) -> Result<Trace, vault::Error> {
    let observed = observe(file);
    let mut deliveries = Vec::new();
    for record in log
        .lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
    {
        let Some(delivery) = record.entry.delivery else {
            continue;
        };
        let Some(fingerprint) = delivery.fingerprint else {
            continue;
        };
        let (_, key) = backend
            .delivery_key(&delivery.export_uid, Some(fingerprint.key_version))
            .await?;
        deliveries.push((
            Match {
                seq: record.seq,
                time: record.time,
                tenant: record.entry.tenant,
                object: record.entry.object,
                path: delivery.path,
                recipient: delivery.recipient,
                recipient_code: delivery.recipient_code,
                digest: delivery.digest,
                delivered_digest: delivery.delivered_digest,
                agree: 0,
                units: 0,
                chance: String::new(),
            },
            key,
        ));
    }
    Ok(trace(&observed, deliveries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Delivery, DeliveryFingerprint, Entry};
    use crate::fingerprint::{SCHEME, mark};
    use crate::vault::memory::Memory;

    fn delivered(prev: Option<&Record>, uid: &str, recipient: &str, marks: usize) -> Record {
        Record::next(
            prev,
            "2026-11-28T10:00:00Z".into(),
            Entry {
                tenant: "harbor".into(),
                object: format!("ExportRequest/harbor-dev/{uid}"),
                action: "ExportDelivered".into(),
                reason: String::new(),
                outcome: "Success".into(),
                actor: Some("reviewer-li".into()),
                uid: None,
                delivery: Some(Delivery {
                    export_uid: uid.into(),
                    path: format!("deliveries/{recipient}/harbor/{uid}"),
                    recipient: format!("Recipient {recipient}"),
                    recipient_code: recipient.into(),
                    digest: "a".repeat(64),
                    delivered_digest: "b".repeat(64),
                    fingerprint: Some(DeliveryFingerprint {
                        scheme: SCHEME.into(),
                        key_version: 1,
                        marks: marks as u64,
                    }),
                }),
            },
        )
    }

    #[tokio::test]
    async fn a_copy_is_traced_to_the_recorded_delivery_and_recipient() {
        let backend = Memory::default();
        let product: String = std::iter::once("area,share\n".to_string())
            .chain((0..100).map(|i| format!("a{i},0.{}\n", 300 + i * 7)))
            .collect();
        let first = delivered(None, "uid-1", "R1", 200);
        let second = delivered(Some(&first), "uid-2", "R2", 200);
        let log = [&first, &second]
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect::<String>();
        let (_, key) = backend.delivery_key("uid-2", Some(1)).await.unwrap();
        let copy = mark("p.csv", product.as_bytes(), &key).unwrap().bytes;
        let found = trace_on_record(&log, &copy, &backend).await.unwrap();
        assert_eq!(found.deliveries, 2);
        assert_eq!(found.traced.len(), 1, "{found:?}");
        assert_eq!(found.traced[0].recipient_code, "R2");
        assert_eq!(found.traced[0].seq, second.seq);
        assert_eq!(found.traced[0].agree, found.traced[0].units);
        let other = trace_on_record(&log, product.as_bytes(), &backend)
            .await
            .unwrap();
        assert!(other.traced.is_empty() && other.cannot_tell.is_some());
    }
}
