//! The audit log as a crash or an intruder leaves it, with the operator
//! installed by its chart: a torn last line is set aside and its recovery
//! chained; damage inside the log stays an alarm, yet a bureau suspension
//! still cuts access at once while provisioning waits, and once the log is
//! repaired the held records join the chain. The operator is stopped while
//! the file is changed, as a crash or an offline edit would find it. Runs
//! alone: every tenant writes to this log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{TestBed, authorization, eventually, run, run_ok, unique, wait_condition, wait_phase};
use kube::Api;
use publicdata_operator::api::OperatorAuthorization;
use publicdata_operator::audit::{Record, verify_file};

const NS: &str = "publicdata-system";
const DEPLOYMENT: &str = "deployment/publicdata-operator";
const WAIT: Duration = Duration::from_secs(120);

/// Stops the operator (every replica gone), for as long as it is held; its
/// replicas come back when dropped, even if the test fails half-way.
struct Stopped<'a> {
    bed: &'a TestBed,
    replicas: String,
}

impl<'a> Stopped<'a> {
    fn new(bed: &'a TestBed) -> Result<Self> {
        let replicas = run_ok(bed.kubectl().args([
            "-n",
            NS,
            "get",
            DEPLOYMENT,
            "-o",
            "jsonpath={.spec.replicas}",
        ]))?;
        run_ok(
            bed.kubectl()
                .args(["-n", NS, "scale", DEPLOYMENT, "--replicas=0"]),
        )?;
        run_ok(bed.kubectl().args([
            "-n",
            NS,
            "wait",
            "--for=delete",
            "pod",
            "-l",
            "app.kubernetes.io/name=publicdata-operator",
            "--timeout=120s",
        ]))?;
        Ok(Self {
            bed,
            replicas: replicas.trim().to_string(),
        })
    }

    /// Starts the replicas again and waits until one leads.
    fn start(self) -> Result<()> {
        self.scale_up()?;
        run_ok(self.bed.kubectl().args([
            "-n",
            NS,
            "rollout",
            "status",
            DEPLOYMENT,
            "--timeout=180s",
        ]))?;
        let bed = self.bed;
        let deadline = std::time::Instant::now() + WAIT;
        while bed.require_operator().is_err() {
            ensure!(std::time::Instant::now() < deadline, "no replica leads");
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(())
    }

    fn scale_up(&self) -> Result<()> {
        run_ok(self.bed.kubectl().args([
            "-n",
            NS,
            "scale",
            DEPLOYMENT,
            &format!("--replicas={}", self.replicas),
        ]))?;
        Ok(())
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        let _ = self.scale_up();
    }
}

fn records(log: &Path) -> Result<Vec<Record>> {
    Ok(std::fs::read_to_string(log)?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Whether `user` may list pods in `ns` (what a member needs to work there).
fn may_list_pods(bed: &TestBed, user: &str, ns: &str) -> Result<bool> {
    let out = run(bed
        .kubectl()
        .args(["auth", "can-i", "list", "pods", "-n", ns, "--as", user]))?;
    Ok(out.status.success())
}

async fn suspend(bed: &TestBed, t: &str) -> Result<()> {
    bed.set_state(t, "Suspended").await
}

fn torn_files(log: &Path) -> Result<Vec<PathBuf>> {
    let dir = log.parent().context("the log's directory")?;
    Ok(std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("audit.log.torn-"))
        .collect())
}

#[tokio::test]
async fn a_torn_last_line_is_set_aside_and_the_operator_starts_and_suspends() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("torn");
    let alice = unique("alice");
    bed.apply(&authorization(&t, &[(&alice, true)])?)?;
    bed.wait_ready(&t).await?;
    let dev = format!("{t}-dev");
    ensure!(may_list_pods(&bed, &alice, &dev)?);

    // A write cut short by a crash: the last line ends half-way.
    let log = bed.audit_log();
    let before = torn_files(&log)?;
    let stopped = Stopped::new(&bed)?;
    let fragment = br#"{"seq":424242,"time":"2026-11-27T09:1"#;
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log)?;
        f.write_all(fragment)?;
    }
    ensure!(
        verify_file(&log)
            .unwrap_err()
            .to_string()
            .contains("is incomplete"),
        "the torn tail is named as such"
    );
    stopped.start()?;

    // The operator started, and the bureau's suspension cuts access.
    suspend(&bed, &t).await?;
    wait_phase(&api, &t, "Suspended").await?;
    eventually("the member's access cut", WAIT, || async {
        Ok((!may_list_pods(&bed, &alice, &dev)?).then_some(()))
    })
    .await?;

    // The fragment is kept aside, the recovery is in the chain, the chain is sound.
    let aside: Vec<PathBuf> = torn_files(&log)?
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    ensure!(aside.len() == 1, "one fragment set aside: {aside:?}");
    ensure!(std::fs::read(&aside[0])? == fragment);
    verify_file(&log)?;
    let all = records(&log)?;
    let recovered = all
        .iter()
        .find(|r| {
            r.entry.action == "AuditLogTornTailRecovered"
                && r.entry.reason.contains(
                    &aside[0]
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string(),
                )
        })
        .context("the recovery is recorded")?;
    ensure!(
        all.iter().any(|r| r.entry.tenant == t
            && r.entry.action == "TenantFrozen"
            && r.seq > recovered.seq),
        "the freeze is chained after the recovery"
    );
    Ok(())
}

