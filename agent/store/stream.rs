//! A snapshot's walk written as it arrives: the catalog walks the files on a blocking thread
//! and sends each file's outcome here; small files share a transaction, large ones go alone,
//! and at most a bounded number of files and entities are in flight, so memory follows the
//! largest files rather than the repository. A write the store refuses for good fails only
//! the file (or entity) at fault. What needs the whole walk — handing entities over between
//! files, removing ones that left, pruning files no longer reached — is settled at the end.

use std::collections::HashMap;
use std::sync::Arc;

use tracing::warn;

use super::diff::{Declared, Walk};
use super::{Backend, Changes, Deferred, Store, StoreError};
use crate::catalog::{DocumentError, LocationOutcome, OrphanStrategy};
use crate::config::RetryConfig;
use crate::retry::retry;
use crate::telemetry::{Metrics, Problem, Progress};

/// What the writer needs besides the walk: the store, how to retry, what to count and report.
#[derive(Clone)]
pub struct Writer {
    pub store: Store,
    pub retry: RetryConfig,
    pub metrics: Metrics,
    pub progress: Progress,
    pub orphans: OrphanStrategy,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a blocking task failed: {0}")]
    Join(String),
}

/// Files in flight between the walk and the writer: enough for small files to share a
/// transaction (see [`batch_after`]) while parsing overlaps writing.
const LOCATIONS_IN_FLIGHT: usize = 64;

/// Entities in flight between the walk and each writer, whatever the number of files: large
/// files wait for a writer, so memory stays bounded by about one of them per writer (a single
/// larger file goes through alone). Beyond that, more only adds memory: twice this with one
/// SQLite writer cost a 20,000-entity ingest about 27 MiB of peak RSS and no time, while
/// PostgreSQL's second writer needs its own file in flight or it idles.
const ENTITIES_IN_FLIGHT_PER_WRITER: usize = 5_000;

/// A parsed file and its share of the in-flight budget, released once it is written.
type Parsed = (LocationOutcome, Option<tokio::sync::OwnedSemaphorePermit>);

/// Runs `walk` (the catalog's, which hands each file's outcome to the sink it is given and
/// stops when the sink says so) on a blocking thread and writes files as they arrive (small
/// ones several to a transaction), so the entities in flight stay within the budget. What
/// needs the whole walk — handing entities over between files, removing ones that left — is
/// settled at the end, then locations the walk no longer reaches are pruned, only when the
/// walk was complete. The walk returns the parent links it found beyond the files it sent.
pub async fn write_walk(
    writer: &Writer,
    source: &str,
    walk: impl FnOnce(&mut dyn FnMut(LocationOutcome) -> bool) -> Vec<(String, String)> + Send + 'static,
) -> Result<(Changes, Vec<Problem>), StreamError> {
    writer.progress.enter(source, "writing");
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Parsed>(LOCATIONS_IN_FLIGHT);
    let writers = concurrent_writers(writer.store.backend());
    let entities_in_flight = ENTITIES_IN_FLIGHT_PER_WRITER * writers;
    let budget = Arc::new(tokio::sync::Semaphore::new(entities_in_flight));
    let runtime = tokio::runtime::Handle::current();
    let walker = tokio::task::spawn_blocking(move || {
        // A closed channel means the writer failed: the walk is told to stop.
        walk(&mut |outcome| {
            let weight = u32::try_from(outcome.entities.len().clamp(1, entities_in_flight)).unwrap_or(1);
            let permit = runtime.block_on(budget.clone().acquire_many_owned(weight)).ok();
            sender.blocking_send((outcome, permit)).is_ok()
        })
    });
    let mut walk =
        Walk { source: source.to_owned(), complete: true, reached: std::collections::HashMap::new(), gone: None };
    let mut deferred = Vec::new();
    let mut total = Changes::default();
    let mut errors = Vec::new();
    let mut in_flight = std::collections::VecDeque::new();
    loop {
        let next = if in_flight.len() < writers { receiver.recv().await } else { None };
        if let Some(parsed) = next {
            let (batch, permits) = batch_after(parsed, &mut receiver);
            let write = write_batch(writer.clone(), source.to_owned(), batch);
            in_flight.push_back(tokio::spawn(async move {
                let written = write.await;
                drop(permits);
                written
            }));
            continue;
        }
        // Results are taken in walk order, so reports and the walk do not depend on timing.
        let Some(oldest) = in_flight.pop_front() else { break };
        for (location, declared, (changes, left)) in oldest.await.map_err(|e| StreamError::Join(e.to_string()))?? {
            if location.panicked {
                writer.metrics.catalog_panics.with_label_values(&[source]).inc();
            }
            total.absorb(changes);
            writer.progress.advance(source, changes.entity_writes());
            report(&location.path, &location.errors, &mut errors);
            walk.complete &= location.leads_are_known();
            walk.reached.insert(location.key.clone(), declared);
            if !left.is_empty() {
                deferred.push(left);
            }
        }
    }
    let further_parents = walker.await.map_err(|e| StreamError::Join(e.to_string()))?;
    if !further_parents.is_empty() {
        let add = || writer.store.add_parents(&further_parents);
        retry(writer.retry, &writer.metrics, "store", add).await?;
    }
    writer.progress.enter(source, "settling");
    work_out_unreached(writer, &mut walk).await?;
    settle(writer, &walk, &deferred, &mut total, &mut errors).await?;
    record_write_metrics(writer, source, total);
    Ok((total, errors))
}

