#!/usr/bin/env node
// validate.mjs FILE...
//
// Runs Backstage's own published catalog validation over every YAML document of
// every FILE and prints one JSON line per non-empty document:
//
//   {"file": <path as given>, "index": <0-based document index>, "ok": bool,
//    "ref": string|null, "error": string|null}
//
// This is the Backstage side of Rigger's differential test (issue 3). It
// reproduces what the catalog backend does to ONE entity read from a catalog
// file, in the same order and with the same error wrapping, WITHOUT following
// Location targets, resolving placeholders ($text/$json/$yaml) or applying
// `catalog.rules` (all three are configuration/IO dependent and handled
// separately by Rigger).
//
// Every Backstage function called below comes from the installed packages
// (versions pinned in package.json / package-lock.json); the glue between them
// is copied from the published builds of the catalog backend, which are NOT
// installed here (they pull in knex, the backend framework, ...). The glue was
// read from the npm tarballs (`npm pack`):
//
//   @backstage/plugin-catalog-node@3.0.0
//     dist/processing/parse.cjs.js          parseEntityYaml: parseAllDocuments
//                                           with {merge:false}; YAML error,
//                                           null-document skip, non-object root
//     dist/api/processingResult.cjs.js      generalError -> plain Error
//   @backstage/plugin-catalog-backend@4.0.5
//     dist/processing/ProcessorOutputCollector.cjs.js
//                                           receive(): entityEnvelopeSchemaValidator,
//                                           "metadata.annotations must be a valid
//                                           object", stamping of managed-by-*
//                                           annotations
//     dist/processing/DefaultCatalogProcessingOrchestrator.cjs.js
//                                           processSingleEntity(): envelope ->
//                                           preProcess -> policy -> validate
//                                           (entitySchemaValidator + every
//                                           processor's validateEntityKind) ->
//                                           [Location read: skipped] ->
//                                           postProcess; error wrapping texts
//     dist/processing/util.cjs.js           validateEntity = entitySchemaValidator(),
//                                           validateEntityEnvelope =
//                                           entityEnvelopeSchemaValidator()
//     dist/service/CatalogBuilder.cjs.js    buildEntityPolicy(): EntityPolicies.allOf([
//                                           SchemaValidEntityPolicy,
//                                           DefaultNamespaceEntityPolicy,
//                                           NoForeignRootFieldsEntityPolicy,
//                                           FieldFormatEntityPolicy(makeValidator())]);
//                                           buildProcessors(): Placeholder,
//                                           BuiltinKinds, FileReader, UrlReader,
//                                           AnnotateLocation, + module processors
//     dist/processors/BuiltinKindsEntityProcessor.cjs.js
//                                           validators list (api, component,
//                                           resource, group, location, user,
//                                           system, domain); preProcessEntity
//                                           array sorting; postProcessEntity
//                                           parseEntityRef calls (relations)
//     dist/processors/AnnotateLocationEntityProcessor.cjs.js
//                                           lodash.merge of location annotations
//   @backstage/plugin-catalog-backend-module-scaffolder-entity-model@0.2.26
//     dist/processor/ScaffolderEntitiesProcessor.cjs.js
//                                           validateEntityKind with
//                                           templateEntityV1beta3Validator;
//                                           postProcessEntity parseEntityRef(owner)
//
// Backstage functions called (installed packages):
//   yaml                             parseAllDocuments, Document#toJSON
//   @backstage/catalog-model         entityEnvelopeSchemaValidator,
//     (dist/validation/*.cjs.js,     entitySchemaValidator, EntityPolicies.allOf,
//      dist/entity/policies/*,       SchemaValidEntityPolicy, DefaultNamespaceEntityPolicy,
//      dist/entity/ref.cjs.js,       NoForeignRootFieldsEntityPolicy,
//      dist/kinds/*.cjs.js)          FieldFormatEntityPolicy, makeValidator,
//                                    stringifyEntityRef, getCompoundEntityRef,
//                                    parseEntityRef, stringifyLocationRef,
//                                    {api,component,resource,group,location,user,
//                                     system,domain}EntityV1alpha1Validator
//   @backstage/plugin-scaffolder-common  templateEntityV1beta3Validator
//     (dist/TemplateEntityV1beta3.cjs.js)
//   @backstage/errors (dependency of catalog-model)  InputError, ConflictError
//     (dist/errors/CustomErrorBase.cjs.js: "<message>; caused by <String(cause)>")
//   lodash (dependency of catalog-model)  merge (AnnotateLocationEntityProcessor)
//
// Output rules (defined by Rigger's differential test, not by Backstage):
//   - empty/null documents print nothing, but still count for `index`;
//   - `error` is the message Backstage stores for the entity (Error#message);
//   - `ref` is computed from the parsed document independently of `ok`:
//     `${kind}:${namespace}/${name}` lower-cased, when kind and metadata.name
//     are non-empty strings; namespace = metadata.namespace if a non-empty
//     string, else "default"; otherwise null.
//   - the location used for messages and stamped annotations is
//     `file:<path as given>`.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
// Load the CommonJS builds, which is what the catalog backend itself loads.
const yaml = require('yaml');
const catalogModel = require('@backstage/catalog-model');
const scaffolderCommon = require('@backstage/plugin-scaffolder-common');
// Transitive dependencies, resolved from catalog-model so that we get exactly
// the copies catalog-model uses.
const requireFromModel = createRequire(require.resolve('@backstage/catalog-model'));
const errors = requireFromModel('@backstage/errors');
const lodash = requireFromModel('lodash');

