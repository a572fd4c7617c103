//! Linking existing Unit customers to Stytch users (the third way of Stytch's Unit guide: PATCH
//! the customer's `jwtSubject`), one row (`link-customer`) or a CSV file of them
//! (`link-customers`), through the same per-row checks.
//!
//! Per row: the Stytch user exists; the Unit customer exists, is an individual, and has no other
//! `jwtSubject`; no other record of ours holds the user (unless `--replace`) or the customer; the
//! user's verified e-mail or phone is the customer's (unless `--accept-mismatch`). Then our
//! binding is written first, as pending, the customer re-read and patched
//! ([`shared::onboarding::link_existing_customer`]): a crash or a lost answer leaves a pending
//! link that the next run finishes (or undoes, when Unit shows another subject), and a rerun of a
//! finished row is `already_linked`. Transport failures and Unit or Stytch outages (after the clients'
//! own retries with backoff, 429 included) leave the row untouched and reported as `failed`.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shared::App;
use shared::domain::{CustomerId, UserId};
use shared::unit::Customer;
use tokio::time::Instant;

use crate::target::Failure;

/// Options of `link-customers`.
#[derive(clap::Args)]
pub struct Args {
    /// The CSV file: one `stytch_user_id,unit_customer_id` per line (a header line with those
    /// names is allowed).
    #[arg(long)]
    pub csv: PathBuf,
    /// Check every row and say what would be done, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Link even when the Stytch user's verified e-mail and phone differ from the customer's.
    #[arg(long)]
    pub accept_mismatch: bool,
    /// Replace a customer our record of the user already holds (otherwise such a row is
    /// refused as `user_linked_elsewhere`).
    #[arg(long)]
    pub replace: bool,
    /// Write each row's outcome to this CSV file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Rows in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub concurrency: u16,
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Unit patched (or found patched) and the record written.
    Linked,
    /// Both were already done.
    AlreadyLinked,
    /// `--dry-run`: it would be linked.
    WouldLink,
    /// Refused: the reason's code and a detail.
    Skipped(&'static str, String),
    /// An upstream or the table failed; nothing of the row was changed that a rerun would not
    /// finish.
    Failed(String),
}

impl Outcome {
    /// The outcome's code, as in the report and the summary.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Linked => "linked",
            Self::AlreadyLinked => "already_linked",
            Self::WouldLink => "would_link",
            Self::Skipped(reason, _) => reason,
            Self::Failed(_) => "failed",
        }
    }

    fn detail(&self) -> &str {
        match self {
            Self::Skipped(_, d) | Self::Failed(d) => d,
            _ => "",
        }
    }
}

/// How rows are linked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Check and report, change nothing.
    pub dry_run: bool,
    /// Link despite differing contacts.
    pub accept_mismatch: bool,
    /// Replace a customer the record already holds.
    pub replace: bool,
}

/// One row of the file.
#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based line number in the file.
    pub line: u64,
    pub user_id: String,
    pub customer_id: String,
}

impl Row {
    /// The row's ids as the domain's types (a row reaching Unit was checked by [`refusal`]).
    fn ids(&self) -> Result<(UserId, CustomerId), Outcome> {
        let user_id = UserId::parse(self.user_id.as_str())
            .map_err(|e| skip("malformed_row", format!("stytch_user_id is {e}")))?;
        let customer_id = CustomerId::parse(self.customer_id.as_str())
            .map_err(|e| skip("malformed_row", format!("unit_customer_id is {e}")))?;
        Ok((user_id, customer_id))
    }
}

fn skip(reason: &'static str, detail: impl Into<String>) -> Outcome {
    Outcome::Skipped(reason, detail.into())
}