/// Files a watcher named, written one by one and settled among themselves. Nothing is pruned:
/// the walk is partial. Not the conflicts gauge either: a partial pass sees only these files.
pub async fn write_files(
    writer: &Writer,
    source: &str,
    outcomes: Vec<LocationOutcome>,
) -> Result<(Changes, Vec<Problem>), StoreError> {
    let mut walk = Walk { source: source.to_owned(), complete: false, reached: HashMap::new(), gone: None };
    let (mut total, mut problems, mut deferred) = (Changes::default(), Vec::new(), Vec::new());
    for location in outcomes {
        if location.panicked {
            writer.metrics.catalog_panics.with_label_values(&[source]).inc();
        }
        let declared = Declared::of(&location);
        let write = || writer.store.apply_location_streamed(source, &location, &declared);
        let (changes, left) = retry(writer.retry, &writer.metrics, "store", write).await?;
        total.absorb(changes);
        report(&location.path, &location.errors, &mut problems);
        walk.reached.insert(location.key.clone(), declared);
        if !left.is_empty() {
            deferred.push(left);
        }
    }
    settle(writer, &walk, &deferred, &mut total, &mut problems).await?;
    count_entity_writes(&writer.metrics, total);
    Ok((total, problems))
}

/// Locations written at once. PostgreSQL spends most of a large ingest maintaining indexes on
/// one core per connection, so a second writer uses the otherwise idle core; each location is
/// still its own transaction, and anything contested between files waits for the settling at
/// the end of the walk. SQLite has a single writer: more would only wait on its lock.
fn concurrent_writers(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => {
            std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, super::MAX_LOCATION_WRITERS))
        }
    }
}

type Written = (LocationOutcome, Declared, (Changes, Deferred));

/// Locations written in one transaction at most, and the entities such a batch may hold: small
/// files share a commit, a large one is written alone.
const BATCH_LOCATIONS: usize = 512;
const BATCH_ENTITIES: usize = 2_000;

