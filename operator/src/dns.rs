//! Whether the cluster's DNS is contained: a tenant pod that may ask
//! for any name can put rows into names, and a resolver that forwards
//! unknown names upstream carries them out. The platform's Corefile
//! (`deploy/coredns/Corefile`) forwards only for pods CoreDNS places outside
//! the tenant namespaces; the operator reads the cluster's Corefile at each
//! resync and says on every authorization (condition `DnsContained`) whether
//! every server block that sends names upstream carries that guard.
//!
//! The check reads the Corefile's shape, not its behaviour: it cannot prove
//! that an upstream never sees a tenant's name (the e2e test does that with
//! packets), only that the configuration is the one documented.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

/// The view expression that keeps tenant pods' names in the cluster: only a
/// pod CoreDNS places, in a namespace that is not a tenant's, passes.
pub const GUARD: &str = "metadata('kubernetes/client-namespace') != '' && !(metadata('kubernetes/client-namespace') matches '-(dev|prod)$')";

/// Plugins that send a query's name to another server (the last three are
/// well-known external ones): a resolver upstream, or a collector of query
/// logs or traces.
const UPSTREAM: &[&str] = &[
    "forward",
    "grpc",
    "proxy",
    "dnstap",
    "trace",
    "unbound",
    "fanout",
    "alternate",
];

/// One server block: its keys, and each directive's words (nested blocks
/// flattened, their lines kept in order).
#[derive(Debug, Default)]
struct Block {
    keys: String,
    lines: Vec<Vec<String>>,
}

/// Splits a Corefile into its server blocks. Comments are dropped; quoted
/// strings are kept whole.
fn blocks(corefile: &str) -> Result<Vec<Block>, String> {
    let mut out: Vec<Block> = Vec::new();
    let mut depth = 0usize;
    for (n, raw) in corefile.lines().enumerate() {
        let line = strip_comment(raw);
        let words = words(line);
        if words.is_empty() {
            continue;
        }
        let opens = words.last().is_some_and(|w| w == "{");
        let closes = words.len() == 1 && words[0] == "}";
        if closes {
            depth = depth
                .checked_sub(1)
                .ok_or_else(|| format!("line {}: a `}}` closes nothing", n + 1))?;
            continue;
        }
        if depth == 0 {
            if !opens {
                return Err(format!(
                    "line {}: a server block must open with `{{`",
                    n + 1
                ));
            }
            out.push(Block {
                keys: words[..words.len() - 1].join(" "),
                lines: Vec::new(),
            });
            depth = 1;
            continue;
        }
        let Some(block) = out.last_mut() else {
            return Err(format!("line {}: outside any server block", n + 1));
        };
        let mut words = words;
        if opens {
            words.pop();
            depth += 1;
        }
        block.lines.push(words);
    }
    if depth != 0 {
        return Err("a server block is not closed".into());
    }
    Ok(out)
}

fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// A line's words; a double-quoted string is one word, without its quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether a view's expression is the guard, possibly widened to node
/// addresses with `|| incidr(client_ip(), '...')` clauses (nodes are never
/// a tenant's).
fn is_guard(expr: &str) -> bool {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    let (expr, guard) = (squash(expr), squash(GUARD));
    let Some(rest) = expr.strip_prefix(&guard) else {
        return false;
    };
    rest.split("||").skip(1).all(|clause| {
        clause
            .strip_prefix("incidr(client_ip(),'")
            .and_then(|c| c.strip_suffix("')"))
            .is_some_and(|cidr| {
                !cidr.is_empty()
                    && cidr
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || ".:/".contains(c))
            })
    }) && (rest.is_empty() || rest.starts_with("||"))
}

/// `Ok(what)` when every server block that sends names upstream is guarded,
/// else why not.
pub fn contained(corefile: &str) -> Result<String, String> {
    let blocks = blocks(corefile)?;
    // A snippet, `(name) { ... }`, is imported by name; any other import
    // reads files this check never sees (k3s's `import
    // /etc/coredns/custom/*.override`).
    let snippets: Vec<&str> = blocks
        .iter()
        .filter_map(|b| b.keys.strip_prefix('(')?.strip_suffix(')'))
        .collect();
    for b in &blocks {
        if let Some(line) = b.lines.iter().find(|l| {
            l.first().is_some_and(|d| d == "import")
                && !l
                    .get(1)
                    .is_some_and(|name| snippets.contains(&name.as_str()))
        }) {
            return Err(format!(
                "server block `{}` imports {}, which this check cannot read: put it in the Corefile",
                b.keys,
                line[1..].join(" ")
            ));
        }
    }
    let mut guarded = 0;
    for b in blocks.iter().filter(|b| !b.keys.starts_with('(')) {
        // The block's lines with each snippet it imports in place.
        let lines: Vec<&Vec<String>> = b
            .lines
            .iter()
            .flat_map(|l| {
                let snippet = (l.first().is_some_and(|d| d == "import"))
                    .then(|| l.get(1))
                    .flatten()
                    .and_then(|name| blocks.iter().find(|s| s.keys == format!("({name})")));
                match snippet {
                    Some(s) => s.lines.iter().collect::<Vec<_>>(),
                    None => vec![l],
                }
            })
            .collect();
        let upstream: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.first())
            .filter(|d| UPSTREAM.contains(&d.as_str()))
            .map(String::as_str)
            .collect();
        if upstream.is_empty() {
            continue;
        }
        let exprs: Vec<String> = lines
            .iter()
            .filter(|l| l.first().is_some_and(|d| d == "expr"))
            .map(|l| l[1..].join(" "))
            .collect();
        if !exprs.iter().any(|e| is_guard(e)) {
            return Err(format!(
                "server block `{}` sends names upstream ({}) to every client, tenant pods included: \
                 it needs the view of deploy/coredns/Corefile",
                b.keys,
                upstream.join(", ")
            ));
        }
        guarded += 1;
    }
    Ok(if guarded == 0 {
        "no server block sends names upstream".into()
    } else {
        format!(
            "{guarded} server block(s) send names upstream, each only for pods outside the tenant namespaces"
        )
    })
}