#[tokio::test]
async fn a_damaged_log_holds_records_a_suspension_still_cuts_access_and_provisioning_waits()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("held");
    let bob = unique("bob");
    bed.apply(&authorization(&t, &[(&bob, true)])?)?;
    bed.wait_ready(&t).await?;
    let dev = format!("{t}-dev");
    ensure!(may_list_pods(&bed, &bob, &dev)?);

    // Someone edits a record in the middle of the log while the operator is down.
    let log = bed.audit_log();
    let held = log.with_extension("log.held");
    let stopped = Stopped::new(&bed)?;
    let sound = std::fs::read_to_string(&log)?;
    let needle = format!("\"tenant\":\"{t}\"");
    let line = sound
        .lines()
        .position(|l| l.contains(&needle) && l.contains("DomainProvisioned"))
        .context("the provisioning record")?;
    let edited: String = sound
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == line {
                l.replacen("generation 1", "generation 9", 1)
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    ensure!(edited != sound);
    let seq = serde_json::from_str::<Record>(sound.lines().nth(line).unwrap_or_default())?.seq;
    std::fs::write(&log, &edited)?;
    stopped.start()?;

    // The bureau suspends: access is cut at once.
    suspend(&bed, &t).await?;
    wait_phase(&api, &t, "Suspended").await?;
    eventually("the member's access cut", WAIT, || async {
        Ok((!may_list_pods(&bed, &bob, &dev)?).then_some(()))
    })
    .await?;
    // A new tenant is not provisioned, and says why.
    let late = unique("late");
    bed.apply(&authorization(&late, &[("carol", true)])?)?;
    let message = wait_condition(
        &api,
        &late,
        "Ready",
        "AuditLogDamaged",
        &format!("record {seq} (line {}) was edited", line + 1),
    )
    .await?;
    ensure!(
        message.contains("a suspension or revocation still goes ahead"),
        "{message}"
    );
    ensure!(
        !run(bed
            .kubectl()
            .args(["get", "namespace", &format!("{late}-dev")]))?
        .status
        .success(),
        "no namespace of a tenant provisioned while the log is damaged"
    );
    // Nothing was written into the damaged log; the freeze is held beside it.
    ensure!(std::fs::read_to_string(&log)? == edited);
    let held_text = std::fs::read_to_string(&held)?;
    ensure!(
        held_text.contains(&needle) && held_text.contains("TenantFrozen"),
        "{held_text}"
    );

    // Repaired (the sound copy put back) and restarted: the held records are
    // chained, and provisioning goes on.
    let stopped = Stopped::new(&bed)?;
    std::fs::write(&log, &sound)?;
    stopped.start()?;
    bed.wait_ready(&late).await?;
    verify_file(&log)?;
    ensure!(!held.exists(), "the held records were moved into the chain");
    let all = records(&log)?;
    let frozen = all
        .iter()
        .find(|r| r.entry.tenant == t && r.entry.action == "TenantFrozen")
        .context("the freeze in the chain")?;
    ensure!(
        frozen.entry.reason.contains("while the log was damaged"),
        "{frozen:?}"
    );
    ensure!(
        all.iter()
            .any(|r| r.entry.action == "AuditLogHeldReleased" && r.seq > frozen.seq)
    );
    Ok(())
}

const BUREAU: [&str; 4] = ["--as", "zhao.lei", "--as-group", "publicdata:bureau"];

