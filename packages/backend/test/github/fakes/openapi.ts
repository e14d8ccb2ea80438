// GitHub's published OpenAPI description (from @octokit/openapi) turned into Ajv validators, so the
// fake GitHub can prove that every body it sends has the shape real GitHub documents. Also hands out
// GitHub's own examples as templates for the fake's bodies.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";

// ajv-formats is CJS with `exports.default`; under ESM interop the callable may sit on `.default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const DOC_ID = "https://kiln.invalid/github-openapi.json";
const require = createRequire(import.meta.url);

interface OpenApiDoc {
  openapi: string;
  info: { version: string };
  paths: Record<string, Record<string, JsonObject>>;
  components: { schemas: JsonObject; examples: JsonObject; responses: JsonObject };
}

let cachedDoc: OpenApiDoc | undefined;

/** Only the api.github.com description is read: `require("@octokit/openapi")` would parse ~385 MB of GHES variants. */
export function loadGitHubOpenApi(): OpenApiDoc {
  if (cachedDoc) return cachedDoc;
  const pkgDir = path.dirname(require.resolve("@octokit/openapi/package.json"));
  const file = path.join(pkgDir, "generated", "api.github.com.json");
  cachedDoc = patchKnownDefects(JSON.parse(readFileSync(file, "utf8")) as OpenApiDoc);
  return cachedDoc;
}

/**
 * Defects in the description itself, allow-listed one by one (each names what real GitHub sends):
 * - GET /app/installations declares `account` as allOf[simple-user, enterprise], which no real
 *   account satisfies; the `installation` component (used by every other installation route)
 *   says anyOf, which is what GitHub returns.
 */
function patchKnownDefects(doc: OpenApiDoc): OpenApiDoc {
  const op = doc.paths["/app/installations"]?.get as
    | { responses: Record<string, { content: Record<string, { schema: { items: { properties: Record<string, unknown> } } }> }> }
    | undefined;
  const items = op?.responses["200"]?.content["application/json"]?.schema.items;
  const installation = doc.components.schemas.installation as { properties: Record<string, Json> } | undefined;
  const account = items?.properties.account as { allOf?: unknown } | undefined;
  if (items && installation && account?.allOf) items.properties.account = installation.properties.account;
  return doc;
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * OpenAPI 3.0 → JSON Schema for Ajv: `nullable` becomes a null type/branch (Ajv refuses `nullable`
 * without `type`), `discriminator` is dropped and its `oneOf` relaxed to `anyOf` (GitHub's branches
 * overlap, e.g. private-user ⊇ public-user, so strict oneOf would reject real bodies), and local
 * `$ref`s are made absolute so operation schemas can point into the shared components document.
 */
function convert(node: Json): Json {
  if (Array.isArray(node)) return node.map(convert);
  if (!isObject(node)) return node;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "example" || k === "examples" || k.startsWith("x-")) continue;
    if (k === "$ref" && typeof v === "string" && v.startsWith("#/")) out[k] = `${DOC_ID}${v}`;
    else out[k] = convert(v);
  }
  if (out.discriminator !== undefined) {
    delete out.discriminator;
    if (out.oneOf !== undefined) {
      out.anyOf = out.oneOf;
      delete out.oneOf;
    }
  }
  if (out.nullable === true) {
    delete out.nullable;
    if (typeof out.type === "string") {
      out.type = [out.type, "null"];
      if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    } else {
      return { anyOf: [out, { type: "null" }] };
    }
  } else if (out.nullable === false) {
    delete out.nullable;
  }
  return out;
}

/** Resolve `#/components/...` refs inside the raw document (for examples and shared responses). */
function resolveLocal(doc: OpenApiDoc, node: Json | undefined): Json | undefined {
  let current = node;
  for (let hops = 0; hops < 10 && isObject(current) && typeof current.$ref === "string"; hops++) {
    const parts = current.$ref.replace(/^#\//, "").split("/");
    let target: Json | undefined = doc as unknown as Json;
    for (const part of parts) target = isObject(target) ? target[part] : undefined;
    current = target;
  }
  return current;
}

export class OpenApiResponseValidator {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction | null>();
  /** Every (operation, status) that was checked, for the test's "validated" assertions. */
  readonly checked = new Map<string, number>();

  constructor(private readonly doc: OpenApiDoc = loadGitHubOpenApi()) {
    this.ajv = new Ajv({ strict: false, allErrors: true, logger: false, validateSchema: false });
    addFormats(this.ajv);
    const schemas = convert(doc.components.schemas as Json) as JsonObject;
    this.ajv.addSchema({ $id: DOC_ID, components: { schemas } });
  }

  get specVersion(): string {
    return `${this.doc.openapi} / ${this.doc.info.version}`;
  }

  private responseObject(method: string, route: string, status: number): JsonObject | undefined {
    const op = this.doc.paths[route]?.[method.toLowerCase()];
    if (!op) throw new Error(`fake-github bug: ${method} ${route} is not in GitHub's OpenAPI description`);
    const responses = op.responses;
    if (!isObject(responses)) return undefined;
    const resp = resolveLocal(this.doc, responses[String(status)]);
    return isObject(resp) ? resp : undefined;
  }

  /** Ajv validator for the JSON body of `status`; null when the spec documents that status without a body. */
  private validatorFor(method: string, route: string, status: number): ValidateFunction | null {
    const key = `${method.toUpperCase()} ${route} ${status}`;
    if (this.compiled.has(key)) return this.compiled.get(key) ?? null;
    const resp = this.responseObject(method, route, status);
    let schema: Json | undefined;
    if (resp) {
      const content = resp.content;
      const media = isObject(content) ? content["application/json"] : undefined;
      schema = isObject(media) ? media.schema : undefined;
    } else if (status >= 400) {
      // GitHub sends `basic-error` for statuses an operation does not list (e.g. 401 on most routes).
      schema = { $ref: "#/components/schemas/basic-error" };
    } else {
      throw new Error(`fake-github bug: status ${status} is not documented for ${method} ${route}`);
    }
    const validate = schema === undefined ? null : this.ajv.compile(convert(schema) as object);
    this.compiled.set(key, validate);
    return validate;
  }

  /** Returns human-readable violations (empty when the body matches the published schema). */
  validate(method: string, route: string, status: number, body: unknown): string[] {
    const key = `${method.toUpperCase()} ${route} ${status}`;
    this.checked.set(key, (this.checked.get(key) ?? 0) + 1);
    const validate = this.validatorFor(method, route, status);
    if (!validate) return body === undefined || body === "" ? [] : [`${key}: spec documents no JSON body`];
    if (validate(body)) return [];
    return (validate.errors ?? []).slice(0, 20).map((e) => `${key}: ${e.instancePath || "/"} ${e.message ?? ""}`);
  }

  /** A deep copy of GitHub's documented example body for an operation's response. */
  example(method: string, route: string, status: number): unknown {
    const resp = this.responseObject(method, route, status);
    const content = resp?.content;
    const media = isObject(content) ? content["application/json"] : undefined;
    const examples = isObject(media) ? media.examples : undefined;
    const first = isObject(examples) ? Object.values(examples)[0] : undefined;
    const example = resolveLocal(this.doc, first);
    if (!isObject(example) || example.value === undefined) {
      throw new Error(`fake-github bug: no example for ${method} ${route} ${status}`);
    }
    return structuredClone(example.value);
  }
}