const {
  EntityPolicies,
  SchemaValidEntityPolicy,
  DefaultNamespaceEntityPolicy,
  NoForeignRootFieldsEntityPolicy,
  FieldFormatEntityPolicy,
  makeValidator,
  entityEnvelopeSchemaValidator,
  entitySchemaValidator,
  stringifyEntityRef,
  stringifyLocationRef,
  getCompoundEntityRef,
  parseEntityRef,
  ANNOTATION_LOCATION,
  ANNOTATION_ORIGIN_LOCATION,
} = catalogModel;

// plugin-catalog-backend dist/processing/util.cjs.js
const validateEntity = entitySchemaValidator();
const validateEntityEnvelope = entityEnvelopeSchemaValidator();

// plugin-catalog-backend dist/service/CatalogBuilder.cjs.js buildEntityPolicy()
// with no custom policies and no fieldFormatValidators overrides.
const policy = EntityPolicies.allOf([
  new SchemaValidEntityPolicy(),
  new DefaultNamespaceEntityPolicy(),
  new NoForeignRootFieldsEntityPolicy(),
  new FieldFormatEntityPolicy(makeValidator(undefined)),
]);

// The processors of a default catalog that take part in one entity's
// processing once Location reading and placeholders are excluded, in the
// order buildProcessors() + filterAndSortProcessors() give them (all have the
// default priority 20 and Array#sort is stable).
const builtinKindsProcessor = {
  name: 'BuiltinKindsEntityProcessor',
  // BuiltinKindsEntityProcessor.validators, same order
  validators: [
    catalogModel.apiEntityV1alpha1Validator,
    catalogModel.componentEntityV1alpha1Validator,
    catalogModel.resourceEntityV1alpha1Validator,
    catalogModel.groupEntityV1alpha1Validator,
    catalogModel.locationEntityV1alpha1Validator,
    catalogModel.userEntityV1alpha1Validator,
    catalogModel.systemEntityV1alpha1Validator,
    catalogModel.domainEntityV1alpha1Validator,
  ],
  async validateEntityKind(entity) {
    for (const validator of this.validators) {
      const results = await validator.check(entity);
      if (results) {
        return true;
      }
    }
    return false;
  },
  async preProcessEntity(entity) {
    function sortField(field) {
      const value = lodash.get(entity, field);
      if (value && Array.isArray(value) && value.every(v => typeof v === 'string')) {
        lodash.set(entity, field, value.sort());
      }
    }
    sortField('spec.providesApis');
    sortField('spec.consumesApis');
    sortField('spec.dependsOn');
    sortField('spec.dependencyOf');
    sortField('spec.memberOf');
    sortField('spec.children');
    sortField('spec.members');
    return entity;
  },
  // Same parseEntityRef calls as postProcessEntity; the relations themselves
  // are not needed here, only the errors parsing can throw.
  async postProcessEntity(entity) {
    const selfRef = getCompoundEntityRef(entity);
    function doEmit(targets, context) {
      if (!targets) {
        return;
      }
      for (const target of [targets].flat()) {
        parseEntityRef(target, context);
      }
    }
    const ns = selfRef.namespace;
    const s = entity.spec;
    if (entity.kind === 'Component') {
      doEmit(s.owner, { defaultKind: 'Group', defaultNamespace: ns });
      doEmit(s.subcomponentOf, { defaultKind: 'Component', defaultNamespace: ns });
      doEmit(s.providesApis, { defaultKind: 'API', defaultNamespace: ns });
      doEmit(s.consumesApis, { defaultKind: 'API', defaultNamespace: ns });
      doEmit(s.dependsOn, { defaultNamespace: ns });
      doEmit(s.dependencyOf, { defaultNamespace: ns });
      doEmit(s.system, { defaultKind: 'System', defaultNamespace: ns });
    }
    if (entity.kind === 'API') {
      doEmit(s.owner, { defaultKind: 'Group', defaultNamespace: ns });
      doEmit(s.system, { defaultKind: 'System', defaultNamespace: ns });
    }
    if (entity.kind === 'Resource') {
      doEmit(s.owner, { defaultKind: 'Group', defaultNamespace: ns });
      doEmit(s.dependsOn, { defaultNamespace: ns });
      doEmit(s.dependencyOf, { defaultNamespace: ns });
      doEmit(s.system, { defaultKind: 'System', defaultNamespace: ns });
    }
    if (entity.kind === 'User') {
      doEmit(s.memberOf, { defaultKind: 'Group', defaultNamespace: ns });
    }
    if (entity.kind === 'Group') {
      doEmit(s.parent, { defaultKind: 'Group', defaultNamespace: ns });
      doEmit(s.children, { defaultKind: 'Group', defaultNamespace: ns });
      doEmit(s.members, { defaultKind: 'User', defaultNamespace: ns });
    }
    if (entity.kind === 'System') {
      doEmit(s.owner, { defaultKind: 'Group', defaultNamespace: ns });
      doEmit(s.domain, { defaultKind: 'Domain', defaultNamespace: ns });
    }
    if (entity.kind === 'Domain') {
      doEmit(s.owner, { defaultKind: 'Group', defaultNamespace: ns });
      doEmit(s.subdomainOf, { defaultKind: 'Domain', defaultNamespace: ns });
    }
    return entity;
  },
};

