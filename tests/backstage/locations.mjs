// Drives the Location side of a running Rigger through Backstage's own catalog client: the
// locations, an entity's ancestry, and entity validation. Prints one JSON object for
// tests/it/catalog_client.rs to check.
// Usage: node locations.mjs http://127.0.0.1:PORT
import { CatalogClient } from '@backstage/catalog-client';

const base = process.argv[2];
const client = new CatalogClient({ discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` } });

const out = {};
const { items: locations } = await client.getLocations();
out.locations = locations.map(l => l.target.split('/').pop()).sort();
const first = locations[0];
out.byId = (await client.getLocationById(first.id))?.target === first.target;
out.unknownId = (await client.getLocationById('00000000-0000-0000-0000-000000000000')) === undefined;
out.byEntity = (await client.getLocationByEntity('component:default/docs'))?.target?.split('/').pop();
const ancestry = await client.getEntityAncestors({ entityRef: 'component:default/docs' });
out.ancestry = {
  root: ancestry.rootEntityRef,
  items: ancestry.items.map(i => ({ ref: `${i.entity.kind}:${i.entity.metadata.name}`, parents: i.parentEntityRefs })),
};
try {
  await client.getEntityAncestors({ entityRef: 'component:default/missing' });
  out.ancestryOfMissing = 'answered';
} catch (e) {
  out.ancestryOfMissing = `${e.name}: ${e.body?.error?.name}`;
}
const good = { apiVersion: 'backstage.io/v1alpha1', kind: 'Component', metadata: { name: 'new' }, spec: { type: 'service', lifecycle: 'production', owner: 'team-a' } };
out.valid = await client.validateEntity(good, 'url:https://github.com/acme/new/blob/main/catalog-info.yaml');
const bad = { ...good, metadata: { name: '-bad-' } };
out.invalid = await client.validateEntity(bad, 'url:https://github.com/acme/new/blob/main/catalog-info.yaml');
const failure = async call => {
  try {
    await call();
    return 'ok';
  } catch (e) {
    return `${e.name}: ${e.body?.error?.name ?? e.message}`;
  }
};
const root = locations.find(l => !l.target.includes('/docs/'));
const preview = await client.addLocation({ type: root.type, target: root.target, dryRun: true });
out.addDryRun = { exists: preview.exists, target: preview.location.target === root.target, entities: preview.entities.map(e => e.metadata.name) };
out.addExisting = await failure(() => client.addLocation({ type: root.type, target: root.target }));
out.addNew = await failure(() => client.addLocation({ target: 'https://github.com/acme/elsewhere/blob/main/catalog-info.yaml' }));
out.update = await failure(() => client.updateLocation(root.id, { type: 'url', target: 'https://x/y.yaml' }));
out.remove = await failure(() => client.removeLocationById(root.id));
const page = await client.queryLocations({ limit: 1 });
out.queryLocations = { items: page.items.length, total: page.totalItems, more: Boolean(page.pageInfo.nextCursor) };
let streamed = 0;
for await (const items of client.streamLocations({ limit: 1 })) streamed += items.length;
out.streamed = streamed;
const folder = root.target.slice(0, root.target.lastIndexOf('/'));
const analysis = await client.analyzeLocation({ location: { type: root.type, target: folder } });
out.analyze = {
  files: analysis.existingEntityFiles.map(f => `${f.location.target.split('/').slice(-2).join('/')} ${f.entity.metadata.name} ${f.isRegistered}`).sort(),
  generated: analysis.generateEntities.length,
};
const refresh = async options => {
  try {
    await client.refreshEntity('component:default/docs', options);
    return 'ok';
  } catch (e) {
    return `${e.name}: ${e.body?.error?.name}`;
  }
};
out.refreshWithoutToken = await refresh(undefined);
out.refreshWithWrongToken = await refresh({ token: 'guess' });
out.refresh = await refresh({ token: process.env.RIGGER_TEST_API_TOKEN });
console.log(JSON.stringify(out));
