//! The Backstage-compatible catalog read API, same paths and response shapes as Backstage's
//! catalog backend (`shared/reference/backstage-api-shapes.md`). Queries run in SQL over the
//! store's search index (`store::query`); only the requested page of entities is loaded.

use std::collections::HashMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State as AxumState};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api_error::{error, ApiError};
use super::auth::Readable;
use super::query::{Order, QueryState};
use super::{fields, State};
use crate::catalog::search::Filter;
use crate::catalog::EntityRef;
use crate::store::StoredEntity;

/// Query parameters, repeated keys kept (serde's query extractor drops repeats).
struct Params(Vec<(String, String)>);

impl Params {
    fn of(query: Option<String>) -> Self {
        Self(url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    fn one(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A non-negative integer up to [`MAX_NUMBER`]; anything else is the client's mistake.
    fn number(&self, key: &str) -> Result<Option<usize>, String> {
        self.one(key)
            .map(|v| match v.parse::<usize>() {
                Ok(n) if n <= MAX_NUMBER => Ok(n),
                _ => Err(format!("{key} must be a non-negative integer no larger than {MAX_NUMBER}")),
            })
            .transpose()
    }
}

pub use super::query::MAX_NUMBER;

/// One page of a query, as API entities, and the number of matches in all.
async fn page(
    state: &State,
    query: &QueryState,
    limit: Option<usize>,
    visible: &Filter,
) -> Result<(Vec<Value>, usize), ApiError> {
    let store_query = query.to_store(limit, visible).map_err(ApiError::input)?;
    let (refs, total) = state.store.query_refs(&store_query).await.map_err(ApiError::unavailable)?;
    let entities = state.store.entities_by_refs(&refs).await.map_err(ApiError::unavailable)?;
    Ok((entities.iter().map(StoredEntity::to_api).collect(), total))
}

fn fields_of(params: &Params) -> Result<Vec<Vec<String>>, ApiError> {
    fields::parse(&params.all("fields")).map_err(ApiError::input)
}

/// `GET /api/catalog/entities?filter=…&fields=…&order=asc:…&offset=…&limit=…&after=…`
pub async fn list_entities(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Readable(visible): Readable,
    RawQuery(query): RawQuery,
) -> Response {
    list(&state, &uri, &Params::of(query), &visible).await.unwrap_or_else(|e| e.into_response(&Method::GET, &uri))
}

async fn list(state: &State, uri: &Uri, params: &Params, visible: &Filter) -> Result<Response, ApiError> {
    let fields = fields_of(params)?;
    let mut query = match params.one("after") {
        Some(after) => QueryState::decode(after).map_err(ApiError::input)?,
        None => QueryState { filters: params.all("filter"), ..QueryState::default() },
    };
    if let Some(order) = params.all("order").first() {
        query.order = Some(Order::parse(order).map_err(ApiError::input)?);
    }
    if let Some(offset) = params.number("offset").map_err(ApiError::input)? {
        query.offset = offset;
    }
    let limit = params.number("limit").map_err(ApiError::input)?;
    // One row more than asked tells whether a next page exists, without counting them all.
    let store_query = query.to_store(limit.map(|l| l.saturating_add(1)), visible).map_err(ApiError::input)?;
    let mut refs = state.store.page_refs(&store_query).await.map_err(ApiError::unavailable)?;
    let more = limit.is_some_and(|l| refs.len() > l);
    refs.truncate(limit.unwrap_or(usize::MAX));
    let next = limit.filter(|_| more).map(|l| QueryState { offset: query.offset + l, ..query.clone() });
    // Without a limit the answer is the whole catalog: written a slice at a time.
    // Visibility again at load: an entity whose owner changed since the page's query is not shown.
    let visible = visible.clone();
    let render: super::stream::Render = Box::new(move |_, entities| {
        entities.into_iter().filter(|e| e.meets(&visible)).map(|e| fields::select(e.to_api(), &fields)).collect()
    });
    let body = super::stream::array(state.store.clone(), &refs, "[", "]", render);
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(next) = next {
        // The cursor carries filters and order; `fields` is not part of the query, so it is
        // repeated, or page two would come back as whole entities.
        let fields: String = params.all("fields").iter().flat_map(|f| ["&fields=".to_owned(), urlencode(f)]).collect();
        let link = format!(
            "<{}?after={}&limit={}{fields}>; rel=\"next\"",
            uri.path(),
            urlencode(&next.encode()),
            limit.unwrap_or_default()
        );
        if let Ok(value) = link.parse() {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `GET /api/catalog/entities/by-query` — cursor pagination, full-text filter, `totalItems`.
pub async fn query_entities(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Readable(visible): Readable,
    RawQuery(query): RawQuery,
) -> Response {
    by_query(&state, &Params::of(query), &visible).await.unwrap_or_else(|e| e.into_response(&Method::GET, &uri))
}

/// Backstage's default page size for `by-query`.
const DEFAULT_QUERY_LIMIT: usize = 200;

async fn by_query(state: &State, params: &Params, visible: &Filter) -> Result<Response, ApiError> {
    let fields = fields_of(params)?;
    let limit = params.number("limit").map_err(ApiError::input)?.unwrap_or(DEFAULT_QUERY_LIMIT);
    let query = match params.one("cursor") {
        Some(cursor) => QueryState::decode(cursor).map_err(ApiError::input)?,
        None => QueryState {
            filters: params.all("filter"),
            order: params.all("orderField").first().map(|o| Order::parse(o)).transpose().map_err(ApiError::input)?,
            full_text_term: params.one("fullTextFilterTerm").map(str::to_owned),
            full_text_fields: params.all("fullTextFilterFields").iter().flat_map(|f| split_list(f)).collect(),
            offset: params.number("offset").map_err(ApiError::input)?.unwrap_or(0),
            predicate: None,
        },
    };
    query_page(state, &query, limit, &fields, params.one("totalItems") != Some("exclude"), visible).await
}

/// One page of a `by-query` answer, GET or POST: `{items, pageInfo, totalItems?}`.
async fn query_page(
    state: &State,
    query: &QueryState,
    limit: usize,
    fields: &[Vec<String>],
    with_total: bool,
    visible: &Filter,
) -> Result<Response, ApiError> {
    let (entities, total) = page(state, query, Some(limit), visible).await?;
    let items: Vec<Value> = entities.into_iter().map(|e| fields::select(e, fields)).collect();
    let mut page_info = serde_json::Map::new();
    if query.offset + limit < total {
        page_info
            .insert("nextCursor".into(), json!(QueryState { offset: query.offset + limit, ..query.clone() }.encode()));
    }
    if query.offset > 0 {
        page_info.insert(
            "prevCursor".into(),
            json!(QueryState { offset: query.offset.saturating_sub(limit), ..query.clone() }.encode()),
        );
    }
    let mut body = json!({ "items": items, "pageInfo": page_info });
    if with_total {
        body["totalItems"] = json!(total);
    }
    Ok(Json(body).into_response())
}

/// The body of `POST /entities/by-query`: a predicate query, or a cursor to go on from.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PredicateQuery {
    query: Option<Value>,
    limit: Option<usize>,
    offset: Option<usize>,
    order_by: Option<Vec<OrderBy>>,
    full_text_filter: Option<FullText>,
    #[serde(default)]
    fields: Vec<String>,
    total_items: Option<String>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct OrderBy {
    field: String,
    #[serde(default)]
    order: Option<String>,
}

#[derive(Deserialize)]
struct FullText {
    term: String,
    #[serde(default)]
    fields: Vec<String>,
}

/// `POST /api/catalog/entities/by-query`: as the GET, with a filter predicate (`query`).
pub async fn query_entities_by_predicate(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Readable(visible): Readable,
    body: Result<Json<PredicateQuery>, JsonRejection>,
) -> Response {
    let answer = async {
        let Json(request) = body.map_err(ApiError::body)?;
        let fields = fields::parse(&request.fields).map_err(ApiError::input)?;
        let limit = request.limit.unwrap_or(DEFAULT_QUERY_LIMIT).min(MAX_NUMBER);
        let query = if let Some(cursor) = &request.cursor {
            QueryState::decode(cursor).map_err(ApiError::input)?
        } else {
            let order = request.order_by.as_ref().and_then(|o| o.first()).map(|o| Order {
                field: o.field.trim().to_lowercase(),
                descending: o.order.as_deref() == Some("desc"),
            });
            // Checked now, so a bad predicate is a 400 before any query runs.
            if let Some(predicate) = &request.query {
                crate::catalog::predicate::filter(predicate).map_err(ApiError::input)?;
            }
            QueryState {
                filters: Vec::new(),
                order,
                full_text_term: request.full_text_filter.as_ref().map(|f| f.term.clone()),
                full_text_fields: request.full_text_filter.map(|f| f.fields).unwrap_or_default(),
                offset: request.offset.unwrap_or(0),
                predicate: request.query,
            }
        };
        query_page(&state, &query, limit, &fields, request.total_items.as_deref() != Some("exclude"), &visible).await
    };
    answer.await.unwrap_or_else(|e| e.into_response(&Method::POST, &uri))
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// `GET /api/catalog/entities/by-name/{kind}/{namespace}/{name}` — case-insensitive.
pub async fn entity_by_name(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Readable(visible): Readable,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Response {
    let entity_ref = EntityRef::new(&kind, &namespace, &name);
    // What the caller may not read is not there, as Backstage answers it.
    match state.store.entity(&entity_ref.to_string()).await.map(|e| readable(e, &visible)) {
        Ok(Some(entity)) => Json(entity).into_response(),
        Ok(None) => ApiError::no_entity(&kind, &namespace, &name).into_response(&Method::GET, &uri),
        Err(err) => ApiError::unavailable(err).into_response(&Method::GET, &uri),
    }
}

/// `GET /api/catalog/entities/by-uid/{uid}`
pub async fn entity_by_uid(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Readable(visible): Readable,
    Path(uid): Path<String>,
) -> Response {
    match state.store.entity_by_uid(&uid).await.map(|e| readable(e, &visible)) {
        Ok(Some(entity)) => Json(entity).into_response(),
        Ok(None) => {
            error(StatusCode::NOT_FOUND, "NotFoundError", &format!("No entity with uid {uid}"), &Method::GET, &uri)
        }
        Err(err) => ApiError::unavailable(err).into_response(&Method::GET, &uri),
    }
}

/// An entity as the API shows it, if the caller may read it.
fn readable(entity: Option<StoredEntity>, visible: &Filter) -> Option<Value> {
    entity.filter(|e| e.meets(visible)).map(|e| e.to_api())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByRefs {
    entity_refs: Vec<String>,
    #[serde(default)]
    fields: Vec<String>,
}

/// `POST /api/catalog/entities/by-refs` — `{items: [entity | null]}` in request order.
pub async fn entities_by_refs(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Readable(visible): Readable,
    RawQuery(query): RawQuery,
    body: Result<Json<ByRefs>, JsonRejection>,
) -> Response {
    let params = Params::of(query);
    let result = async {
        let Json(body) = body.map_err(ApiError::body)?;
        let mut field_params = params.all("fields");
        field_params.extend(body.fields.iter().cloned());
        let fields = fields::parse(&field_params).map_err(ApiError::input)?;
        let filter = Filter::parse(&params.all("filter")).map_err(ApiError::input)?.and(&visible);
        let wanted: Vec<String> = body
            .entity_refs
            .iter()
            .map(|text| EntityRef::parse(text, None, "default").map(|r| r.to_string()).unwrap_or_default())
            .collect();
        // Request order, a miss as null; written a slice at a time.
        let render: super::stream::Render = Box::new(move |slice, found| {
            let by_ref: HashMap<&str, &StoredEntity> = found.iter().map(|e| (e.entity_ref.as_str(), e)).collect();
            slice
                .iter()
                .map(|r| match by_ref.get(r.as_str()) {
                    Some(entity) if entity.meets(&filter) => fields::select(entity.to_api(), &fields),
                    _ => Value::Null,
                })
                .collect()
        });
        let body = super::stream::array(state.store.clone(), &wanted, "{\"items\":[", "]}", render);
        Ok::<_, ApiError>(([(header::CONTENT_TYPE, "application/json")], body).into_response())
    };
    result.await.unwrap_or_else(|e| e.into_response(&Method::POST, &uri))
}

/// `GET /api/catalog/entity-facets?facet=…&filter=…`
pub async fn entity_facets(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Readable(visible): Readable,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::of(query);
    let result = async {
        let filter = Filter::parse(&params.all("filter")).map_err(ApiError::input)?;
        // Filter strings and predicates never share a cache entry (see the POST form).
        let cache_key = format!("filter:{}", params.all("filter").join("\n").to_lowercase());
        facets(&state, params.all("facet"), filter, cache_key, &visible).await
    };
    result.await.unwrap_or_else(|e| e.into_response(&Method::GET, &uri))
}

#[derive(Deserialize)]
pub struct PredicateFacets {
    #[serde(default)]
    facets: Vec<String>,
    query: Option<Value>,
}

/// `POST /api/catalog/entity-facets` `{facets, query}`: as the GET, with a filter predicate.
pub async fn entity_facets_by_predicate(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Readable(visible): Readable,
    body: Result<Json<PredicateFacets>, JsonRejection>,
) -> Response {
    let result = async {
        let Json(request) = body.map_err(ApiError::body)?;
        let filter = match &request.query {
            Some(predicate) => crate::catalog::predicate::filter(predicate).map_err(ApiError::input)?,
            None => Filter::default(),
        };
        let cache_key = request.query.as_ref().map_or_else(|| "filter:".to_owned(), |q| format!("predicate:{q}"));
        facets(&state, request.facets, filter, cache_key, &visible).await
    };
    result.await.unwrap_or_else(|e| e.into_response(&Method::POST, &uri))
}

/// Counts per value of each facet under `filter`, of the entities the caller may read, from the
/// cache while the catalog's generation is unchanged.
async fn facets(
    state: &State,
    wanted: Vec<String>,
    filter: Filter,
    cache_key: String,
    visible: &Filter,
) -> Result<Response, ApiError> {
    if wanted.is_empty() {
        return Err(ApiError::input("At least one facet is required"));
    }
    // Callers who may read different entities never share a cache entry.
    let (filter, cache_key) = if visible.is_empty() {
        (filter, cache_key)
    } else {
        (filter.and(visible), format!("{cache_key}\nvisible:{visible:?}"))
    };
    // Unchanged catalog (same generation): the cached counts are still the answer.
    let generation = state.store.generation().await.map_err(ApiError::unavailable)?;
    // Facets are independent index scans: run the uncached ones side by side.
    let mut running = tokio::task::JoinSet::new();
    for (position, facet) in wanted.into_iter().enumerate() {
        let (store, filter, cache, cache_key) =
            (state.store.clone(), filter.clone(), state.facets.clone(), cache_key.clone());
        running.spawn(async move {
            if let Some(counts) = cache.get(&facet, &cache_key, generation) {
                return (position, facet, Ok(counts));
            }
            let counts = store.facet(&filter, &facet).await;
            if let Ok(counts) = &counts {
                cache.put(&facet, &cache_key, generation, counts.clone());
            }
            (position, facet, counts)
        });
    }
    let mut done = running.join_all().await;
    done.sort_by_key(|(position, _, _)| *position);
    let mut out = serde_json::Map::new();
    for (_, facet, counts) in done {
        let counts = counts.map_err(ApiError::unavailable)?;
        let values = counts.into_iter().map(|(value, count)| json!({"value": value, "count": count})).collect();
        out.insert(facet, Value::Array(values));
    }
    Ok(Json(json!({ "facets": out })).into_response())
}

/// `GET /api/rigger/relations/unresolved`: relations whose target is not in the catalog —
/// Backstage keeps them silently; platform teams want to find dangling owners.
pub async fn unresolved_relations(AxumState(state): AxumState<State>, uri: Uri) -> Response {
    match state.store.unresolved_relations().await {
        Ok(rows) => Json(json!({ "items": rows })).into_response(),
        Err(err) => ApiError::unavailable(err).into_response(&Method::GET, &uri),
    }
}
