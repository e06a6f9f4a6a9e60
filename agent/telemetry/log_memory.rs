//! What was last logged per source, so that a pass logs what changed rather than what it found
//! again: an operator reads each catalog error once when it appears and once when it is
//! resolved, and a failure that keeps repeating as a reminder now and then, not on every poll.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// How often a problem that is still there is logged again, as a summary.
pub const REMIND_EVERY: Duration = Duration::from_secs(3600);

/// One catalog problem a pass found: the file, the document in it (`None`: the whole file) and
/// what is wrong. Its line is for the log only: a problem that moved down the file because a
/// line was added above it is the same problem.
#[derive(Debug, Clone)]
pub struct Problem {
    pub file: String,
    pub document: Option<usize>,
    /// The line the document starts on, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    fn identity(&self) -> (&str, Option<usize>, &str) {
        (&self.file, self.document, &self.message)
    }
}

impl PartialEq for Problem {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for Problem {}

impl PartialOrd for Problem {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Problem {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.identity().cmp(&other.identity())
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.document {
            Some(index) => write!(f, "{} document {index}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Which files a pass looked at: all of them, or only those a watcher named.
pub enum Scope<'a> {
    Whole,
    Files(&'a HashSet<String>),
}

impl Scope<'_> {
    fn covers(&self, file: &str) -> bool {
        match self {
            Self::Whole => true,
            Self::Files(files) => files.contains(file),
        }
    }
}

#[derive(Default)]
struct Remembered {
    problems: BTreeSet<Problem>,
    failure: Option<Failure>,
    /// When the standing problems were last logged (first seen, or reminded of).
    problems_logged: Option<Instant>,
}

struct Failure {
    message: String,
    logged: Instant,
    /// Passes that failed the same way since it was last logged.
    repeats: u64,
    /// Passes that failed since the streak began, whatever the error.
    failed_passes: u64,
}

pub struct LogMemory {
    sources: Mutex<HashMap<String, Remembered>>,
    /// Other standing problems (an entity's cluster reconcile, a template's sources), by
    /// subject: the message last logged and when.
    subjects: Mutex<HashMap<String, (String, Instant)>>,
    remind_every: Duration,
}

impl Default for LogMemory {
    fn default() -> Self {
        Self::new(REMIND_EVERY)
    }
}

impl LogMemory {
    pub fn new(remind_every: Duration) -> Self {
        Self { sources: Mutex::default(), subjects: Mutex::default(), remind_every }
    }

    /// Logs the problems that are new since the source's last pass (`WARN`) and those gone
    /// (`INFO`); problems found again are not logged, except as a periodic summary. Returns
    /// whether anything changed.
    pub fn catalog_problems(&self, source: &str, scope: &Scope<'_>, found: &[Problem]) -> bool {
        let mut sources = self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let remembered = sources.entry(source.to_owned()).or_default();
        let found: BTreeSet<&Problem> = found.iter().collect();
        let resolved: Vec<Problem> =
            remembered.problems.iter().filter(|p| scope.covers(&p.file) && !found.contains(p)).cloned().collect();
        let new: Vec<&Problem> = found.iter().copied().filter(|p| !remembered.problems.contains(*p)).collect();
        for problem in &new {
            warn!(source = %source, file = %problem.file, document = problem.document, line = problem.line,
                error = %problem.message, "catalog error");
        }
        for problem in &resolved {
            info!(source = %source, file = %problem.file, document = problem.document, "catalog error resolved");
            remembered.problems.remove(problem);
        }
        remembered.problems.extend(new.iter().map(|p| (*p).clone()));
        let now = Instant::now();
        if !new.is_empty() || remembered.problems.is_empty() {
            remembered.problems_logged = Some(now);
        } else if remembered.problems_logged.is_none_or(|at| now.duration_since(at) >= self.remind_every) {
            let files: BTreeSet<&str> = remembered.problems.iter().map(|p| p.file.as_str()).collect();
            let examples: Vec<String> = remembered.problems.iter().take(3).map(ToString::to_string).collect();
            warn!(source = %source, errors = remembered.problems.len(), files = files.len(), first = %examples.join("; "),
                "catalog errors persist (each was logged when it appeared; GET /api/rigger/sources lists them)");
            remembered.problems_logged = Some(now);
        }
        !new.is_empty() || !resolved.is_empty()
    }

    /// Logs a failed pass when it is new or fails differently from the last one; the same
    /// failure again is counted and summarised now and then.
    pub fn failure(&self, source: &str, message: &str) {
        let mut sources = self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let remembered = sources.entry(source.to_owned()).or_default();
        let now = Instant::now();
        let failed_passes = remembered.failure.as_ref().map_or(0, |f| f.failed_passes) + 1;
        match &mut remembered.failure {
            Some(failure) if same_failure(&failure.message, message) => {
                message.clone_into(&mut failure.message);
                failure.repeats += 1;
                failure.failed_passes = failed_passes;
                if now.duration_since(failure.logged) >= self.remind_every {
                    warn!(source = %source, error = %message, failed_passes,
                        "sync still failing; the catalog keeps its last good state");
                    failure.logged = now;
                    failure.repeats = 0;
                }
            }
            _ => {
                warn!(source = %source, error = %message, "sync failed; the catalog keeps its last good state");
                let message = message.to_owned();
                remembered.failure = Some(Failure { message, logged: now, repeats: 0, failed_passes });
            }
        }
    }

    /// Whether a problem with `subject` is worth logging now: the first time, when the message
    /// differs from the last one, and as an hourly reminder. Callers log at debug otherwise.
    pub fn is_news(&self, subject: &str, message: &str) -> bool {
        let mut subjects = self.subjects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let news = subjects
            .get(subject)
            .is_none_or(|(last, at)| last != message || now.duration_since(*at) >= self.remind_every);
        if news {
            subjects.insert(subject.to_owned(), (message.to_owned(), now));
        }
        news
    }

    /// Forgets the problem with `subject`; `true` when there was one (the caller may say it is
    /// over).
    pub fn clear(&self, subject: &str) -> bool {
        let mut subjects = self.subjects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        subjects.remove(subject).is_some()
    }

    /// Logs the end of a failure streak, once.
    pub fn succeeded(&self, source: &str) {
        let mut sources = self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(failure) = sources.get_mut(source).and_then(|r| r.failure.take()) {
            info!(source = %source, failed_passes = failure.failed_passes, "sync recovered");
        }
    }
}

/// Two failures are the same when they differ only in numbers (a rate limit that resets in
/// 23 min, then in 22): the streak goes on, and its reminder says the latest.
fn same_failure(a: &str, b: &str) -> bool {
    a.chars().filter(|c| !c.is_ascii_digit()).eq(b.chars().filter(|c| !c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(file: &str, document: Option<usize>, message: &str) -> Problem {
        Problem { file: file.into(), document, line: None, message: message.into() }
    }

    #[test]
    fn a_problem_found_again_is_not_news() {
        let memory = LogMemory::default();
        let found = [problem("a.yaml", Some(0), "bad"), problem("b.yaml", None, "worse")];
        assert!(memory.catalog_problems("s", &Scope::Whole, &found));
        assert!(!memory.catalog_problems("s", &Scope::Whole, &found));
        assert!(memory.catalog_problems("s", &Scope::Whole, &found[..1]), "b.yaml's problem resolved");
        assert!(!memory.catalog_problems("t", &Scope::Whole, &[]), "sources are remembered apart");
    }

    #[test]
    fn a_partial_pass_resolves_only_the_files_it_read() {
        let memory = LogMemory::default();
        let found = [problem("a.yaml", Some(0), "bad"), problem("b.yaml", None, "worse")];
        memory.catalog_problems("s", &Scope::Whole, &found);
        let read: HashSet<String> = ["a.yaml".to_owned()].into();
        assert!(!memory.catalog_problems("s", &Scope::Files(&read), &found[..1]));
        assert!(memory.catalog_problems("s", &Scope::Files(&read), &[]));
        assert!(!memory.catalog_problems("s", &Scope::Whole, &found[1..]), "b.yaml's problem was kept");
    }

    #[test]
    fn a_problem_that_moved_down_the_file_is_the_same_problem() {
        let memory = LogMemory::default();
        let moved = |line| Problem { line: Some(line), ..problem("a.yaml", Some(0), "bad") };
        assert!(memory.catalog_problems("s", &Scope::Whole, &[moved(1)]));
        assert!(!memory.catalog_problems("s", &Scope::Whole, &[moved(3)]));
    }

    #[test]
    fn a_standing_problem_is_news_when_new_or_changed_or_cleared_before() {
        let memory = LogMemory::default();
        assert!(memory.is_news("entity a", "refused"));
        assert!(!memory.is_news("entity a", "refused"));
        assert!(memory.is_news("entity a", "conflict"), "a different problem");
        assert!(memory.clear("entity a"));
        assert!(!memory.clear("entity a"));
        assert!(memory.is_news("entity a", "conflict"), "again after it was resolved");
        let reminding = LogMemory::new(Duration::ZERO);
        assert!(reminding.is_news("x", "m") && reminding.is_news("x", "m"), "reminders when they are due");
    }

    #[test]
    fn a_failure_that_differs_only_in_numbers_is_the_same_streak() {
        assert!(same_failure("resets in 23m 10s", "resets in 22m 5s"));
        assert!(!same_failure("cannot fetch a", "cannot fetch b"));
    }

    #[test]
    fn problems_read_as_file_document_message() {
        assert_eq!(problem("a.yaml", Some(2), "bad").to_string(), "a.yaml document 2: bad");
        assert_eq!(problem("a.yaml", None, "bad").to_string(), "a.yaml: bad");
    }
}