fn is_user_id(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("user-test-")
        .or_else(|| s.strip_prefix("user-live-"))
    else {
        return false;
    };
    rest.len() == 36
        && rest.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_customer_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The refusal of a row whose ids are not ids at all (checked before any call).
pub fn malformed(row: &Row) -> Option<Outcome> {
    if !is_user_id(&row.user_id) {
        Some(skip(
            "malformed_user_id",
            format!(
                "{:?} is not a Stytch user id (user-test-... or user-live-...)",
                row.user_id
            ),
        ))
    } else if !is_customer_id(&row.customer_id) {
        Some(skip(
            "malformed_customer_id",
            format!("{:?} is not a Unit customer id (digits)", row.customer_id),
        ))
    } else {
        None
    }
}

/// Rows with their outcomes.
pub type Outcomes = Vec<(Row, Outcome)>;

/// Reads the file: rows to process, and rows refused without any call (malformed, duplicates).
pub fn read(path: &std::path::Path) -> Result<(Vec<Row>, Outcomes), Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut users: HashSet<String> = HashSet::new();
    let mut customers: HashSet<String> = HashSet::new();
    let mut first = true;
    // Line by line (ids never hold a newline), so line numbers are the file's own.
    for (index, text_line) in text.lines().enumerate() {
        let line = index as u64 + 1;
        if text_line.trim().is_empty() || text_line.trim_start().starts_with('#') {
            continue;
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text_line.as_bytes());
        let record = match reader.records().next() {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                let row = Row {
                    line,
                    user_id: String::new(),
                    customer_id: String::new(),
                };
                bad.push((row, skip("malformed_row", format!("not CSV: {e}"))));
                continue;
            }
            None => continue,
        };
        let fields: Vec<&str> = record.iter().collect();
        let header = first && fields == ["stytch_user_id", "unit_customer_id"];
        first = false;
        if header {
            continue;
        }
        let row = Row {
            line,
            user_id: fields.first().unwrap_or(&"").to_string(),
            customer_id: fields.get(1).unwrap_or(&"").to_string(),
        };
        match refusal(fields.len(), &row, &users, &customers) {
            Some(outcome) => bad.push((row, outcome)),
            None => {
                users.insert(row.user_id.clone());
                customers.insert(row.customer_id.clone());
                good.push(row);
            }
        }
    }
    Ok((good, bad))
}

/// The refusal of a row of `fields` fields before any call: not two fields, malformed ids, or
/// a user or customer of an earlier row (in `users` and `customers`).
fn refusal(
    fields: usize,
    row: &Row,
    users: &HashSet<String>,
    customers: &HashSet<String>,
) -> Option<Outcome> {
    if fields != 2 {
        Some(skip(
            "malformed_row",
            format!("{fields} fields, not stytch_user_id,unit_customer_id"),
        ))
    } else if let Some(malformed) = malformed(row) {
        Some(malformed)
    } else if users.contains(&row.user_id) || customers.contains(&row.customer_id) {
        Some(skip(
            "duplicate_in_file",
            "the user or the customer is on an earlier line",
        ))
    } else {
        None
    }
}

fn same_phone(unit: &shared::unit::Phone, e164: &str) -> bool {
    e164.strip_prefix('+') == Some(&format!("{}{}", unit.country_code, unit.number))
}

/// The Stytch user and the Unit customer of a row, or the row's outcome when either is
/// unknown or its service fails.
async fn user_and_customer(
    app: &App,
    row: &Row,
    deadline: Instant,
) -> Result<(shared::stytch::User, Customer), Outcome> {
    let user = match app.stytch.get_user(&row.user_id, deadline).await {
        Ok(u) => u,
        Err(e) if e.error_type() == Some("user_not_found") => {
            return Err(skip(
                "unknown_user",
                format!("Stytch has no user {}", row.user_id),
            ));
        }
        Err(e) => return Err(Outcome::Failed(format!("Stytch: {e}"))),
    };
    let (_, customer_id) = row.ids()?;
    let customer: Customer = match app.unit.get_customer(&customer_id, deadline).await {
        Ok(c) => c,
        Err(shared::unit::UnitError::Api { status: 404, .. }) => {
            return Err(skip(
                "unknown_customer",
                format!("Unit has no customer {}", row.customer_id),
            ));
        }
        Err(e) => return Err(Outcome::Failed(format!("Unit: {e}"))),
    };
    Ok((user, customer))
}

/// The refusal of a row whose customer or user is bound to someone else: by Unit's
/// `jwtSubject` (undoing this user's pending link to the customer, unless `--dry-run`), by our
/// `record` of the user (unless `--replace`), or by our table; or the table's failure.
async fn bound_elsewhere(
    app: &App,
    row: &Row,
    options: Options,
    customer: &Customer,
    subject: Option<&str>,
    record: Option<&shared::store::UserRecord>,
) -> Option<Outcome> {
    let pending =
        record.and_then(|r| r.pending_customer_id.as_deref()) == Some(row.customer_id.as_str());
    if let Some(other) = subject.filter(|s| *s != row.user_id) {
        if pending
            && !options.dry_run
            && let Ok((user_id, customer_id)) = row.ids()
        {
            // An earlier run's PATCH never landed and someone else holds the customer now.
            let key = shared::onboarding::customer_link_key(customer);
            shared::onboarding::undo_link(app, &user_id, &customer_id, Some(&key)).await;
        }
        return Some(skip(
            "customer_bound_elsewhere",
            format!("Unit's customer has jwtSubject {other}"),
        ));
    }
    if let Some(other) = record
        .and_then(|r| r.customer_id.as_deref())
        .filter(|c| *c != row.customer_id && !options.replace)
    {
        return Some(skip(
            "user_linked_elsewhere",
            format!("our record of the user holds customer {other} (--replace to replace it)"),
        ));
    }
    let key = shared::onboarding::customer_link_key(customer);
    match app.store.user_for_application(&key).await {
        Ok(Some(other)) if other != row.user_id => Some(skip(
            "customer_linked_elsewhere",
            format!("our table binds the customer to {other}"),
        )),
        Ok(_) => None,
        Err(e) => Some(Outcome::Failed(format!("table: {e}"))),
    }
}