/// `first` and the locations the walk has already sent after it, up to the batch bounds;
/// never waits for more.
fn batch_after(
    (first, permit): Parsed,
    receiver: &mut tokio::sync::mpsc::Receiver<Parsed>,
) -> (Vec<LocationOutcome>, Vec<tokio::sync::OwnedSemaphorePermit>) {
    let mut entities = first.entities.len();
    let mut batch = vec![first];
    let mut permits: Vec<_> = permit.into_iter().collect();
    while batch.len() < BATCH_LOCATIONS && entities < BATCH_ENTITIES {
        let Ok((next, permit)) = receiver.try_recv() else { break };
        entities += next.entities.len();
        batch.push(next);
        permits.extend(permit);
    }
    (batch, permits)
}

/// Phase one of a batch of locations in one transaction. Should the store refuse it for good,
/// each location is written alone, so only the one at fault fails (see [`write_location`]).
async fn write_batch(writer: Writer, source: String, batch: Vec<LocationOutcome>) -> Result<Vec<Written>, StreamError> {
    if batch.len() == 1 {
        return write_each(&writer, &source, batch).await;
    }
    let declared: Vec<Declared> = batch.iter().map(Declared::of).collect();
    let items: Vec<(&LocationOutcome, &Declared)> = batch.iter().zip(&declared).collect();
    let write = || writer.store.apply_locations_streamed(&source, &items);
    match retry(writer.retry, &writer.metrics, "store", write).await {
        Ok(written) => {
            drop(items);
            Ok(batch.into_iter().zip(declared).zip(written).map(|((l, d), w)| (l, d, w)).collect())
        }
        Err(err) if err.is_transient() => Err(err.into()),
        Err(_) => {
            drop(items);
            write_each(&writer, &source, batch).await
        }
    }
}

async fn write_each(writer: &Writer, source: &str, batch: Vec<LocationOutcome>) -> Result<Vec<Written>, StreamError> {
    let mut written = Vec::with_capacity(batch.len());
    for location in batch {
        written.push(write_location(writer.clone(), source.to_owned(), location).await?);
    }
    Ok(written)
}

/// Phase one of one location, with retries, as its own task so that writes overlap. A write the
/// store refuses for good fails only what it must: see [`confine_refusal`].
async fn write_location(writer: Writer, source: String, location: LocationOutcome) -> Result<Written, StreamError> {
    match try_write(&writer, &source, location).await {
        Ok(written) => Ok(written),
        Err((_, err)) if err.is_transient() => Err(err.into()),
        Err((location, err)) => confine_refusal(&writer, &source, location, &err).await,
    }
}

/// The write, with the location handed back when it fails.
async fn try_write(
    writer: &Writer,
    source: &str,
    location: LocationOutcome,
) -> Result<Written, (LocationOutcome, StoreError)> {
    let declared = Declared::of(&location);
    let write = || writer.store.apply_location_streamed(source, &location, &declared);
    match retry(writer.retry, &writer.metrics, "store", write).await {
        Ok(written) => Ok((location, declared, written)),
        Err(err) => Err((location, err)),
    }
}

/// The store refused a location's write (a value the database cannot hold). Each entity is
/// tried alone; those refused become their documents' errors (last good versions kept) and the
/// rest is written. Should the write still fail, the file fails alone: nothing of it is written
/// or deleted, below it nothing is pruned, and the pass goes on with its siblings.
async fn confine_refusal(
    writer: &Writer,
    source: &str,
    mut location: LocationOutcome,
    refusal: &StoreError,
) -> Result<Written, StreamError> {
    warn!(source = %source, file = %location.path, error = %refusal, "the store refused this file's write; finding the entity");
    for entity in std::mem::take(&mut location.entities) {
        let check = || writer.store.check_entity(source, &location.key, &entity);
        match retry(writer.retry, &writer.metrics, "store", check).await {
            Ok(()) => location.entities.push(entity),
            Err(err) if err.is_transient() => return Err(err.into()),
            Err(err) => {
                let message = format!("{} cannot be stored: {err}", entity.entity_ref);
                location.errors.push(DocumentError { index: None, line: None, message: message.clone() });
                location.failing.push((entity.entity_ref, message));
            }
        }
    }
    match try_write(writer, source, location).await {
        Ok(written) => Ok(written),
        Err((_, err)) if err.is_transient() => Err(err.into()),
        Err((mut location, err)) => {
            location.entities.clear();
            location.unattributed = true;
            location.hides_locations = true;
            location.errors.push(DocumentError {
                index: None,
                line: None,
                message: format!("cannot be stored: {err}"),
            });
            if let Err(err) = writer.store.record_location_errors(source, &location).await {
                warn!(source = %source, file = %location.path, error = %err, "cannot record the file's error either");
            }
            let declared = Declared::of(&location);
            let deferred = Deferred { key: location.key.clone(), path: location.path.clone(), ..Deferred::default() };
            // Not settled: the next poll tries this file again, even at the same commit.
            Ok((location, declared, (Changes { refused: 1, ..Changes::default() }, deferred)))
        }
    }
}