/// The last verdict on the cluster's Corefile: `None` until the first read,
/// or when the check is off.
#[derive(Default)]
pub struct DnsCheck {
    verdict: RwLock<Option<Result<String, String>>>,
}

impl DnsCheck {
    pub fn verdict(&self) -> Option<Result<String, String>> {
        self.verdict
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, verdict: Result<String, String>) {
        let mut held = self.verdict.write().unwrap_or_else(|p| p.into_inner());
        if held.as_ref() != Some(&verdict) {
            match &verdict {
                Ok(why) => tracing::info!(%why, "cluster DNS contained"),
                Err(why) => tracing::error!(%why, "cluster DNS NOT contained"),
            }
        }
        *held = Some(verdict);
    }
}

/// Reads the Corefile (`namespace/name`, key `Corefile`) now and every
/// `every`, and keeps the verdict in `check`.
pub async fn keep_checking(
    client: kube::Client,
    namespace: String,
    name: String,
    check: Arc<DnsCheck>,
    every: Duration,
) {
    let api = Api::<ConfigMap>::namespaced(client, &namespace);
    loop {
        let verdict = match api.get_opt(&name).await {
            Ok(Some(cm)) => match cm.data.as_ref().and_then(|d| d.get("Corefile")) {
                Some(text) => contained(text),
                None => Err(format!("ConfigMap {namespace}/{name} has no key Corefile")),
            },
            Ok(None) => Err(format!("ConfigMap {namespace}/{name} does not exist")),
            Err(e) => Err(format!("cannot read ConfigMap {namespace}/{name}: {e}")),
        };
        check.set(verdict);
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/coredns/Corefile"
        ))
        .unwrap()
        .replace("@UPSTREAM@", "10.0.0.53")
    }

    #[test]
    fn the_documented_corefile_is_contained() {
        let got = contained(&platform());
        assert_eq!(
            got.as_deref(),
            Ok(
                "1 server block(s) send names upstream, each only for pods outside the tenant namespaces"
            )
        );
    }

    #[test]
    fn the_stock_corefile_forwards_for_everyone() {
        let stock = ".:53 {\n    errors\n    kubernetes cluster.local {\n        pods insecure\n    }\n    forward . /etc/resolv.conf {\n        max_concurrent 1000\n    }\n    cache 30\n}\n";
        let why = contained(stock).unwrap_err();
        assert!(
            why.contains("forward") && why.contains("tenant pods"),
            "{why}"
        );
    }

    #[test]
    fn a_weakened_guard_or_a_second_forwarding_block_is_not_contained() {
        // `|| true` would let every client through.
        let weakened = platform().replace("-(dev|prod)$')", "-(dev|prod)$') || true");
        assert!(contained(&weakened).is_err());
        // A stub domain forwarded for everyone: names under it leave.
        let stub = platform() + "corp.example:53 {\n    forward . 10.1.1.1\n}\n";
        assert!(contained(&stub).unwrap_err().contains("corp.example:53"));
        // A guard in a comment guards nothing.
        let commented = ".:53 {\n    # expr metadata('kubernetes/client-namespace') != ''\n    forward . 1.1.1.1\n}\n";
        assert!(contained(commented).is_err());
        // Widened to the nodes: still contained.
        let nodes = platform().replace(
            "-(dev|prod)$')",
            "-(dev|prod)$') || incidr(client_ip(), '10.213.0.0/16')",
        );
        assert!(contained(&nodes).is_ok(), "{:?}", contained(&nodes));
    }

    #[test]
    fn an_import_of_files_or_a_query_log_sent_away_is_not_contained() {
        let imported = platform().replace(
            "    log . \"tenant-dns",
            "    import /etc/coredns/custom/*.override\n    log . \"tenant-dns",
        );
        assert!(contained(&imported).unwrap_err().contains("imports"));
        let tapped = platform().replace(
            "    log . \"tenant-dns",
            "    dnstap tcp://10.0.0.99:6000 full\n    log . \"tenant-dns",
        );
        assert!(contained(&tapped).unwrap_err().contains("dnstap"));
        // A snippet is read where it is imported: its forward counts.
        let snippet = format!(
            "(up) {{\n    forward . 1.1.1.1\n}}\n{}",
            platform().replace(
                "    log . \"tenant-dns",
                "    import up\n    log . \"tenant-dns"
            )
        );
        assert!(contained(&snippet).unwrap_err().contains("forward"));
    }

    #[test]
    fn a_corefile_that_does_not_parse_says_where() {
        assert!(
            contained(".:53 {\n forward . 1.1.1.1\n")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(contained("}\n").unwrap_err().contains("line 1"));
    }
}
