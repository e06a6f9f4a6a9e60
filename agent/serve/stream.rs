//! Large answers written a slice of entities at a time: memory per request stays bounded by the
//! slice, not by the catalog, and the bytes are exactly what one JSON value would serialise to.

use axum::body::{Body, Bytes};
use serde_json::Value;

use crate::store::{Store, StoredEntity};

/// Entities loaded and written together.
pub const SLICE: usize = 200;

/// Tries for one slice when the store is only busy (no connection free in time, a lock): an
/// answer already under way waits for the store rather than end in an error.
const SLICE_ATTEMPTS: usize = 4;

/// What one slice of refs becomes: JSON values in order (entities, or `null` for a miss).
pub type Render = Box<dyn Fn(&[String], Vec<StoredEntity>) -> Vec<Value> + Send + Sync>;

/// `open`, then the rendered values of every slice of `refs` separated by commas, then `close`
/// (`[`…`]` for a list, `{"items":[`…`]}` for by-refs). A store failure mid-way ends the body
/// with an error, so a client never takes a truncated answer for a whole one.
pub fn array(store: Store, refs: &[String], open: &'static str, close: &'static str, render: Render) -> Body {
    let slices: Vec<Vec<String>> = refs.chunks(SLICE).map(<[String]>::to_vec).collect();
    let state = State { store, slices: slices.into_iter(), render, step: Step::Open, wrote: false, open, close };
    Body::from_stream(futures::stream::unfold(state, next))
}

enum Step {
    Open,
    Slices,
    Done,
}

struct State {
    store: Store,
    slices: std::vec::IntoIter<Vec<String>>,
    render: Render,
    step: Step,
    /// A value was written already: the next one needs a comma.
    wrote: bool,
    open: &'static str,
    close: &'static str,
}

async fn next(mut state: State) -> Option<(Result<Bytes, std::io::Error>, State)> {
    match state.step {
        Step::Open => {
            state.step = Step::Slices;
            Some((Ok(Bytes::from_static(state.open.as_bytes())), state))
        }
        Step::Slices => {
            let Some(slice) = state.slices.next() else {
                state.step = Step::Done;
                return Some((Ok(Bytes::from_static(state.close.as_bytes())), state));
            };
            let entities = match slice_of(&state.store, &slice).await {
                Ok(entities) => entities,
                Err(err) => {
                    state.step = Step::Done;
                    let message = super::store_unavailable(&err);
                    return Some((Err(std::io::Error::other(message)), state));
                }
            };
            let mut text = String::new();
            for value in (state.render)(&slice, entities) {
                if state.wrote {
                    text.push(',');
                }
                state.wrote = true;
                text.push_str(&value.to_string());
            }
            Some((Ok(Bytes::from(text)), state))
        }
        Step::Done => None,
    }
}

/// One slice's entities, tried again while the failure is transient.
async fn slice_of(store: &Store, slice: &[String]) -> Result<Vec<StoredEntity>, crate::store::StoreError> {
    let mut attempt = 1;
    loop {
        match store.entities_by_refs(slice).await {
            Err(err) if err.is_transient() && attempt < SLICE_ATTEMPTS => attempt += 1,
            result => return result,
        }
    }
}