/// Whether a verified e-mail or phone of the Stytch user is the customer's.
fn same_contact(user: &shared::stytch::User, customer: &Customer) -> bool {
    let a = &customer.attributes;
    let email = a.email.as_deref().is_some_and(|m| {
        user.emails
            .iter()
            .any(|e| e.verified && e.email.eq_ignore_ascii_case(m))
    });
    let phone = a.phone.as_ref().is_some_and(|p| {
        user.phone_numbers
            .iter()
            .any(|n| n.verified && same_phone(p, &n.phone_number))
    });
    email || phone
}

/// The checks and the link of one row.
pub async fn link_row(app: &App, row: &Row, options: Options) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (user, customer) = match user_and_customer(app, row, deadline).await {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    if customer.kind != "individualCustomer" {
        return skip(
            "business_customer_unsupported",
            format!(
                "customer {} is a {}: bind its authorized users instead",
                row.customer_id, customer.kind
            ),
        );
    }
    let subject = customer
        .attributes
        .jwt_subject
        .clone()
        .filter(|s| !s.is_empty());
    let record = match app.store.get_user(&row.user_id).await {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("table: {e}")),
    };
    if let Some(refusal) = bound_elsewhere(
        app,
        row,
        options,
        &customer,
        subject.as_deref(),
        record.as_ref(),
    )
    .await
    {
        return refusal;
    }
    if !options.accept_mismatch && !same_contact(&user, &customer) {
        return skip(
            "identity_mismatch",
            "no verified e-mail or phone of the Stytch user is the customer's",
        );
    }
    let recorded = record.as_ref().and_then(|r| r.customer_id.as_deref()) == Some(&row.customer_id);
    if subject.is_some() && recorded {
        return Outcome::AlreadyLinked;
    }
    if options.dry_run {
        return Outcome::WouldLink;
    }
    link(app, row, options.replace).await
}

/// Links the row's customer to its user ([`shared::onboarding::link_existing_customer`]) and
/// says how that ended.
async fn link(app: &App, row: &Row, replace: bool) -> Outcome {
    use shared::onboarding::LinkError;
    let (user_id, customer_id) = match row.ids() {
        Ok(ids) => ids,
        Err(outcome) => return outcome,
    };
    match shared::onboarding::link_existing_customer(app, &user_id, &customer_id, replace).await {
        Ok(_) => Outcome::Linked,
        Err(LinkError::Refused { code, detail }) => skip(code, detail),
        Err(LinkError::Unknown(detail)) => Outcome::Failed(detail),
        Err(LinkError::Failed(e)) => Outcome::Failed(format!("{}: {}", e.code, e.message)),
    }
}

/// Shows progress: a bar on a terminal, a line per row otherwise.
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines,
}

impl Progress {
    fn new(total: u64) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} rows, {per_sec}, eta {eta} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Self::Bar(bar)
        } else {
            Self::Lines
        }
    }

    fn row(&self, row: &Row, outcome: &Outcome) {
        match self {
            Self::Bar(bar) => {
                bar.inc(1);
                if matches!(outcome, Outcome::Failed(_) | Outcome::Skipped(..)) {
                    bar.set_message(format!("line {}: {}", row.line, outcome.code()));
                }
            }
            Self::Lines => println!(
                "line {}: {} {} -> {}{}",
                row.line,
                outcome.code(),
                row.user_id,
                row.customer_id,
                match outcome.detail() {
                    "" => String::new(),
                    d => format!(" ({d})"),
                }
            ),
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn write_report(path: &std::path::Path, rows: &[(Row, Outcome)]) -> Result<(), Failure> {
    let mut out = csv::Writer::from_path(path)
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
    let fail = |e: csv::Error| Failure(format!("cannot write {}: {e}", path.display()));
    out.write_record([
        "line",
        "stytch_user_id",
        "unit_customer_id",
        "outcome",
        "detail",
    ])
    .map_err(fail)?;
    for (row, outcome) in rows {
        out.write_record([
            row.line.to_string().as_str(),
            &row.user_id,
            &row.customer_id,
            outcome.code(),
            outcome.detail(),
        ])
        .map_err(fail)?;
    }
    out.flush()
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))
}

/// Ctrl-C sets the returned flag (once), so no more rows start.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("link-customers: interrupted; finishing the rows in flight");
            flag.store(true, Ordering::SeqCst);
        }
    });
    stop
}

