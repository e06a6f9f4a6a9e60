// Drives a running Rigger through Backstage's own catalog client (@backstage/catalog-client) and
// prints what each call returned as one JSON object, for tests/it/catalog_client.rs to check.
// Usage: node client.mjs http://127.0.0.1:PORT
import { CatalogClient } from '@backstage/catalog-client';

const base = process.argv[2];
const client = new CatalogClient({ discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` } });
const names = items => items.map(e => (e ? e.metadata.name : null));

const out = {};
out.components = names((await client.getEntities({ filter: { kind: 'component' } })).items).sort();
out.ordered = (await client.getEntities({
  filter: { kind: ['component', 'api'] },
  fields: ['metadata.name', 'kind'],
  order: { field: 'metadata.name', order: 'desc' },
})).items;
const pay = await client.getEntityByRef('component:default/pay');
out.payOwner = pay?.spec?.owner;
out.payRelations = pay?.relations;
out.missing = (await client.getEntityByRef('component:default/missing')) === undefined;
out.byRefs = names((await client.getEntitiesByRefs({ entityRefs: ['api:default/pay-api', 'component:default/missing', 'group:default/team-a'] })).items);
out.facets = (await client.getEntityFacets({ facets: ['kind'] })).facets;
const first = await client.queryEntities({ filter: { kind: 'component' }, limit: 1, orderFields: { field: 'metadata.name', order: 'asc' } });
const second = await client.queryEntities({ cursor: first.pageInfo.nextCursor, limit: 1 });
out.pages = { total: first.totalItems, first: names(first.items), second: names(second.items), hasPrev: Boolean(second.pageInfo.prevCursor) };
const found = await client.queryEntities({ fullTextFilter: { term: 'PAY', fields: ['metadata.name'] } });
out.fullText = names(found.items).sort();
out.byUid = (await client.getEntityByRef('component:default/pay'))?.metadata?.uid === pay?.metadata?.uid;
out.locations = (await client.getLocations()).items.length;
const byPredicate = await client.queryEntities({ query: { kind: 'component', 'spec.type': { $in: ['service', 'library'] } } });
out.predicate = { names: names(byPredicate.items), total: byPredicate.totalItems };
out.predicateAny = names((await client.queryEntities({ query: { $any: [{ kind: 'api' }, { 'metadata.name': 'shop' }] } })).items).sort();
const predicateFirst = await client.queryEntities({ query: { kind: 'component' }, limit: 1, orderFields: { field: 'metadata.name', order: 'asc' } });
const predicateSecond = await client.queryEntities({ cursor: predicateFirst.pageInfo.nextCursor, limit: 1 });
out.predicatePages = [names(predicateFirst.items), names(predicateSecond.items)];
out.predicateFacets = (await client.getEntityFacets({ facets: ['spec.type'], query: { kind: 'component' } })).facets;
const notApi = await client.queryEntities({ query: { $not: { kind: 'api' } } });
out.predicateNot = notApi.items.map(e => e.metadata.name).sort();
const absent = await client.queryEntities({ query: { 'spec.providesApis': { $exists: false }, kind: 'component' } });
out.predicateAbsent = absent.items.map(e => e.metadata.name);
try {
  await client.queryEntities({ query: { 'metadata.name': { $hasPrefix: 'pa' } } });
  out.predicatePrefix = 'answered';
} catch (e) {
  out.predicatePrefix = `${e.name}: ${e.body?.error?.name}`;
}
console.log(JSON.stringify(out));