/// After a whole walk: which stored files it no longer reached are really gone, and which are
/// held back by a file in error that leads to them. Held ones are marked on their locations,
/// told in the log once (when they become held), and counted in a gauge.
async fn work_out_unreached(writer: &Writer, walk: &mut Walk) -> Result<(), StoreError> {
    let source = walk.source.clone();
    let parents = retry(writer.retry, &writer.metrics, "store", || writer.store.location_parents(&source)).await?;
    let unreached = super::diff::unreached(walk, &parents);
    let newly = retry(writer.retry, &writer.metrics, "store", || writer.store.hold_locations(&unreached.held)).await?;
    for key in newly {
        warn!(source = %source, location = %key, held_by = %unreached.held[&key],
            "a catalog file is no longer reached, but its entities are kept while the file that led to it is in error");
    }
    let held = i64::try_from(unreached.held.len()).unwrap_or(i64::MAX);
    writer.metrics.deletions_held.with_label_values(&[source.as_str()]).set(held);
    walk.gone = Some(unreached.gone);
    Ok(())
}

/// The end of a streamed pass: hand-overs, removals, conflicts, then pruning of what is gone.
async fn settle(
    writer: &Writer,
    walk: &Walk,
    deferred: &[Deferred],
    total: &mut Changes,
    errors: &mut Vec<Problem>,
) -> Result<(), StoreError> {
    let (policy, orphans, source) = (writer.retry, writer.orphans, walk.source.as_str());
    for left in deferred {
        let (changes, conflicts) =
            retry(policy, &writer.metrics, "store", || writer.store.settle(source, walk, left, orphans)).await?;
        total.absorb(changes);
        report(&left.path, &conflicts, errors);
    }
    if let Some(gone) = &walk.gone {
        let gone: Vec<String> = gone.iter().cloned().collect();
        let prune = || writer.store.delete_locations(&gone, orphans);
        total.absorb(retry(policy, &writer.metrics, "store", prune).await?);
    }
    Ok(())
}

/// Collects a file's problems; they are logged once per pass, by what changed (`LogMemory`).
fn report(path: &str, found: &[DocumentError], problems: &mut Vec<Problem>) {
    problems.extend(found.iter().map(|error| Problem {
        file: path.to_owned(),
        document: error.index,
        line: error.line,
        message: error.message.clone(),
    }));
}

fn record_write_metrics(writer: &Writer, source: &str, total: Changes) {
    // A gauge, not a counter: a contested location is re-read every poll until it resolves.
    writer.metrics.conflicts.with_label_values(&[source]).set(i64::try_from(total.conflicts).unwrap_or(i64::MAX));
    count_entity_writes(&writer.metrics, total);
}

fn count_entity_writes(metrics: &Metrics, total: Changes) {
    for (operation, count) in [("insert", total.added), ("update", total.updated), ("delete", total.deleted)] {
        metrics.entity_writes.with_label_values(&[operation]).inc_by(count);
    }
}