/// Links `rows`, `concurrency` at a time, until `stop` is set: the outcome of every row, those
/// not started `failed` as interrupted.
async fn link_rows(
    app: Arc<App>,
    rows: Vec<Row>,
    options: Options,
    concurrency: u16,
    progress: Arc<Progress>,
    stop: &AtomicBool,
) -> Result<Outcomes, Failure> {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.into()));
    let mut tasks = tokio::task::JoinSet::new();
    let mut not_started = Vec::new();
    for row in rows {
        if stop.load(Ordering::SeqCst) {
            not_started.push(row);
            continue;
        }
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Failure("the row scheduler closed".into()))?;
        if stop.load(Ordering::SeqCst) {
            not_started.push(row);
            continue;
        }
        let (app, progress) = (app.clone(), progress.clone());
        tasks.spawn(async move {
            let outcome = link_row(&app, &row, options).await;
            progress.row(&row, &outcome);
            drop(permit);
            (row, outcome)
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        done.push(joined.map_err(|e| Failure(format!("a row's task failed: {e}")))?);
    }
    for row in not_started {
        let outcome = Outcome::Failed("not started: interrupted".into());
        progress.row(&row, &outcome);
        done.push((row, outcome));
    }
    Ok(done)
}

/// Prints how many rows ended with each outcome, the total, and where the report is.
fn print_summary(done: &[(Row, Outcome)], args: &Args) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, outcome) in done {
        *counts.entry(outcome.code()).or_default() += 1;
    }
    println!(
        "\n{:<32} rows{}",
        "outcome",
        if args.dry_run { " (dry run)" } else { "" }
    );
    for (code, n) in &counts {
        println!("{code:<32} {n}");
    }
    println!("{:<32} {}", "total", done.len());
    if let Some(path) = &args.report {
        println!("per-row outcomes: {}", path.display());
    }
}

/// `link-customers`: every row, `concurrency` at a time; Ctrl-C stops starting rows, lets the
/// ones in flight finish and still reports. `Ok(true)` when every row ended linked, already
/// linked or would-link.
pub async fn run(app: Arc<App>, args: Args) -> Result<bool, Failure> {
    let (rows, mut done) = read(&args.csv)?;
    let total = (rows.len() + done.len()) as u64;
    let progress = Arc::new(Progress::new(total));
    for (row, outcome) in &done {
        progress.row(row, outcome);
    }
    let stop = stop_on_ctrl_c();
    let options = Options {
        dry_run: args.dry_run,
        accept_mismatch: args.accept_mismatch,
        replace: args.replace,
    };
    let linked = link_rows(
        app,
        rows,
        options,
        args.concurrency,
        progress.clone(),
        &stop,
    )
    .await?;
    done.extend(linked);
    progress.finish();
    done.sort_by_key(|(row, _)| row.line);
    if let Some(path) = &args.report {
        write_report(path, &done)?;
    }
    print_summary(&done, &args);
    Ok(done.iter().all(|(_, o)| {
        matches!(
            o,
            Outcome::Linked | Outcome::AlreadyLinked | Outcome::WouldLink
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_with_line_numbers_and_bad_ones_refused_before_any_call() {
        let dir = std::env::temp_dir().join(format!("link-csv-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.csv");
        let a = "user-test-00000000-0000-4000-8000-000000000001";
        let b = "user-test-00000000-0000-4000-8000-000000000002";
        std::fs::write(
            &path,
            format!(
                "stytch_user_id,unit_customer_id\n{a},10001\n\n# a comment\nuser-x,10002\n{b},abc\n{b},10001\n{b}\n{b},10003,extra\n {b} , 10004 \n"
            ),
        )
        .unwrap();
        let (good, bad) = read(&path).unwrap();
        let good: Vec<_> = good
            .iter()
            .map(|r| (r.line, r.customer_id.as_str()))
            .collect();
        assert_eq!(good, [(2, "10001"), (10, "10004")]);
        let bad: Vec<_> = bad.iter().map(|(r, o)| (r.line, o.code())).collect();
        assert_eq!(
            bad,
            [
                (5, "malformed_user_id"),
                (6, "malformed_customer_id"),
                (7, "duplicate_in_file"),
                (8, "malformed_row"),
                (9, "malformed_row"),
            ]
        );
        assert!(read(&dir.join("missing.csv")).is_err());
    }

    #[test]
    fn phones_compare_as_e164() {
        let p = shared::unit::Phone {
            country_code: "1".into(),
            number: "5555550100".into(),
        };
        assert!(same_phone(&p, "+15555550100"));
        assert!(!same_phone(&p, "+15555550101"));
    }
}