const annotateLocationProcessor = {
  name: 'AnnotateLocationEntityProcessor',
  // For a `file` location no view/edit/source-location URLs are added.
  async preProcessEntity(entity, location, originLocation) {
    return lodash.merge(
      {
        metadata: {
          annotations: lodash.pickBy(
            {
              [ANNOTATION_LOCATION]: stringifyLocationRef(location),
              [ANNOTATION_ORIGIN_LOCATION]: stringifyLocationRef(originLocation),
            },
            lodash.identity,
          ),
        },
      },
      entity,
    );
  },
};

const scaffolderEntitiesProcessor = {
  name: 'ScaffolderEntitiesProcessor',
  validators: [scaffolderCommon.templateEntityV1beta3Validator],
  async validateEntityKind(entity) {
    for (const validator of this.validators) {
      if (await validator.check(entity)) {
        return true;
      }
    }
    return false;
  },
  async postProcessEntity(entity) {
    const selfRef = getCompoundEntityRef(entity);
    if (entity.apiVersion === 'scaffolder.backstage.io/v1beta3' && entity.kind === 'Template') {
      const target = entity.spec.owner;
      if (target) {
        parseEntityRef(target, { defaultKind: 'Group', defaultNamespace: selfRef.namespace });
      }
    }
    return entity;
  },
};

// PlaceholderProcessor (placeholders not resolved), FileReaderProcessor and
// UrlReaderProcessor (only readLocation) are left out on purpose.
const processors = [builtinKindsProcessor, annotateLocationProcessor, scaffolderEntitiesProcessor];

// plugin-catalog-backend ProcessorOutputCollector.receive() for an emitted
// `entity` result. Returns the entity as stored for processing, or throws
// the (unwrapped) error the parent location would record.
function receiveEmittedEntity(rawEntity, location, originLocation) {
  let entity = validateEntityEnvelope(rawEntity);
  const annotations = entity.metadata.annotations || {};
  if (typeof annotations !== 'object' || Array.isArray(annotations)) {
    throw new Error('metadata.annotations must be a valid object');
  }
  entity = {
    ...entity,
    metadata: {
      ...entity.metadata,
      annotations: {
        ...annotations,
        [ANNOTATION_ORIGIN_LOCATION]: originLocation,
        [ANNOTATION_LOCATION]: location,
      },
    },
  };
  return entity;
}

