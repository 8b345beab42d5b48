//! The data plane from a workload's side: short-lived PostgreSQL credentials
//! from OpenBao through a pod's Kubernetes login, and queries with them.

use anyhow::{Context, Result, ensure};

use crate::TestBed;
use crate::pods::{Probe, openbao_login_script};

/// PostgreSQL credentials (user, password).
pub type Credentials = (String, String);

/// What a workload pod gets: its Kubernetes login to OpenBao as `env`, then
/// `database/creds/<tenant>-<env>`. An error says what OpenBao answered.
pub fn credentials(bed: &TestBed, pod: &Probe, tenant: &str, env: &str) -> Result<Credentials> {
    let script = format!(
        r#"{}
creds=$(timeout 5 wget -q -O - --header "X-Vault-Token: $token" $openbao/v1/database/creds/{tenant}-{env} 2>&1)
user=$(echo "$creds" | sed -n 's/.*"username":"\([^"]*\)".*/\1/p')
pass=$(echo "$creds" | sed -n 's/.*"password":"\([^"]*\)".*/\1/p')
[ -n "$user" ] || {{ echo "no credentials: $creds"; exit 3; }}
echo "$user $pass""#,
        openbao_login_script(bed, tenant, env)?
    );
    let out = bed.exec(pod, &script)?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    ensure!(out.status.success(), "{tenant}-{env}: {text}");
    let (user, pass) = text
        .split_once(' ')
        .with_context(|| format!("credentials: {text}"))?;
    Ok((user.to_string(), pass.to_string()))
}

/// One query from the pod with those credentials, through the database's
/// Service: the rows, or what PostgreSQL (or the network) said.
pub fn query(
    bed: &TestBed,
    pod: &Probe,
    creds: &Credentials,
    sql: &str,
) -> Result<Result<String, String>> {
    let host = bed
        .var("POSTGRES_CLUSTER_HOST")
        .context("no POSTGRES_CLUSTER_HOST")?;
    let port = bed.var("POSTGRES_PORT").context("no POSTGRES_PORT")?;
    let db = bed.var("POSTGRES_DB").context("no POSTGRES_DB")?;
    let out = bed.exec(
        pod,
        &format!(
            "PGPASSWORD='{}' PGCONNECT_TIMEOUT=5 psql -X -tA -h {host} -p {port} -U '{}' -d {db} -c '{}' 2>&1",
            creds.1,
            creds.0,
            sql.replace('\'', "'\\''")
        ),
    )?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    })
}

/// `psql -c SQL` from the host (outside the cluster) with those credentials.
fn psql_from_host(bed: &TestBed, creds: &Credentials, sql: &str) -> Result<std::process::Command> {
    let host = bed.var("POSTGRES_HOST").context("no POSTGRES_HOST")?;
    let port = bed.var("POSTGRES_PORT").context("no POSTGRES_PORT")?;
    let db = bed.var("POSTGRES_DB").context("no POSTGRES_DB")?;
    let mut cmd = std::process::Command::new("psql");
    cmd.args([
        "-X",
        "-tA",
        &format!("postgresql://{}@{host}:{port}/{db}", creds.0),
        "-c",
        sql,
    ])
    .env("PGPASSWORD", &creds.1)
    .env("PGCONNECT_TIMEOUT", "5");
    Ok(cmd)
}

/// A session held open from the host with those credentials
/// (`SELECT pg_sleep(600)`), running until the server ends it.
pub fn hold_session(bed: &TestBed, creds: &Credentials) -> Result<std::process::Child> {
    Ok(psql_from_host(bed, creds, "SELECT pg_sleep(600)")?
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?)
}

/// Whether those credentials log in from the host.
pub fn logs_in(bed: &TestBed, creds: &Credentials) -> Result<bool> {
    Ok(psql_from_host(bed, creds, "SELECT 1")?
        .output()?
        .status
        .success())
}

/// How many sessions `user` holds, as the superuser sees them.
pub fn sessions_of(bed: &TestBed, user: &str) -> Result<usize> {
    Ok(bed
        .postgres_admin(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}'",
            user.replace('\'', "''")
        ))?
        .parse()?)
}
