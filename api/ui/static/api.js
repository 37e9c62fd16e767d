// Every call the page makes: GraphQL over POST /graphql with the signed-in token.
const KEY = "cairnToken";
export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class SignedOut extends Error {}
export class GqlError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code;
  }
}

let signedOut = () => {};
/** `fn(message)` runs when the server refuses the token (401) or there is none. */
export function onSignedOut(fn) { signedOut = fn; }

/** One request: `{data, errors}` (errors of single fields stay beside the data); throws when
 * nothing ran (a refused query) and signs out on a 401. */
export async function call(query, variables = {}) {
  const t = token.get();
  if (!t) { signedOut(""); throw new SignedOut(); }
  const res = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${t}` },
    body: JSON.stringify({ query, variables }),
  });
  if (res.status === 401) {
    token.clear();
    types = null;
    signedOut("The server refused the token: sign in again.");
    throw new SignedOut();
  }
  const body = await res.json().catch(() => ({}));
  if (!body.data) throw new GqlError(body.errors || [{ message: `HTTP ${res.status}` }]);
  return { data: body.data, errors: body.errors || [] };
}

/** The data of a request that must succeed whole. */
export async function gql(query, variables) {
  const r = await call(query, variables);
  if (r.errors.length) throw new GqlError(r.errors);
  return r.data;
}

/** The error of the field under `alias`, if it failed. */
export const errorAt = (r, alias) => r.errors.find((e) => e.path?.[0] === alias);

export const VIEWER = "{ viewer { name kind isAdmin } }";

let types = null;
export const SCHEMA = "{ __schema { types { name fields { name type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";
/** The server's types, introspected once per sign-in: Map(type → Map(field → {kind, name})).
 * Pages ask it which optional fields exist, so they work before and after a field is added. */
export function schema() {
  types ??= gql(SCHEMA).then(typesOf, (err) => { types = null; throw err; });
  return types;
}
export const typesOf = (d) => new Map(d.__schema.types.map((t) => [t.name, new Map((t.fields || []).map((f) => [f.name, named(f.type)]))]));
const named = (t) => { while (t.ofType) t = t.ofType; return { kind: t.kind, name: t.name }; };

/** A selection of `want` on `typeName`, keeping only what the schema has. `want` lists field
 * names and [name, subWant] pairs; a pair's field is selected plain when it is a scalar. */
export function select(types, typeName, want) {
  const fields = types.get(typeName);
  if (!fields) return "";
  const out = [];
  for (const w of want) {
    const [name, sub] = Array.isArray(w) ? w : [w, null];
    const f = fields.get(name);
    if (!f) continue;
    if (f.kind === "OBJECT" || f.kind === "INTERFACE") {
      const inner = sub ? select(types, f.name, sub) : "";
      if (inner) out.push(`${name} { ${inner} }`);
    } else out.push(name);
  }
  return out.join(" ");
}
