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

/// The database a user of those credentials works in: dev's users in the
/// samples database, prod's in the raw one.
pub fn database_of<'a>(bed: &'a TestBed, creds: &Credentials) -> Result<&'a str> {
    let dev = creds
        .0
        .split('.')
        .next()
        .is_some_and(|r| r.ends_with("-dev"));
    let key = if dev {
        "POSTGRES_SAMPLE_DB"
    } else {
        "POSTGRES_DB"
    };
    bed.var(key).with_context(|| format!("no {key}"))
}

/// One query from the pod with those credentials, through the database's
/// Service, in the database of their environment: the rows, or what
/// PostgreSQL (or the network) said.
pub fn query(
    bed: &TestBed,
    pod: &Probe,
    creds: &Credentials,
    sql: &str,
) -> Result<Result<String, String>> {
    query_in(bed, pod, creds, database_of(bed, creds)?, sql)
}

/// The same, in the database `db`.
pub fn query_in(
    bed: &TestBed,
    pod: &Probe,
    creds: &Credentials,
    db: &str,
    sql: &str,
) -> Result<Result<String, String>> {
    let host = bed
        .var("POSTGRES_CLUSTER_HOST")
        .context("no POSTGRES_CLUSTER_HOST")?;
    let port = bed.var("POSTGRES_PORT").context("no POSTGRES_PORT")?;
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

/// `psql` from the host (outside the cluster) with those credentials, in
/// the database of their environment.
fn psql_session(bed: &TestBed, creds: &Credentials) -> Result<std::process::Command> {
    let host = bed.var("POSTGRES_HOST").context("no POSTGRES_HOST")?;
    let port = bed.var("POSTGRES_PORT").context("no POSTGRES_PORT")?;
    let db = database_of(bed, creds)?;
    let mut cmd = std::process::Command::new("psql");
    cmd.args([
        "-X",
        "-tA",
        &format!("postgresql://{}@{host}:{port}/{db}", creds.0),
    ])
    .env("PGPASSWORD", &creds.1)
    .env("PGCONNECT_TIMEOUT", "5");
    Ok(cmd)
}

/// `psql -c SQL` from the host with those credentials.
fn psql_from_host(bed: &TestBed, creds: &Credentials, sql: &str) -> Result<std::process::Command> {
    let mut cmd = psql_session(bed, creds)?;
    cmd.args(["-c", sql]);
    Ok(cmd)
}

/// A session from the host with those credentials that listens on
/// `channel`; [`listened`] ends it and says what it heard.
pub fn listen(bed: &TestBed, creds: &Credentials, channel: &str) -> Result<std::process::Child> {
    use std::io::Write;
    let mut child = psql_session(bed, creds)?
        .args(["-v", "ON_ERROR_STOP=1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.as_mut().context("psql's stdin")?;
    writeln!(stdin, "LISTEN {channel};")?;
    writeln!(stdin, "SELECT 'listening';")?;
    Ok(child)
}

/// Ends a [`listen`]ing session after one more statement (psql prints the
/// notifications a session received after each): what it printed.
pub fn listened(mut child: std::process::Child) -> Result<String> {
    use std::io::Write;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "SELECT 'done';")?;
    }
    let out = child.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// `psql -c SQL` from the host with those credentials: the rows, or what
/// PostgreSQL said.
pub fn query_from_host(
    bed: &TestBed,
    creds: &Credentials,
    sql: &str,
) -> Result<Result<String, String>> {
    let out = psql_from_host(bed, creds, sql)?.output()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string()
        + String::from_utf8_lossy(&out.stderr).trim();
    Ok(if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    })
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

/// Whether `user`'s [`listen`]ing session has run its LISTEN (it is idle
/// after the statement that follows it), as the superuser sees it.
pub fn is_listening(bed: &TestBed, user: &str) -> Result<bool> {
    Ok(bed.postgres_admin(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}' AND state = 'idle' \
         AND query LIKE 'SELECT ''listening''%'",
        user.replace('\'', "''")
    ))? == "1")
}
