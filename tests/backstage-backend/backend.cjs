// A real Backstage backend (Backstage's own packages, from npm) whose `catalog` plugin is
// Rigger: `discovery.endpoints` in the config this is started with points `catalog` at Rigger's
// API. It runs Backstage's auth plugin (the guest provider, to issue a user token), its
// permission plugin (with the policy below), and one backend plugin, `probe`, that reads and
// refreshes entities through Backstage's catalog service — as every catalog-consuming backend
// plugin does.
//
// Usage: node backend.cjs --config app-config.yaml
'use strict';

const { createBackend } = require('@backstage/backend-defaults');
const { createBackendPlugin, createBackendModule, coreServices } = require('@backstage/backend-plugin-api');
const { catalogServiceRef } = require('@backstage/plugin-catalog-node');
const { policyExtensionPoint } = require('@backstage/plugin-permission-node/alpha');
const { AuthorizeResult } = require('@backstage/plugin-permission-common');

// The portal's policy: users read and refresh only what they (or their groups) own, nobody
// deletes, everything else is allowed.
class OwnerOnlyPolicy {
  async handle(request, user) {
    const { name } = request.permission;
    if (name === 'catalog.entity.delete') {
      return { result: AuthorizeResult.DENY };
    }
    if (name === 'catalog.entity.read' || name === 'catalog.entity.refresh') {
      return {
        result: AuthorizeResult.CONDITIONAL,
        pluginId: 'catalog',
        resourceType: 'catalog-entity',
        conditions: {
          rule: 'IS_ENTITY_OWNER',
          resourceType: 'catalog-entity',
          params: { claims: user?.info.ownershipEntityRefs ?? [] },
        },
      };
    }
    return { result: AuthorizeResult.ALLOW };
  }
}

const policy = createBackendModule({
  pluginId: 'permission',
  moduleId: 'owner-only-policy',
  register(env) {
    env.registerInit({
      deps: { policy: policyExtensionPoint },
      async init({ policy: point }) {
        point.setPolicy(new OwnerOnlyPolicy());
      },
    });
  },
});

function names(entities) {
  return entities.items.map(e => e.metadata.name).sort();
}

// GET /api/probe/components: every Component, as the plugin itself (a service principal).
// GET /api/probe/mine: the same, on behalf of the user who calls the probe.
// POST /api/probe/refresh: refreshes component:default/pay as the plugin itself.
// GET /api/probe/may-refresh?ref=…: whether the calling user may refresh that entity, as an
// entity page asks it (the permission plugin applies its condition through the catalog).
const refreshPermission = {
  type: 'resource',
  name: 'catalog.entity.refresh',
  attributes: { action: 'update' },
  resourceType: 'catalog-entity',
};

const probe = createBackendPlugin({
  pluginId: 'probe',
  register(env) {
    env.registerInit({
      deps: {
        http: coreServices.httpRouter,
        httpAuth: coreServices.httpAuth,
        auth: coreServices.auth,
        permissions: coreServices.permissions,
        catalog: catalogServiceRef,
      },
      async init({ http, httpAuth, auth, permissions, catalog }) {
        const answer = work => async (req, res) => {
          try {
            res.json(await work(req));
          } catch (error) {
            res.status(500).json({ error: String(error) });
          }
        };
        const routes = {
          'GET /components': async () => {
            const credentials = await auth.getOwnServiceCredentials();
            return names(await catalog.getEntities({ filter: { kind: 'Component' } }, { credentials }));
          },
          'GET /mine': async req => {
            const credentials = await httpAuth.credentials(req, { allow: ['user'] });
            return names(await catalog.getEntities({ filter: { kind: 'Component' } }, { credentials }));
          },
          'GET /may-refresh': async req => {
            const credentials = await httpAuth.credentials(req, { allow: ['user'] });
            const [decision] = await permissions.authorize(
              [{ permission: refreshPermission, resourceRef: req.query.ref }],
              { credentials },
            );
            return decision.result;
          },
          'POST /refresh': async () => {
            const credentials = await auth.getOwnServiceCredentials();
            await catalog.refreshEntity('component:default/pay', { credentials });
            return { refreshed: true };
          },
        };
        http.use(async (req, res, next) => {
          const route = routes[`${req.method} ${req.path}`];
          return route ? answer(route)(req, res) : next();
        });
        http.addAuthPolicy({ path: '/components', allow: 'unauthenticated' });
        http.addAuthPolicy({ path: '/refresh', allow: 'unauthenticated' });
      },
    });
  },
});

const backend = createBackend();
backend.add(require('@backstage/plugin-auth-backend'));
backend.add(require('@backstage/plugin-auth-backend-module-guest-provider'));
backend.add(require('@backstage/plugin-permission-backend'));
backend.add(policy);
backend.add(probe);
backend.start();