/// What the plugin printed, and whether it succeeded.
fn plugin(bed: &TestBed, args: &[&str]) -> Result<(bool, String)> {
    let out = bed.plugin(args)?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// `audit verify` of a local copy against the anchor taken before it.
fn verify_copy(bed: &TestBed, dir: &Path, name: &str, log: &str) -> Result<(bool, String)> {
    let file = dir.join(name);
    std::fs::write(&file, log)?;
    plugin(
        bed,
        &[
            "audit",
            "verify",
            "--file",
            &file.to_string_lossy(),
            "--anchor",
            &dir.join("anchor.json").to_string_lossy(),
        ],
    )
}

/// Record `seq` rewritten, and every record after it re-hashed: a chain that
/// verifies on its own.
fn rewritten(log: &str, seq: u64) -> Result<String> {
    let mut out = String::new();
    let mut prev: Option<Record> = None;
    for line in log.lines() {
        let mut r: Record = serde_json::from_str(line)?;
        if r.seq == seq {
            r.entry.reason = format!("{} (nothing to see)", r.entry.reason);
        }
        if let Some(p) = &prev {
            r.prev = p.hash.clone();
        }
        r.hash = publicdata_operator::audit::hash_of(r.seq, &r.time, &r.entry, &r.prev);
        out.push_str(&serde_json::to_string(&r)?);
        out.push('\n');
        prev = Some(r);
    }
    Ok(out)
}

#[tokio::test]
async fn the_chain_is_anchored_in_openbao_and_a_cut_or_rehashed_log_is_named() -> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    let api: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    let t = unique("anchor");
    bed.apply(&authorization(&t, &[("dana", true)])?)?;
    bed.wait_ready(&t).await?;

    // The operator checkpoints its head soon after it moves: the log's last
    // record, signed by OpenBao's key, is what the bureau's verify reports.
    let log = bed.audit_log();
    let said = eventually("the head checkpointed", WAIT, || async {
        let last = records(&log)?.last().map(|r| r.seq).unwrap_or_default();
        let (ok, said) = plugin(&bed, &[&["audit", "verify"][..], &BUREAU[..]].concat())?;
        ensure!(ok, "{said}");
        Ok(said
            .contains(&format!(
                "anchored: record {last} checkpointed and signed by OpenBao"
            ))
            .then_some(said))
    })
    .await?;
    ensure!(said.contains("chain intact"), "{said}");
    let (ok, anchor) = plugin(&bed, &[&["audit", "anchor"][..], &BUREAU[..]].concat())?;
    ensure!(ok, "{anchor}");
    let dir = std::env::temp_dir().join(unique("anchored-copies"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("anchor.json"), &anchor)?;
    let anchored: publicdata_operator::audit::anchor::Anchor = serde_json::from_str(&anchor)?;
    let checkpoint = anchored.checkpoint.context("a checkpoint")?;
    ensure!(
        checkpoint.signature.starts_with("vault:v1:"),
        "{checkpoint:?}"
    );

    // Offline, against that anchor: the sound log passes; a log cut back
    // behind the checkpoint (to its first record at most), and one rewritten and re-hashed to the end, each verify
    // as a chain but not against the anchor, and are named.
    let stopped = Stopped::new(&bed)?;
    let sound = std::fs::read_to_string(&log)?;
    let (ok, said) = verify_copy(&bed, &dir, "sound.log", &sound)?;
    ensure!(ok && said.contains("chain intact; anchored"), "{said}");
    ensure!(
        checkpoint.seq >= 3,
        "a provisioned tenant's records anchored"
    );
    let keep = checkpoint.seq.saturating_sub(3).max(1);
    let cut: String = sound
        .lines()
        .take(keep as usize)
        .map(|l| format!("{l}\n"))
        .collect();
    verify_file(&{
        let f = dir.join("cut-alone.log");
        std::fs::write(&f, &cut)?;
        f
    })?;
    let (ok, said) = verify_copy(&bed, &dir, "cut.log", &cut)?;
    ensure!(
        !ok && said.contains(&format!(
            "the log ends at record {}, but a checkpoint signed at {} anchors record {}: records were cut off its end",
            keep,
            checkpoint.time,
            checkpoint.seq
        )),
        "{said}"
    );
    let forged = rewritten(&sound, 2)?;
    let (ok, said) = verify_copy(&bed, &dir, "rehashed.log", &forged)?;
    ensure!(
        !ok && said.contains(&format!(
            "record {} is not the record the checkpoint signed at {} anchors: the log was rewritten",
            checkpoint.seq, checkpoint.time
        )),
        "{said}"
    );
    // A checkpoint moved to another record does not carry OpenBao's signature.
    let mut moved: serde_json::Value = serde_json::from_str(&anchor)?;
    moved["checkpoint"]["seq"] = serde_json::json!(keep);
    std::fs::write(dir.join("anchor.json"), moved.to_string())?;
    let (ok, said) = verify_copy(&bed, &dir, "cut-again.log", &cut)?;
    ensure!(
        !ok && said.contains("is not the operator's") && said.contains("does not verify"),
        "{said}"
    );
    std::fs::write(dir.join("anchor.json"), &anchor)?;

    // The operator, started on the cut log, knows it from OpenBao: nothing is
    // appended, a new tenant waits and says why, the live verify names it.
    std::fs::write(&log, &cut)?;
    stopped.start()?;
    let late = unique("anchor-late");
    bed.apply(&authorization(&late, &[("erin", true)])?)?;
    wait_condition(
        &api,
        &late,
        "Ready",
        "AuditLogDamaged",
        "records were cut off its end",
    )
    .await?;
    let (ok, said) = plugin(&bed, &[&["audit", "verify"][..], &BUREAU[..]].concat())?;
    ensure!(
        !ok && said.contains("records were cut off its end"),
        "{said}"
    );
    ensure!(std::fs::read_to_string(&log)? == cut, "nothing appended");

    // Restored from the sound copy: the held records join the chain, the
    // tenant is provisioned, and the head is anchored again.
    let stopped = Stopped::new(&bed)?;
    std::fs::write(&log, &sound)?;
    stopped.start()?;
    bed.wait_ready(&late).await?;
    eventually("the repaired log anchored again", WAIT, || async {
        let last = records(&log)?.last().map(|r| r.seq).unwrap_or_default();
        let (ok, said) = plugin(&bed, &[&["audit", "verify"][..], &BUREAU[..]].concat())?;
        Ok((ok && said.contains(&format!("anchored: record {last} "))).then_some(()))
    })
    .await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