// plugin-catalog-backend DefaultCatalogProcessingOrchestrator.processSingleEntity()
// minus Location target reading and catalog.rules enforcement.
async function processSingleEntity(unprocessedEntity, location, originLocation) {
  let entity = unprocessedEntity;
  try {
    validateEntityEnvelope(entity);
  } catch (e) {
    throw new errors.InputError('Entity envelope failed validation before processing', e);
  }
  const entityRef = stringifyEntityRef(entity);

  // preProcess
  for (const processor of processors) {
    if (processor.preProcessEntity) {
      try {
        entity = await processor.preProcessEntity(entity, location, originLocation);
      } catch (e) {
        throw new errors.InputError(
          `Processor ${processor.name} threw an error while preprocessing`,
          e,
        );
      }
    }
  }

  // policy
  let policyEnforcedEntity;
  try {
    policyEnforcedEntity = await policy.enforce(entity);
  } catch (e) {
    throw new errors.InputError(`Policy check failed for ${stringifyEntityRef(entity)}`, e);
  }
  if (!policyEnforcedEntity) {
    throw new Error(`Policy unexpectedly returned no data for ${stringifyEntityRef(entity)}`);
  }
  entity = policyEnforcedEntity;

  // validate
  if (stringifyEntityRef(entity) !== entityRef) {
    throw new errors.ConflictError(
      'Fatal: The entity kind, namespace, or name changed during processing',
    );
  }
  try {
    validateEntity(entity);
  } catch (e) {
    throw new errors.ConflictError(
      `Entity envelope for ${entityRef} failed validation after preprocessing`,
      e,
    );
  }
  let valid = false;
  for (const processor of processors) {
    if (processor.validateEntityKind) {
      try {
        if (await processor.validateEntityKind(entity)) {
          valid = true;
        }
      } catch (e) {
        throw new errors.InputError(
          `Processor ${processor.name} threw an error while validating the entity ${entityRef}`,
          e,
        );
      }
    }
  }
  if (!valid) {
    throw new errors.InputError(
      `No processor recognized the entity ${entityRef} as valid, possibly caused by a foreign kind or apiVersion`,
    );
  }

  // (kind: Location target reading is skipped)

  // postProcess
  for (const processor of processors) {
    if (processor.postProcessEntity) {
      try {
        entity = await processor.postProcessEntity(entity);
      } catch (e) {
        throw new errors.InputError(
          `Processor ${processor.name} threw an error while postprocessing`,
          e,
        );
      }
    }
  }
  return entity;
}

function computeRef(json) {
  if (!lodash.isPlainObject(json)) {
    return null;
  }
  const kind = json.kind;
  const meta = json.metadata;
  if (typeof kind !== 'string' || kind === '' || !lodash.isPlainObject(meta)) {
    return null;
  }
  const name = meta.name;
  if (typeof name !== 'string' || name === '') {
    return null;
  }
  const namespace =
    typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default';
  return `${kind}:${namespace}/${name}`.toLowerCase();
}

function line(file, index, ok, ref, error) {
  return JSON.stringify({ file, index, ok, ref, error });
}

async function validateFile(file, out) {
  const locationRef = { type: 'file', target: file };
  const loc = stringifyLocationRef(locationRef);
  const data = readFileSync(file);

  // plugin-catalog-node parseEntityYaml()
  let documents;
  try {
    documents = yaml.parseAllDocuments(data.toString('utf8'), { merge: false });
  } catch (e) {
    out.push(line(file, 0, false, null, `Failed to parse YAML at ${loc}, ${e}`));
    return;
  }
  for (let index = 0; index < documents.length; index++) {
    const document = documents[index];
    if (document.errors?.length) {
      out.push(line(file, index, false, null, `YAML error at ${loc}, ${document.errors[0]}`));
      continue;
    }
    let json;
    try {
      json = document.toJSON();
    } catch (e) {
      // Not caught by parseEntityYaml: the generator would throw and the
      // whole location read fails with this error. Past the alias budget
      // nothing more of the file is read (Rigger reads on after other
      // per-document errors, see docs/backstage-differences.md).
      const message = String(e?.message ?? e);
      out.push(line(file, index, false, null, message));
      if (message.includes('Excessive alias count')) {
        break;
      }
      continue;
    }
    if (json === null) {
      continue; // empty document: skipped, no output
    }
    if (!lodash.isPlainObject(json)) {
      out.push(line(file, index, false, null, `Expected object at root, got ${typeof json}`));
      continue;
    }
    const ref = computeRef(json);
    let entity;
    try {
      entity = receiveEmittedEntity(json, loc, loc);
    } catch (e) {
      out.push(line(file, index, false, ref, errors.toError(e).message));
      continue;
    }
    try {
      await processSingleEntity(entity, locationRef, locationRef);
      out.push(line(file, index, true, ref, null));
    } catch (e) {
      out.push(line(file, index, false, ref, errors.toError(e).message));
    }
  }
}

async function main() {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write('usage: node validate.mjs FILE...\n');
    process.exit(2);
  }
  for (const file of files) {
    const out = [];
    await validateFile(file, out);
    if (out.length) {
      process.stdout.write(out.join('\n') + '\n');
    }
  }
}

await main();
